#include "inject/seccomp_check.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include <cstring>
#include <fstream>

#include <fmt/format.h>

namespace leakwatch::inject {
namespace {

constexpr uint64_t kAtFdCwd = static_cast<uint64_t>(-100);
constexpr uint64_t kMapDenyWrite = 0x0800;
constexpr uint64_t kAddr = 0x7f0000000000;

const char* action_name(uint32_t action) {
  switch (action & SECCOMP_RET_ACTION_FULL) {
    case SECCOMP_RET_KILL_PROCESS: return "kill the process";
    case SECCOMP_RET_KILL_THREAD: return "kill the thread";
    case SECCOMP_RET_TRAP: return "raise SIGSYS";
    case SECCOMP_RET_ERRNO: return "fail it with an error";
    case SECCOMP_RET_USER_NOTIF: return "hand it to a supervisor";
    case SECCOMP_RET_TRACE: return "hand it to a tracer";
    default: return "refuse it";
  }
}

// The kernel's order: lower actions (as signed values) are more restrictive.
bool more_restrictive(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a & SECCOMP_RET_ACTION_FULL) <
         static_cast<int32_t>(b & SECCOMP_RET_ACTION_FULL);
}

}  // namespace

const std::vector<SyscallProbe>& injection_syscalls() {
  static const std::vector<SyscallProbe> calls = {
      {SYS_mmap, {0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0}, "mmap of the loader stub"},
      {SYS_mmap, {0, 266240, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, ~0ull, 0}, "mmap of its stack"},
      {SYS_openat, {kAtFdCwd, kAddr, O_RDONLY | O_CLOEXEC, 0, 0, 0}, "openat of the library"},
      {SYS_read, {3, kAddr, 832, 0, 0, 0}, "read"},
      {SYS_pread64, {3, kAddr, 784, 64, 0, 0}, "pread64"},
      {SYS_newfstatat, {3, kAddr, kAddr, 0x1000 /* AT_EMPTY_PATH */, 0, 0}, "fstat"},
      {SYS_fstat, {3, kAddr, 0, 0, 0, 0}, "fstat"},
      {SYS_mmap, {0, 1 << 20, PROT_READ, MAP_PRIVATE | kMapDenyWrite, 3, 0}, "mmap of the library"},
      {SYS_mmap, {kAddr, 1 << 16, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED | kMapDenyWrite, 3, 4096}, "mmap of its code"},
      {SYS_mmap, {kAddr, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | kMapDenyWrite, 3, 8192}, "mmap of its data"},
      {SYS_mmap, {kAddr, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, ~0ull, 0}, "mmap of its bss"},
      {SYS_mprotect, {kAddr, 4096, PROT_READ, 0, 0, 0}, "mprotect (RELRO)"},
      {SYS_mprotect, {kAddr, 4096, PROT_NONE, 0, 0, 0}, "mprotect"},
      {SYS_mprotect, {kAddr, 4096, PROT_READ | PROT_WRITE, 0, 0, 0}, "mprotect of a GOT page"},
      {SYS_munmap, {kAddr, 4096, 0, 0, 0, 0}, "munmap"},
      {SYS_close, {3, 0, 0, 0, 0, 0}, "close"},
      {SYS_futex, {kAddr, 128 /* FUTEX_WAIT_PRIVATE */, 2, 0, 0, 0}, "futex"},
      {SYS_futex, {kAddr, 129 /* FUTEX_WAKE_PRIVATE */, 1, 0, 0, 0}, "futex"},
      {SYS_brk, {0, 0, 0, 0, 0, 0}, "brk"},
      {SYS_getpid, {0, 0, 0, 0, 0, 0}, "getpid"},
      {SYS_mmap, {0, 1 << 22, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, ~0ull, 0}, "mmap of the sampled set"},
  };
  return calls;
}

