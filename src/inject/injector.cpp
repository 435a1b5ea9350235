#include "inject/injector.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <cstring>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/procfs.h"
#include "inject/ptrace_thread.h"
#include "inject/safe_point.h"
#include "inject/seccomp_check.h"
#include "inject/stub.h"
#include "inject/target_checks.h"
#include "elf/elf_symbols.h"

namespace leakwatch::inject {
namespace {

constexpr int kRtldDlopen = static_cast<int>(0x80000000u);  // glibc's __RTLD_DLOPEN

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

struct LibcFunctions {
  uint64_t dlopen = 0, dlsym = 0, dlerror = 0, syscall_insn = 0;
  int dlopen_flags = RTLD_NOW | RTLD_NODELETE;
};

// Where `name` of the object at `path` (mapped in `maps`) is in the process; 0 if nowhere.
uint64_t runtime_address(const elf::ElfObject& elf, const std::string& path,
                         const std::vector<MapEntry>& maps, const std::string& name) {
  auto sym = elf.find(name);
  if (!sym) return 0;
  for (const auto& m : maps)
    if (m.path == path && m.executable && sym->file_offset >= m.offset &&
        sym->file_offset < m.offset + (m.end - m.start))
      return m.start + (sym->file_offset - m.offset);
  return 0;
}

// dlopen, dlsym, dlerror (glibc 2.34+ has them in libc; older ones have __libc_dlopen_mode
// and __libc_dlsym, without dlerror) and a `syscall` instruction, in the process's libc.
Result<LibcFunctions> find_libc_functions(int pid, const std::vector<MapEntry>& maps) {
  std::string libc;
  for (const auto& m : maps)
    if (m.file_backed() && m.path.ends_with("/libc.so.6")) libc = m.path;
  if (libc.empty()) return fail("pid {} has no libc.so.6 mapped", pid);
  auto elf = elf::ElfObject::Open(target_path(pid, libc));
  if (!elf) return std::unexpected(elf.error());
  LibcFunctions f;
  f.dlopen = runtime_address(*elf, libc, maps, "dlopen");
  f.dlsym = runtime_address(*elf, libc, maps, "dlsym");
  f.dlerror = runtime_address(*elf, libc, maps, "dlerror");
  if (f.dlopen == 0 || f.dlsym == 0) {
    f.dlopen = runtime_address(*elf, libc, maps, "__libc_dlopen_mode");
    f.dlsym = runtime_address(*elf, libc, maps, "__libc_dlsym");
    f.dlerror = 0;
    f.dlopen_flags |= kRtldDlopen;
  }
  if (f.dlopen == 0 || f.dlsym == 0)
    return fail("{} exports neither dlopen nor __libc_dlopen_mode: cannot load a library", libc);
  uint64_t sc = runtime_address(*elf, libc, maps, "syscall");
  uint8_t code[64] = {};
  size_t n = sc ? read_memory(pid, sc, code, sizeof(code)) : 0;
  for (size_t i = 0; i + 1 < n; ++i)
    if (code[i] == 0x0f && code[i + 1] == 0x05) {
      f.syscall_insn = sc + i;
      break;
    }
  if (f.syscall_insn == 0) return fail("no `syscall` instruction found in {}'s syscall()", libc);
  return f;
}

struct Attempt {
  bool refused = false;        // a definitive refusal (no retry)
  std::string error;
  bool started = false;        // the stub runs
  uint64_t ctl = 0;            // its control block in the process
};

// One stop of the process: pick a safe thread and start the stub in it, or say why not.
Attempt try_once(int pid, const InjectOptions& o, const LibcFunctions& libc,
                 SafePointJudge& judge, const std::string& path, InjectOutcome& out,
                 Clock::time_point deadline) {
  Attempt a;
  auto t0 = Clock::now();
  auto stop = ThreadStop::Stop(pid, std::min(deadline, t0 + o.stop_timeout));
  if (!stop) {
    a.refused = true;
    a.error = fmt::format("cannot trace pid {}: {}", pid, stop.error().message);
    return a;
  }
  auto t_stopped = Clock::now();
  out.stop_ms = ms_between(t0, t_stopped);
  auto& threads = (*stop)->threads();
  out.threads = static_cast<int>(threads.size());
  out.skipped.clear();
  for (const auto& t : threads)
    if (t.group_stop) {
      a.refused = true;
      a.error = fmt::format("pid {} is being stopped by a signal: continue it first", pid);
      return a;
    }
  // Threads blocked in a system call first: they are idle, and their stacks end in a libc
  // wrapper, not in the middle of the program's work.
  std::vector<StoppedThread*> order;
  for (auto& t : threads) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), [](const StoppedThread* x, const StoppedThread* y) {
    return x->stopped && x->in_syscall() && !(y->stopped && y->in_syscall());
  });
  StoppedThread* chosen = nullptr;
  for (StoppedThread* t : order) {
    std::string why = judge.judge(*t);
    if (why.empty()) {
      chosen = t;
      break;
    }
    out.skipped.push_back(fmt::format("thread {}: {}", t->tid, why));
  }
  out.judge_ms = ms_between(t_stopped, Clock::now());
  if (!chosen) {
    a.error = fmt::format("no thread of pid {} at a safe point ({})", pid,
                          fmt::join(out.skipped, "; "));
    return a;  // the ThreadStop detaches every thread
  }
  if (auto s = check_seccomp(pid, chosen->tid, libc.syscall_insn); !s) {
    a.refused = true;
    a.error = s.error().message;
    return a;
  }
  const user_regs_struct stopped_regs = chosen->regs;
  (*stop)->detach_all_but(chosen->tid);
  auto others_released = Clock::now();
  out.pause_ms = ms_between(t0, others_released);
  out.tid = chosen->tid;

