#include "cli/tracer_setup.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "common/log.h"

namespace leakwatch::cli {

Result<void> check_tracing_environment(const std::string& needs_root, const std::string& btf_path) {
  if (::geteuid() != 0) return fail("{}", needs_root);
  struct stat st;
  if (!btf_path.empty()) {
    if (::stat(btf_path.c_str(), &st) != 0) return fail("--btf {}: no such file", btf_path);
  } else if (::stat("/sys/kernel/btf/vmlinux", &st) != 0) {
    return fail("no kernel BTF at /sys/kernel/btf/vmlinux: the kernel needs CONFIG_DEBUG_INFO_BTF=y "
                "(or give --btf FILE)");
  }
  return {};
}

void prepare_tracer_process(int verbose) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  rlimit nofile;
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  log::set_level(verbose >= 2 ? log::Level::kDebug
                 : verbose    ? log::Level::kInfo
                              : log::Level::kWarn);
}

}  // namespace leakwatch::cli