uint32_t run_seccomp_filter(const std::vector<sock_filter>& prog, const seccomp_data& data) {
  uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {};
  const auto* bytes = reinterpret_cast<const uint8_t*>(&data);
  for (size_t pc = 0; pc < prog.size(); ++pc) {
    const sock_filter& f = prog[pc];
    uint32_t src = BPF_SRC(f.code) == BPF_X ? x : f.k;
    switch (BPF_CLASS(f.code)) {
      case BPF_LD:
        if (BPF_MODE(f.code) == BPF_ABS && BPF_SIZE(f.code) == BPF_W && f.k <= sizeof(data) - 4 && f.k % 4 == 0)
          std::memcpy(&a, bytes + f.k, 4);
        else if (BPF_MODE(f.code) == BPF_IMM) a = f.k;
        else if (BPF_MODE(f.code) == BPF_MEM && f.k < BPF_MEMWORDS) a = mem[f.k];
        else if (BPF_MODE(f.code) == BPF_LEN) a = sizeof(data);
        else return SECCOMP_RET_KILL_PROCESS;
        break;
      case BPF_LDX:
        if (BPF_MODE(f.code) == BPF_IMM) x = f.k;
        else if (BPF_MODE(f.code) == BPF_MEM && f.k < BPF_MEMWORDS) x = mem[f.k];
        else if (BPF_MODE(f.code) == BPF_LEN) x = sizeof(data);
        else return SECCOMP_RET_KILL_PROCESS;
        break;
      case BPF_ST:
        if (f.k >= BPF_MEMWORDS) return SECCOMP_RET_KILL_PROCESS;
        mem[f.k] = a;
        break;
      case BPF_STX:
        if (f.k >= BPF_MEMWORDS) return SECCOMP_RET_KILL_PROCESS;
        mem[f.k] = x;
        break;
      case BPF_ALU:
        switch (BPF_OP(f.code)) {
          case BPF_ADD: a += src; break;
          case BPF_SUB: a -= src; break;
          case BPF_MUL: a *= src; break;
          case BPF_DIV: if (src == 0) return SECCOMP_RET_KILL_PROCESS; a /= src; break;
          case BPF_MOD: if (src == 0) return SECCOMP_RET_KILL_PROCESS; a %= src; break;
          case BPF_OR: a |= src; break;
          case BPF_AND: a &= src; break;
          case BPF_XOR: a ^= src; break;
          case BPF_LSH: a = src >= 32 ? 0 : a << src; break;
          case BPF_RSH: a = src >= 32 ? 0 : a >> src; break;
          case BPF_NEG: a = -a; break;
          default: return SECCOMP_RET_KILL_PROCESS;
        }
        break;
      case BPF_JMP: {
        if (BPF_OP(f.code) == BPF_JA) {
          pc += f.k;
          break;
        }
        bool taken = false;
        switch (BPF_OP(f.code)) {
          case BPF_JEQ: taken = a == src; break;
          case BPF_JGT: taken = a > src; break;
          case BPF_JGE: taken = a >= src; break;
          case BPF_JSET: taken = (a & src) != 0; break;
          default: return SECCOMP_RET_KILL_PROCESS;
        }
        pc += taken ? f.jt : f.jf;
        break;
      }
      case BPF_RET:
        return BPF_RVAL(f.code) == BPF_A ? a : f.k;
      case BPF_MISC:
        if (BPF_MISCOP(f.code) == BPF_TAX) x = a;
        else a = x;
        break;
      default:
        return SECCOMP_RET_KILL_PROCESS;
    }
  }
  return SECCOMP_RET_KILL_PROCESS;  // fell off the end: not a valid program
}

std::string judge_filters(const std::vector<std::vector<sock_filter>>& filters,
                          const std::vector<SyscallProbe>& calls, uint64_t ip) {
  for (const auto& call : calls) {
    seccomp_data d{};
    d.nr = call.nr;
    d.arch = AUDIT_ARCH_X86_64;
    d.instruction_pointer = ip;
    for (int i = 0; i < 6; ++i) d.args[i] = call.args[i];
    uint32_t verdict = SECCOMP_RET_ALLOW;
    for (const auto& f : filters) {
      uint32_t r = run_seccomp_filter(f, d);
      if (more_restrictive(r, verdict)) verdict = r;
    }
    uint32_t action = verdict & SECCOMP_RET_ACTION_FULL;
    if (action != SECCOMP_RET_ALLOW && action != SECCOMP_RET_LOG)
      return fmt::format("{} (system call {}): its seccomp filter would {}", call.what, call.nr,
                         action_name(verdict));
  }
  return "";
}

int seccomp_mode(int pid, int tid) {
  std::ifstream in(fmt::format("/proc/{}/task/{}/status", pid, tid));
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("Seccomp:")) return std::atoi(line.c_str() + 8);
  return -1;
}

Result<void> check_seccomp(int pid, int tid, uint64_t ip) {
  int mode = seccomp_mode(pid, tid);
  if (mode <= 0) return {};
  if (mode == 1)
    return fail("thread {} of pid {} runs in seccomp strict mode: the injection's system calls "
                "would kill it",
                tid, pid);
  std::vector<std::vector<sock_filter>> filters;
  for (unsigned long i = 0;; ++i) {
    long n = ::ptrace(PTRACE_SECCOMP_GET_FILTER, tid, reinterpret_cast<void*>(i), nullptr);
    if (n < 0) {
      if (errno == ENOENT) break;
      return fail("pid {} has a seccomp filter that leakwatch cannot read ({}): the injection "
                  "could be killed by it, so it is not attempted",
                  pid, std::strerror(errno));
    }
    std::vector<sock_filter> prog(static_cast<size_t>(n));
    if (::ptrace(PTRACE_SECCOMP_GET_FILTER, tid, reinterpret_cast<void*>(i), prog.data()) != n)
      return fail("pid {}: reading its seccomp filter {}: {}", pid, i, std::strerror(errno));
    filters.push_back(std::move(prog));
  }
  if (auto why = judge_filters(filters, injection_syscalls(), ip); !why.empty())
    return fail("pid {} cannot be injected: {}", pid, why);
  return {};
}

}  // namespace leakwatch::inject
