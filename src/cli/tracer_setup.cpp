#include "cli/tracer_setup.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <string>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "common/log.h"

namespace leakwatch::cli {

Result<void> check_tracing_environment(const std::string& needs_root, const std::string& btf_path) {
  if (::geteuid() != 0) return fail("{}", needs_root);
  struct stat st;
  if (!btf_path.empty()) {
    if (::stat(btf_path.c_str(), &st) != 0) return fail("--btf {}: no such file", btf_path);
    // Read it now, quietly: a bad file must be named as such, not surface later as
    // libbpf's raw lines and a load failure blamed on /sys/kernel/btf/vmlinux.
    libbpf_print_fn_t previous = libbpf_set_print(nullptr);
    btf* parsed = btf__parse(btf_path.c_str(), nullptr);
    int err = libbpf_get_error(parsed);
    libbpf_set_print(previous);
    if (err != 0 || parsed == nullptr)
      return fail("--btf {}: not a BTF file leakwatch can read (raw BTF, or an ELF file with a "
                  ".BTF section, such as /sys/kernel/btf/vmlinux of the kernel to trace)",
                  btf_path);
    btf__free(parsed);
  } else if (::stat("/sys/kernel/btf/vmlinux", &st) != 0) {
    return fail("no kernel BTF at /sys/kernel/btf/vmlinux: the kernel needs CONFIG_DEBUG_INFO_BTF=y "
                "(or give --btf FILE)");
  }
  return {};
}

namespace {

// libbpf's own lines ("libbpf: failed to get EHDR from ...") are details of an error
// leakwatch reports in one line of its own: they are shown with -vv.
int libbpf_to_log(libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG || log::level() < log::Level::kDebug) return 0;
  char line[1024];
  int n = std::vsnprintf(line, sizeof line, format, args);
  std::string text(line, n > 0 ? std::min(static_cast<size_t>(n), sizeof line - 1) : 0);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  log::debug("libbpf: {}", text);
  return n;
}

}  // namespace

void prepare_tracer_process(int verbose) {
  libbpf_set_print(libbpf_to_log);
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
