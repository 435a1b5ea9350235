// The injector's decisions that need no process: the ptrace_scope rule, the seccomp filter
// evaluation, the resume state after a stop inside a system call, the unsafe functions, and
// the loader stub's layout.
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <stddef.h>
#include <sys/syscall.h>

#include <cstring>

#include "inject/safe_point.h"
#include "inject/seccomp_check.h"
#include "inject/stub.h"
#include "inject/target_checks.h"

namespace leakwatch::inject {
namespace {

TEST(InjectPtraceScope, RulesOfYama) {
  EXPECT_TRUE(check_ptrace_scope(-1, false).has_value());  // no Yama
  EXPECT_TRUE(check_ptrace_scope(0, false).has_value());
  EXPECT_TRUE(check_ptrace_scope(1, true).has_value());
  EXPECT_TRUE(check_ptrace_scope(2, true).has_value());
  EXPECT_FALSE(check_ptrace_scope(1, false).has_value());
  EXPECT_FALSE(check_ptrace_scope(2, false).has_value());
  auto three = check_ptrace_scope(3, true);
  ASSERT_FALSE(three.has_value());
  EXPECT_NE(three.error().message.find("ptrace_scope is 3"), std::string::npos);
}

// A filter: kill the process on `nr` when its first argument equals `arg0` (any if ~0),
// return EPERM for `errno_nr`, allow the rest; x86-64 only.
std::vector<sock_filter> filter(int nr, uint32_t arg0, int errno_nr) {
  std::vector<sock_filter> f = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(errno_nr), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 1),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arg0, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  return f;
}

TEST(InjectSeccomp, FiltersRunAsTheKernelRunsThem) {
  seccomp_data d{};
  d.arch = AUDIT_ARCH_X86_64;
  d.nr = SYS_openat;
  d.args[0] = 5;
  EXPECT_EQ(run_seccomp_filter(filter(SYS_openat, 5, SYS_ptrace), d), SECCOMP_RET_KILL_PROCESS);
  d.args[0] = 6;
  EXPECT_EQ(run_seccomp_filter(filter(SYS_openat, 5, SYS_ptrace), d), SECCOMP_RET_ALLOW);
  d.nr = SYS_ptrace;
  EXPECT_EQ(run_seccomp_filter(filter(SYS_openat, 5, SYS_ptrace), d), SECCOMP_RET_ERRNO | 1);
  d.arch = 0;  // another architecture
  EXPECT_EQ(run_seccomp_filter(filter(SYS_openat, 5, SYS_ptrace), d), SECCOMP_RET_KILL_PROCESS);
  EXPECT_EQ(run_seccomp_filter({}, d), SECCOMP_RET_KILL_PROCESS);  // no return: invalid
  // A load at an offset whose end wraps 32 bits (found by the seccomp_filter fuzzer): an
  // invalid program, not a read outside seccomp_data.
  const std::vector<sock_filter> wraps = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0xfffffffcu),
                                          BPF_STMT(BPF_RET | BPF_A, 0)};
  EXPECT_EQ(run_seccomp_filter(wraps, d), SECCOMP_RET_KILL_PROCESS);
}

TEST(InjectSeccomp, TheInjectionsCallsAreJudgedAndTheMostRestrictiveFilterWins) {
  const auto& calls = injection_syscalls();
  // openat of the library with AT_FDCWD: the filter below kills on it.
  auto kills_openat = filter(SYS_openat, static_cast<uint32_t>(-100), SYS_ptrace);
  auto only_ptrace = filter(SYS_kexec_load, 0, SYS_ptrace);
  EXPECT_EQ(judge_filters({only_ptrace}, calls, 0x1000), "");
  auto why = judge_filters({only_ptrace, kills_openat}, calls, 0x1000);
  EXPECT_NE(why.find("openat of the library"), std::string::npos) << why;
  EXPECT_NE(why.find("kill the process"), std::string::npos) << why;
  // mmap refused with an error: the stub's first mapping would fail.
  auto no_mmap = filter(SYS_kexec_load, 0, SYS_mmap);
  EXPECT_NE(judge_filters({no_mmap}, calls, 0x1000).find("mmap of the loader stub"), std::string::npos);
}

