// Seccomp filters as `leakwatch memleak -p PID --inject` reads them from a target's threads
// (PTRACE_SECCOMP_GET_FILTER) and runs them on the calls an injection makes: the input is
// up to four classic BPF programs (1st byte: how many; the rest split evenly, 8 bytes an
// instruction).  Whatever the programs, the interpreter ends and gives an action.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cstring>
#include <vector>

#include "fuzz_support.h"
#include "inject/seccomp_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace leakwatch;
  if (size < 1) return 0;
  const size_t count = 1 + data[0] % 4;
  const size_t insns = (size - 1) / sizeof(sock_filter);
  std::vector<std::vector<sock_filter>> filters(count);
  for (size_t i = 0; i < insns; ++i) {
    sock_filter f;
    std::memcpy(&f, data + 1 + i * sizeof f, sizeof f);
    filters[i * count / insns].push_back(f);
  }
  (void)inject::judge_filters(filters, inject::injection_syscalls(), 0x7f0000001000);
  // Each program alone on the first call, from another instruction pointer.
  seccomp_data d{};
  d.nr = inject::injection_syscalls().front().nr;
  d.arch = AUDIT_ARCH_X86_64;
  for (const auto& f : filters) (void)inject::run_seccomp_filter(f, d);
  return 0;
}
