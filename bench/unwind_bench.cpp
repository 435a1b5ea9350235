// Throughput of the DWARF unwinder (src/unwind) on real stack snapshots, and libdwfl's own
// unwinder on the same snapshots for comparison.
//
//   bench_unwind_bench [SECONDS_PER_CASE]     (default 0.5; medians of 5 repetitions)
//
// The snapshots come from the unwinder test fixtures (tests/fixtures/uw_*_nofp, built -O2
// -fomit-frame-pointer), which capture their own stacks as an allocator's return probe
// would and stay alive so their maps can be read.  Cases, per snapshot:
//   warm     unwind() again and again: CFI rows cached, objects open (the steady state)
//   no-rows  the same with the row cache cleared before each unwind: libdw finds the FDE
//            and runs the CFI program for every frame
//   libdwfl  dwfl_getthread_frames over the same snapshot (memory_read callback on the
//            snapshot, set_initial_registers with rip/rsp/rbp), Dwfl set up once
//   cold     DwarfUnwinder::Create(pid) with an empty CfiCache + the first unwind
//   saved    tests/data/unwind/chain.snap without the process (CreateOffline)
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "unwind/snapshot_file.h"
#include "unwind/unwinder.h"

using namespace leakwatch;
using Clock = std::chrono::steady_clock;