  auto remote_mmap = [&](size_t len, int prot, int flags) -> Result<uint64_t> {
    auto r = (*stop)->remote_syscall(*chosen, libc.syscall_insn, SYS_mmap,
                                     {0, len, static_cast<uint64_t>(prot),
                                      static_cast<uint64_t>(flags), ~0ull, 0},
                                     deadline);
    if (!r) return std::unexpected(r.error());
    if (*r < 0 && *r > -4096) return fail("mmap in pid {}: {}", pid, std::strerror(static_cast<int>(-*r)));
    return static_cast<uint64_t>(*r);
  };
  StubParams sp;
  auto code = remote_mmap(stub_code_size(), PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS);
  auto rw = code ? remote_mmap(stub_rw_size(), PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)
                 : Result<uint64_t>(std::unexpected(code.error()));
  if (!code || !rw) {
    a.refused = true;
    a.error = (code ? rw.error() : code.error()).message;
    return a;  // registers already put back by remote_syscall; the ThreadStop detaches
  }
  sp.code_addr = *code;
  sp.rw_addr = *rw;
  sp.fn_dlopen = libc.dlopen;
  sp.fn_dlsym = libc.dlsym;
  sp.fn_dlerror = libc.dlerror;
  sp.dlopen_flags = libc.dlopen_flags;
  sp.use_xsave = cpu_uses_xsave();
  sp.resume = resume_regs(stopped_regs);
  sp.config.abi_version = LEAKWATCH_INJECT_ABI_VERSION;
  sp.config.sample_bytes = o.sample_bytes;
  sp.config.sample_calls = o.sample_calls;
  sp.config.seed = o.seed;
  sp.path = path;
  auto bytes = build_stub(sp);
  if (auto w = (*stop)->write_memory(sp.code_addr, bytes.data(), bytes.size()); !w) {
    a.refused = true;
    a.error = w.error().message;
    return a;
  }
  user_regs_struct entry = stub_entry_regs(sp, chosen->regs);
  if (auto d = (*stop)->detach(*chosen, &entry); !d) {
    a.refused = true;
    a.error = d.error().message;
    return a;
  }
  out.thread_pause_ms = ms_between(t0, Clock::now());
  a.started = true;
  a.ctl = sp.rw_addr;
  return a;
}