TEST(InjectStub, ResumeStateFollowsTheKernelsRestartRule) {
  user_regs_struct r{};
  r.rip = 0x1002;
  r.orig_rax = SYS_read;
  for (long code : {-512L, -513L, -514L}) {
    r.rax = static_cast<uint64_t>(code);
    auto s = resume_regs(r);
    EXPECT_EQ(s.rip, 0x1000u);
    EXPECT_EQ(s.rax, static_cast<uint64_t>(SYS_read));
  }
  r.rax = static_cast<uint64_t>(-516L);  // ERESTART_RESTARTBLOCK
  auto s = resume_regs(r);
  EXPECT_EQ(s.rip, 0x1000u);
  EXPECT_EQ(s.rax, static_cast<uint64_t>(SYS_restart_syscall));
  r.rax = static_cast<uint64_t>(-4L);  // EINTR from read: a signal's doing, left as is
  s = resume_regs(r);
  EXPECT_FALSE(needs_restart(r));
  EXPECT_EQ(s.rip, 0x1002u);
  EXPECT_EQ(s.rax, static_cast<uint64_t>(-4L));
  r.orig_rax = SYS_epoll_wait;  // EINTR from a wait that any stop ends: re-issued
  EXPECT_TRUE(needs_restart(r));
  s = resume_regs(r);
  EXPECT_EQ(s.rip, 0x1000u);
  EXPECT_EQ(s.rax, static_cast<uint64_t>(SYS_epoll_wait));
  r.orig_rax = SYS_read;
  r.orig_rax = static_cast<uint64_t>(-1);  // not in a system call
  r.rax = static_cast<uint64_t>(-512L);
  s = resume_regs(r);
  EXPECT_EQ(s.rip, 0x1002u);
}

TEST(InjectStub, SlotsAreFilledAndTheThreadStartsOnItsPrivateStack) {
  StubParams p;
  p.code_addr = 0x10000;
  p.rw_addr = 0x20000;
  p.fn_dlopen = 0x1111;
  p.path = "/tmp/x/libleakwatch-preload.so";
  p.resume.rip = 0x4242;
  p.resume.eflags = 0x246;
  auto code = build_stub(p);
  ASSERT_EQ(code.size() % 4096, 0u);
  auto has = [&](const void* bytes, size_t n) {
    return std::search(code.begin(), code.end(), static_cast<const uint8_t*>(bytes),
                       static_cast<const uint8_t*>(bytes) + n) != code.end();
  };
  uint64_t rip = 0x4242, dlopen = 0x1111, ctl = 0x20000;
  EXPECT_TRUE(has(&rip, 8));
  EXPECT_TRUE(has(&dlopen, 8));
  EXPECT_TRUE(has(&ctl, 8));
  EXPECT_TRUE(has(p.path.data(), p.path.size()));
  EXPECT_TRUE(has(LEAKWATCH_INJECT_INIT_SYMBOL, sizeof(LEAKWATCH_INJECT_INIT_SYMBOL)));
  user_regs_struct stopped{};
  stopped.eflags = 0x746;  // TF and DF set
  stopped.orig_rax = 7;
  auto e = stub_entry_regs(p, stopped);
  EXPECT_EQ(e.rip, 0x10000u);
  EXPECT_EQ(e.rsp % 16, 0u);
  EXPECT_GT(e.rsp, p.rw_addr + 4096 + xsave_area_size());
  EXPECT_LE(e.rsp, p.rw_addr + stub_rw_size());
  EXPECT_EQ(e.orig_rax, static_cast<uint64_t>(-1));
  EXPECT_EQ(e.eflags & 0x500, 0u);
}

TEST(InjectSafePoint, AllocatorLoaderAndLockHoldersAreUnsafe) {
  for (const char* f : {"malloc", "free", "__libc_malloc", "dlopen", "dl_iterate_phdr", "fork",
                        "_Znwm", "_ZdlPvm", "je_mallocx", "tc_malloc", "mi_free", "exit",
                        "setlocale"})
    EXPECT_TRUE(SafePointJudge::unsafe_function(f)) << f;
  for (const char* f : {"read", "epoll_wait", "main", "pthread_cond_wait", "memcpy", "_ZN3foo3barEv"})
    EXPECT_FALSE(SafePointJudge::unsafe_function(f)) << f;
}

}  // namespace
}  // namespace leakwatch::inject