namespace {

double g_seconds = 0.5;

// A fixture process writing its snapshots to `dir`, alive until destroyed.
class Fixture {
 public:
  Fixture(const std::string& program, const std::string& dir) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) std::exit(1);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::execl(program.c_str(), program.c_str(), dir.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    std::string got;
    char c;
    while (got.find("ready") == std::string::npos && ::read(out[0], &c, 1) == 1) got += c;
    ::close(out[0]);
    ok_ = got.find("ready") != std::string::npos;
  }
  ~Fixture() {
    ::close(stdin_);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  bool ok() const { return ok_; }
  int pid() const { return pid_; }

 private:
  int pid_ = -1, stdin_ = -1;
  bool ok_ = false;
};

// This thread's CPU time: the machine is shared, and waiting for a CPU is not unwinding.
double cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Runs `body` (one stack per call) for g_seconds of CPU time in 5 repetitions; returns the
// median stacks per CPU second.
double rate(const std::function<void()>& body) {
  std::vector<double> rates;
  for (int rep = 0; rep < 5; ++rep) {
    uint64_t n = 0;
    const double t0 = cpu_seconds();
    double t = t0;
    do {
      for (int i = 0; i < 64; ++i) body();
      n += 64;
      t = cpu_seconds();
    } while (t - t0 < g_seconds / 5);
    rates.push_back(static_cast<double>(n) / (t - t0));
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

// ---- libdwfl's unwinder over a snapshot ----
struct DwflRun {
  const lw_stack_snapshot* snap = nullptr;
  pid_t pid = 0;
  std::vector<uint64_t> frames;
};

pid_t dwfl_next_thread(Dwfl*, void* arg, void** thread_argp) {
  if (*thread_argp != nullptr) return 0;
  *thread_argp = arg;
  return static_cast<DwflRun*>(arg)->pid;
}

bool dwfl_memory_read(Dwfl*, Dwarf_Addr addr, Dwarf_Word* result, void* arg) {
  const lw_stack_snapshot* s = static_cast<DwflRun*>(arg)->snap;
  if (addr < s->sp || addr - s->sp > s->stack_size || s->stack_size - (addr - s->sp) < 8) {
    return false;
  }
  std::memcpy(result, s->stack + (addr - s->sp), 8);
  return true;
}

bool dwfl_initial_registers(Dwfl_Thread* thread, void* arg) {
  const lw_stack_snapshot* s = static_cast<DwflRun*>(arg)->snap;
  Dwarf_Word regs[2] = {s->bp, s->sp};  // DWARF 6 = rbp, 7 = rsp
  if (!dwfl_thread_state_registers(thread, 6, 2, regs)) return false;
  dwfl_thread_state_register_pc(thread, s->ip);
  return true;
}

int dwfl_frame_cb(Dwfl_Frame* state, void* arg) {
  Dwarf_Addr pc = 0;
  bool activation = false;
  if (!dwfl_frame_pc(state, &pc, &activation)) return DWARF_CB_ABORT;
  static_cast<DwflRun*>(arg)->frames.push_back(pc);
  return DWARF_CB_OK;
}

const Dwfl_Thread_Callbacks kThreadCallbacks = {
    dwfl_next_thread, nullptr, dwfl_memory_read, dwfl_initial_registers, nullptr, nullptr};
char* g_debuginfo_path = nullptr;
const Dwfl_Callbacks kDwflCallbacks = {dwfl_linux_proc_find_elf, dwfl_standard_find_debuginfo,
                                       nullptr, &g_debuginfo_path};

struct DwflBench {
  Dwfl* dwfl = nullptr;
  DwflRun run;
  ~DwflBench() {
    if (dwfl != nullptr) dwfl_end(dwfl);
  }
  bool init(int pid) {
    run.pid = pid;
    dwfl = dwfl_begin(&kDwflCallbacks);
    if (dwfl == nullptr || dwfl_linux_proc_report(dwfl, pid) != 0) return false;
    if (dwfl_report_end(dwfl, nullptr, nullptr) != 0) return false;
    return dwfl_attach_state(dwfl, nullptr, pid, &kThreadCallbacks, &run);
  }
  // The frames (or an empty list on error).
  const std::vector<uint64_t>& unwind(const lw_stack_snapshot& snap) {
    run.snap = &snap;
    run.frames.clear();
    dwfl_getthread_frames(dwfl, run.pid, dwfl_frame_cb, &run);
    return run.frames;
  }
};

void report(const char* name, const char* variant, size_t frames, double stacks_per_s,
            const std::string& note = "") {
  std::printf("| %-8s | %-8s | %6zu | %12.0f | %10.0f | %s\n", name, variant, frames, stacks_per_s,
              1e9 / stacks_per_s / static_cast<double>(frames), note.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) g_seconds = std::atof(argv[1]);
  ::unsetenv("DEBUGINFOD_URLS");  // libdwfl must not go to the network
  const std::string fixtures = LEAKWATCH_FIXTURE_DIR;
  const std::string dir =
      std::filesystem::temp_directory_path() / ("unwind-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);

  std::printf("| stack    | case     | frames | stacks/s     | ns/frame   | note\n");
  // stacks/s and ns/frame are per second of this thread's CPU time.
  std::printf("|---|---|---|---|---|---|\n");
  struct Case {
    std::string fixture, snapshot;
  };
  const std::vector<Case> cases = {{"uw_chain_nofp", "chain"},
                                   {"uw_chain_nofp", "qsort"},
                                   {"uw_chain_nofp", "strdup"},
                                   {"uw_cxx_nofp", "stream"}};
  for (const Case& c : cases) {
    Fixture fx(fixtures + "/" + c.fixture, dir);
    if (!fx.ok()) {
      std::fprintf(stderr, "fixture %s did not start\n", c.fixture.c_str());
      return 1;
    }
    auto snap = unwind::read_snapshot_file(dir + "/" + c.snapshot + ".snap");
    if (!snap) {
      std::fprintf(stderr, "%s\n", snap.error().message.c_str());
      return 1;
    }
    const lw_stack_snapshot& s = **snap;

    // cold: a fresh cache each time; medians of 15.
    std::vector<double> cold_us;
    for (int i = 0; i < 15; ++i) {
      unwind::UnwindOptions o;
      o.cfi_cache = std::make_shared<unwind::CfiCache>();
      auto t0 = Clock::now();
      auto u = unwind::DwarfUnwinder::Create(fx.pid(), o);
      if (!u || !(*u)->unwind(s)) return 1;
      cold_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    std::sort(cold_us.begin(), cold_us.end());

    auto cache = std::make_shared<unwind::CfiCache>();
    unwind::UnwindOptions o;
    o.cfi_cache = cache;
    auto u = unwind::DwarfUnwinder::Create(fx.pid(), o);
    if (!u) return 1;
    auto first = (*u)->unwind(s);
    if (!first || first->truncated) {
      std::fprintf(stderr, "%s: %s\n", c.snapshot.c_str(),
                   first ? first->reason.c_str() : first.error().message.c_str());
      return 1;
    }
    const size_t n = first->frames.size();
    unwind::DwarfUnwinder& uw = **u;
    double warm = rate([&] { (void)uw.unwind(s); });
    report(c.snapshot.c_str(), "warm", n, warm,
           "stack bytes used " + std::to_string(first->stack_bytes_used) + " of " +
               std::to_string(s.stack_size));
    double no_rows = rate([&] {
      cache->clear_rows();
      (void)uw.unwind(s);
    });
    report(c.snapshot.c_str(), "no-rows", n, no_rows);

    DwflBench dw;
    if (!dw.init(fx.pid())) {
      std::printf("| %s | libdwfl | - | - | - | setup failed: %s\n", c.snapshot.c_str(),
                  dwfl_errmsg(-1));
    } else {
      std::vector<uint64_t> theirs = dw.unwind(s);
      double lib = rate([&] { (void)dw.unwind(s); });
      report(c.snapshot.c_str(), "libdwfl", theirs.size(), lib,
             theirs == first->frames ? "same frames" : "DIFFERENT frames");
    }
    std::printf("| %-8s | cold     | %6zu | %12s | %10s | Create + first unwind: median %.0f us\n",
                c.snapshot.c_str(), n, "-", "-", cold_us[cold_us.size() / 2]);
  }

  // The saved snapshot, offline.
  const std::string data = std::string(LEAKWATCH_TEST_DATA) + "/unwind";
  auto maps = read_file(data + "/maps");
  auto snap = unwind::read_snapshot_file(data + "/chain.snap");
  if (maps && snap) {
    // Objects from the system only when they are the recorded ones (same build id).
    std::map<std::string, std::string> ids;
    std::ifstream in(data + "/build-ids");
    for (std::string path, id; in >> path >> id;) ids[path] = id;
    auto u = unwind::DwarfUnwinder::CreateOffline(*maps, [&](const std::string& p) {
      if (p.ends_with("/uw_chain_nofp")) return data + "/uw_chain_nofp";
      auto obj = unwind::ObjectCfi::Open(UniqueFd(::open(p.c_str(), O_RDONLY | O_CLOEXEC)), p, "",
                                         false);
      return obj && ids.count(p) != 0 && (*obj)->build_id() == ids[p] ? p : std::string();
    });
    if (u) {
      auto first = (*u)->unwind(**snap);
      double r = rate([&] { (void)(*u)->unwind(**snap); });
      report("saved", "warm", first->frames.size(), r,
             first->truncated ? "truncated: " + first->reason : "complete");
      unwind::UnwindStats st = (*u)->stats();
      std::printf("\nunwind stats of the saved run: %llu stacks, %llu frames, %.1f ms in unwind(), "
                  "%llu snapshot bytes (%llu used)\n",
                  static_cast<unsigned long long>(st.stacks),
                  static_cast<unsigned long long>(st.frames), st.unwind_ns / 1e6,
                  static_cast<unsigned long long>(st.snapshot_bytes),
                  static_cast<unsigned long long>(st.stack_bytes_used));
    }
  }
  std::filesystem::remove_all(dir);
  return 0;
}