Result<InjectOutcome> inject_on_this_thread(int pid, const InjectOptions& o) {
  auto maps = read_proc_maps(pid);
  if (!maps) return fail("no such process: {}", pid);
  if (auto r = check_ptrace_scope(read_ptrace_scope(), have_cap_sys_ptrace()); !r)
    return std::unexpected(r.error());
  if (auto r = check_target(pid, *maps); !r) return std::unexpected(r.error());
  InjectOutcome out;
  auto path = place_library(pid, o.library, &out.placement);
  if (!path) return std::unexpected(path.error());
  out.path = *path;
  auto libc = find_libc_functions(pid, *maps);
  if (!libc) return std::unexpected(libc.error());
  auto judge = SafePointJudge::Create(pid);
  if (!judge) return std::unexpected(judge.error());

  const auto deadline = Clock::now() + o.total_timeout;
  std::minstd_rand rng(static_cast<unsigned>(pid));
  Attempt a;
  for (out.attempts = 1;; ++out.attempts) {
    a = try_once(pid, o, *libc, **judge, out.path, out, deadline);
    if (a.started || a.refused) break;
    if (out.attempts >= o.max_attempts || Clock::now() >= deadline)
      return fail("{} after {} attempts", a.error, out.attempts);
    // A moment later the threads are elsewhere; the jitter avoids a period of the program's.
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 20));
  }
  if (!a.started) return fail("{}", a.error);

  // The stub runs on its own now; wait for its "done".
  auto started = Clock::now();
  StubControl ctl{};
  for (;;) {
    if (read_memory(pid, a.ctl, &ctl, sizeof(ctl)) != sizeof(ctl))
      return fail("pid {} went away while loading the sampling library", pid);
    if (ctl.done) break;
    if (Clock::now() >= deadline + std::chrono::seconds(5))
      return fail("pid {}: loading the sampling library has not finished after {:.0f} ms (thread "
                  "{} resumes where it was when it does)",
                  pid, ms_between(started, Clock::now()), out.tid);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  out.load_ms = ms_between(started, Clock::now());
  out.result = ctl.result;
  if (ctl.handle == 0)
    return fail("pid {} could not load {}: {}", pid, out.path,
                ctl.message[0] ? ctl.message : "dlopen failed");
  if (ctl.init == 0)
    return fail("pid {} loaded {} but it has no {}: not a leakwatch library of this version", pid,
                out.path, LEAKWATCH_INJECT_INIT_SYMBOL);
  switch (static_cast<int>(ctl.rc)) {
    case LW_INJECT_OK:
      return out;
    case LW_INJECT_E_NOT_INJECTED:
      return fail("pid {} already runs with the sampling library preloaded", pid);
    case LW_INJECT_E_ALREADY:
      return fail("pid {} has the sampling library from an earlier injection that did not "
                  "finish starting it",
                  pid);
    case LW_INJECT_E_NO_MALLOC:
      return fail("the sampling library found no malloc/free in pid {}", pid);
    case LW_INJECT_E_NO_SET:
      return fail("the sampling library could not map its sampled set in pid {}", pid);
    default:
      return fail("the sampling library's initialisation failed in pid {} (code {})", pid, ctl.rc);
  }
}

}  // namespace

Result<InjectOutcome> inject_library(int pid, const InjectOptions& options) {
  Result<InjectOutcome> result = fail("injection did not run");
  // Its own thread: ptrace belongs to the thread that attached, and whatever it still traces
  // (a thread that never stopped) is detached by the kernel when it exits.
  std::thread worker([&] { result = inject_on_this_thread(pid, options); });
  worker.join();
  return result;
}

}  // namespace leakwatch::inject
