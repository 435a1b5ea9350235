#include "inject/stub.h"

#include <cpuid.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cstring>

extern "C" {
extern const uint8_t lw_stub_begin[], lw_stub_end[];
extern const uint8_t lw_stub_ctl[], lw_stub_use_xsave[], lw_stub_dlopen_flags[];
extern const uint8_t lw_stub_fn_dlopen[], lw_stub_fn_dlsym[], lw_stub_fn_dlerror[];
extern const uint8_t lw_stub_regs[], lw_stub_config[], lw_stub_init_name[], lw_stub_path[];
}

namespace leakwatch::inject {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kXsaveOffset = 4096;       // CTL_XSAVE in stub_x86_64.S
constexpr size_t kPrivateStack = 128 * 1024;  // dlopen and the library's init need < 32 KiB

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

template <typename T>
void put(std::vector<uint8_t>& code, const uint8_t* label, const T& value) {
  std::memcpy(code.data() + (label - lw_stub_begin), &value, sizeof(T));
}

}  // namespace

size_t stub_code_size() { return round_up(static_cast<size_t>(lw_stub_end - lw_stub_begin), kPage); }

bool cpu_uses_xsave() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  return (c & (1u << 27)) != 0;  // OSXSAVE: the kernel enabled XSAVE
}

size_t xsave_area_size() {
  unsigned a, b, c, d;
  if (!cpu_uses_xsave() || !__get_cpuid_count(0xd, 0, &a, &b, &c, &d)) return 512;
  return std::max<size_t>(b, 512);  // for the features enabled in XCR0
}

size_t stub_rw_size() { return kXsaveOffset + round_up(xsave_area_size(), kPage) + kPrivateStack; }

std::vector<uint8_t> build_stub(const StubParams& p) {
  std::vector<uint8_t> code(stub_code_size(), 0);
  std::memcpy(code.data(), lw_stub_begin, static_cast<size_t>(lw_stub_end - lw_stub_begin));
  put(code, lw_stub_ctl, p.rw_addr);
  put(code, lw_stub_fn_dlopen, p.fn_dlopen);
  put(code, lw_stub_fn_dlsym, p.fn_dlsym);
  put(code, lw_stub_fn_dlerror, p.fn_dlerror);
  put(code, lw_stub_use_xsave, static_cast<uint32_t>(p.use_xsave));
  put(code, lw_stub_dlopen_flags, static_cast<uint32_t>(p.dlopen_flags));
  const user_regs_struct& r = p.resume;
  const uint64_t regs[18] = {r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.r8,     r.r9,
                             r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rsp, r.eflags, r.rip};
  put(code, lw_stub_regs, regs);
  static_assert(sizeof(leakwatch_inject_config) <= 64);
  put(code, lw_stub_config, p.config);
  std::strncpy(reinterpret_cast<char*>(code.data() + (lw_stub_init_name - lw_stub_begin)),
               LEAKWATCH_INJECT_INIT_SYMBOL, 63);
  std::strncpy(reinterpret_cast<char*>(code.data() + (lw_stub_path - lw_stub_begin)),
               p.path.c_str(), 4095);
  return code;
}

user_regs_struct stub_entry_regs(const StubParams& p, const user_regs_struct& stopped) {
  user_regs_struct r = stopped;
  r.rip = p.code_addr;
  r.rsp = (p.rw_addr + stub_rw_size()) & ~uint64_t{15};
  r.orig_rax = static_cast<uint64_t>(-1);
  r.eflags &= ~(0x100ull | 0x400ull);  // TF, DF
  return r;
}

namespace {

// Waits that end with -EINTR after a stop without any signal (see the header).
bool eintr_after_stop(uint64_t nr) {
  switch (nr) {
    case SYS_epoll_wait:
    case SYS_epoll_pwait:
    case SYS_epoll_pwait2:
    case SYS_rt_sigtimedwait:
    case SYS_semop:
    case SYS_semtimedop:
    case SYS_io_getevents:
    case SYS_io_pgetevents:
      return true;
    default:
      return false;
  }
}

}  // namespace

bool needs_restart(const user_regs_struct& regs) {
  if (static_cast<int64_t>(regs.orig_rax) < 0) return false;
  int64_t rc = static_cast<int64_t>(regs.rax);
  return rc == -512 || rc == -513 || rc == -514 || rc == -516 ||
         (rc == -4 && eintr_after_stop(regs.orig_rax));
}

user_regs_struct resume_regs(const user_regs_struct& regs) {
  user_regs_struct r = regs;
  if (static_cast<int64_t>(regs.orig_rax) < 0) return r;
  switch (static_cast<int64_t>(regs.rax)) {
    case -4:  // EINTR
      if (!eintr_after_stop(regs.orig_rax)) break;
      r.rax = regs.orig_rax;
      r.rip -= 2;
      break;
    case -512:  // ERESTARTSYS
    case -513:  // ERESTARTNOINTR
    case -514:  // ERESTARTNOHAND
      r.rax = regs.orig_rax;
      r.rip -= 2;
      break;
    case -516:  // ERESTART_RESTARTBLOCK
      r.rax = SYS_restart_syscall;
      r.rip -= 2;
      break;
    default:
      break;
  }
  r.orig_rax = static_cast<uint64_t>(-1);
  return r;
}

}  // namespace leakwatch::inject
