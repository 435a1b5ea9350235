#include "probe/load_error.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdlib>

#include <fmt/format.h>

namespace leakwatch::probe {

Error load_error(std::string_view what, int err, const std::string& btf_path) {
  int e = std::abs(err);
  char text[128];
  if (libbpf_strerror(e, text, sizeof text) != 0) *fmt::format_to_n(text, sizeof text - 1, "error {}", e).out = 0;
  std::string hint;
  if (e == E2BIG || e == ENOMEM)
    hint = "a map is too large for this kernel or host: lower --max-allocs or --max-stacks";
  else if (e == EPERM || e == EACCES)
    hint = "loading BPF programs needs root (CAP_BPF and CAP_PERFMON)";
  else if (!btf_path.empty())
    hint = fmt::format("is {} this kernel's BTF?", btf_path);
  else
    hint = "is BTF at /sys/kernel/btf/vmlinux?";
  return Error{fmt::format("cannot load the {}: {} ({})", what, text, hint), e < 4000 ? e : 0};
}

}  // namespace leakwatch::probe
