// The loader stub (stub_x86_64.S) as it is placed in a target: its code page with the data
// slots filled in, and the read-write area it uses (control block, extended-state save
// area, private stack).
//
//   code page (r-x, leakwatch writes it through /proc/PID/mem)
//     stub code | ctl address, dlopen/dlsym/dlerror, flags | resume registers | config |
//     init symbol name | library path
//   read-write area
//     0     StubControl: done, handle, init, rc, dlerror message, leakwatch_inject_result
//     4096  xsave area (64-byte aligned)
//     ...   private stack; the thread starts with rsp at the top
//
// Thread-safety: plain functions.
#pragma once

#include <sys/user.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bpf/preload_abi.h"

namespace leakwatch::inject {

struct StubControl {
  uint32_t done;
  uint32_t pad0;
  uint64_t handle;  // dlopen's result
  uint64_t init;    // the init entry point found by dlsym
  uint64_t rc;      // its return value
  uint8_t pad1[32];
  char message[256];  // dlerror() when dlopen failed
  leakwatch_inject_result result;
};
static_assert(offsetof(StubControl, handle) == 8 && offsetof(StubControl, rc) == 24 &&
              offsetof(StubControl, message) == 64 && offsetof(StubControl, result) == 320,
              "StubControl must match the offsets in stub_x86_64.S");

struct StubParams {
  uint64_t code_addr = 0;  // where the code page is mapped in the target
  uint64_t rw_addr = 0;    // where the read-write area is mapped
  uint64_t fn_dlopen = 0, fn_dlsym = 0, fn_dlerror = 0;  // 0 dlerror: none
  int dlopen_flags = 0;
  bool use_xsave = true;
  user_regs_struct resume{};  // the state the thread resumes with (restart rule applied)
  leakwatch_inject_config config{};
  std::string path;  // the library as the target sees it
};

// Sizes of the two mappings.
size_t stub_code_size();
size_t stub_rw_size();
// Whether the CPU and kernel use XSAVE (else fxsave: SSE state only), and its area size.
bool cpu_uses_xsave();
size_t xsave_area_size();

// The code page's bytes with every slot filled.
std::vector<uint8_t> build_stub(const StubParams& p);

// The registers to start the thread with: rip at the code, rsp at the top of the private
// stack, orig_rax -1 (no system call restart on resume), TF and DF clear.
user_regs_struct stub_entry_regs(const StubParams& p, const user_regs_struct& stopped);

// The state the thread must resume with after being stopped at `regs`: as the kernel would
// have resumed it.  A system call interrupted by the stop (orig_rax >= 0 with -ERESTARTSYS,
// -ERESTARTNOINTR, -ERESTARTNOHAND) is re-issued (rip back over `syscall`, rax = its
// number); -ERESTART_RESTARTBLOCK re-issues restart_syscall.  A wait that Linux ends with
// -EINTR when its thread is merely stopped and resumed (epoll_wait, sigtimedwait, semop,
// io_getevents: signal(7), "Interruption of system calls ... by stop signals") is re-issued
// too: the stop is ours, not a signal the program could expect.  Anything else resumes as is.
user_regs_struct resume_regs(const user_regs_struct& regs);
// Whether resume_regs changes anything for `regs`.
bool needs_restart(const user_regs_struct& regs);

}  // namespace leakwatch::inject
