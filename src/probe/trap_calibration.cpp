#include "probe/trap_calibration.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "common/fd.h"
#include "common/procfs.h"
#include "probe/bpf_handles.h"
#include "trap_calibration.skel.h"

// The timed functions.  Written in assembly so that their first instruction is known: what
// the kernel does at a probe (emulate it, single-step it, or call a trampoline for a
// 5-byte NOP) depends on it.  Each does nothing and preserves every register.
extern "C" {
void leakwatch_cal_plain();
void leakwatch_cal_entry();
void leakwatch_cal_entry_return();
void leakwatch_cal_nop5();
void leakwatch_cal_single_step();
}

#define LW_CAL_PUSH_FN(name)                                  \
  ".p2align 4\n.globl " name "\n.hidden " name "\n.type " name \
  ",@function\n" name ":\n\tpush %rbp\n\tmov %rsp,%rbp\n\tpop %rbp\n\tret\n.size " name ",.-" name "\n"

__asm__(".pushsection .text\n"
        LW_CAL_PUSH_FN("leakwatch_cal_plain")
        LW_CAL_PUSH_FN("leakwatch_cal_entry")
        LW_CAL_PUSH_FN("leakwatch_cal_entry_return")
        ".p2align 4\n.globl leakwatch_cal_nop5\n.hidden leakwatch_cal_nop5\n"
        ".type leakwatch_cal_nop5,@function\nleakwatch_cal_nop5:\n"
        "\t.byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\tret\n.size leakwatch_cal_nop5,.-leakwatch_cal_nop5\n"
        ".p2align 4\n.globl leakwatch_cal_single_step\n.hidden leakwatch_cal_single_step\n"
        ".type leakwatch_cal_single_step,@function\nleakwatch_cal_single_step:\n"
        "\ttest %rdi,%rdi\n\tret\n.size leakwatch_cal_single_step,.-leakwatch_cal_single_step\n"
        ".popsection\n");

namespace leakwatch::probe {
namespace {

using Fn = void (*)();

struct SkelDeleter {
  void operator()(trap_calibration_bpf* s) const { trap_calibration_bpf__destroy(s); }
};

// Where a function of this process lies in its file: the object's path and file offset.
Result<std::pair<std::string, uint64_t>> file_location(Fn fn) {
  auto maps = read_proc_maps(::getpid());
  if (!maps) return std::unexpected(maps.error());
  const auto addr = reinterpret_cast<uint64_t>(fn);
  for (const MapEntry& m : *maps) {
    if (addr < m.start || addr >= m.end) continue;
    if (!m.file_backed()) return fail("calibration: function at 0x{:x} is not in a file mapping", addr);
    // A binary replaced since it started is still reachable through /proc/self/exe.
    std::string path = m.deleted() ? fmt::format("/proc/{}/exe", ::getpid()) : m.file_path();
    return std::pair{path, addr - m.start + m.offset};
  }
  return fail("calibration: function at 0x{:x} is not mapped", addr);
}

uint64_t thread_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// CPU ns per call of `fn`, called `calls` times.  This thread's CPU time, not the wall
// clock: the trap runs in the probed thread and is charged to it, as in a traced program
// (what the guard weighs it against), while time spent waiting for a CPU on a busy host
// is not a cost of the probe.
double time_calls(Fn fn, uint64_t calls) {
  // Through a volatile pointer: the compiler must make every call.
  Fn volatile f = fn;
  const uint64_t t0 = thread_cpu_ns();
  for (uint64_t i = 0; i < calls; i++) f();
  return static_cast<double>(thread_cpu_ns() - t0) / static_cast<double>(calls);
}

// The median of per-round differences a[i] - b[i].
double median_difference(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> d;
  for (size_t i = 0; i < std::min(a.size(), b.size()); i++) d.push_back(a[i] - b[i]);
  return median(std::move(d));
}

}  // namespace

HostKey current_host() {
  HostKey k;
  struct utsname u {};
  if (::uname(&u) == 0) k.kernel_release = u.release;
  if (auto cpuinfo = read_proc_file("/proc/cpuinfo")) {
    std::string_view text = *cpuinfo;
    size_t at = text.find("model name");
    if (at != std::string_view::npos) {
      size_t colon = text.find(':', at);
      size_t eol = text.find('\n', at);
      if (colon != std::string_view::npos && colon < eol) {
        std::string_view v = text.substr(colon + 1, eol - colon - 1);
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        k.cpu_model = std::string(v);
      }
    }
  }
  return k;
}

std::string TrapCalibration::summary() const {
  std::string bpf = bpf_stats ? fmt::format("BPF program {:.0f}/{:.0f} ns per entry/return run apart",
                                            bpf_entry_ns, bpf_return_ns)
                              : std::string("BPF run time not available: included");
  return fmt::format("entry {:.0f} ns, return {:.0f} ns, 5-byte NOP {:.0f} ns, single-stepped "
                     "{:.0f} ns (trap; {}; median of {} rounds of {} calls)",
                     entry_ns, return_ns, nop5_ns, single_step_ns, bpf, rounds, calls_per_round);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  double hi = v[mid];
  if (v.size() % 2) return hi;
  double lo = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lo + hi) / 2;
}

TrapCalibration summarize_trap_rounds(const TrapRounds& r) {
  TrapCalibration c;
  auto trap = [](double delta, double bpf) { return std::max(0.0, delta - bpf); };
  c.plain_ns = median(r.plain);
  c.entry_ns = trap(median_difference(r.entry, r.plain), r.bpf_entry_ns);
  c.return_ns = trap(median_difference(r.entry_return, r.entry), r.bpf_return_ns);
  c.nop5_ns = trap(median_difference(r.nop5, r.plain), r.bpf_entry_ns);
  c.single_step_ns = trap(median_difference(r.single_step, r.plain), r.bpf_entry_ns);
  c.bpf_entry_ns = r.bpf_entry_ns;
  c.bpf_return_ns = r.bpf_return_ns;
  c.bpf_stats = r.bpf_stats;
  c.rounds = std::min({r.plain.size(), r.entry.size(), r.entry_return.size()});
  c.calls_per_round = r.calls_per_round;
  return c;
}

Result<TrapRounds> measure_trap_rounds(const CalibrationOptions& o) {
  if (o.rounds == 0 || o.calls_per_round == 0) return fail("calibration: no rounds to run");
  std::unique_ptr<trap_calibration_bpf, SkelDeleter> skel(trap_calibration_bpf__open());
  if (!skel) return fail_errno("calibration: cannot open its BPF object");
  if (int err = trap_calibration_bpf__load(skel.get()); err)
    return std::unexpected(load_error("the calibration's BPF programs", err, ""));
  // Run-time statistics stay on while this descriptor is open (another one may be too).
  UniqueFd stats(bpf_enable_stats(BPF_STATS_RUN_TIME));

  std::vector<BpfLink> links;
  auto attach = [&](Fn fn, bpf_program* prog, bool ret) -> Result<void> {
    auto where = file_location(fn);
    if (!where) return std::unexpected(where.error());
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = ret);
    bpf_link* l = bpf_program__attach_uprobe_opts(prog, ::getpid(), where->first.c_str(),
                                                  where->second, &opts);
    if (!l)
      return fail("calibration: cannot attach a {} to {}+0x{:x}: {}", ret ? "uretprobe" : "uprobe",
                  where->first, where->second, std::strerror(errno));
    links.emplace_back(l);
    return {};
  };
  auto* entry = skel->progs.lw_cal_entry;
  auto* ret = skel->progs.lw_cal_return;
  struct Probe { Fn fn; bpf_program* prog; bool ret; };
  const Probe probes[] = {{&leakwatch_cal_entry, entry, false},
                          {&leakwatch_cal_entry_return, entry, false},
                          {&leakwatch_cal_entry_return, ret, true},
                          {&leakwatch_cal_nop5, entry, false},
                          {&leakwatch_cal_single_step, entry, false}};
  for (const Probe& p : probes)
    if (auto a = attach(p.fn, p.prog, p.ret); !a) return std::unexpected(a.error());

  const Fn fns[] = {&leakwatch_cal_plain, &leakwatch_cal_entry, &leakwatch_cal_entry_return,
                    &leakwatch_cal_nop5, &leakwatch_cal_single_step};
  // Warm-up: the first hit of a probe sets it up (and may rewrite a 5-byte NOP).
  for (Fn f : fns) (void)time_calls(f, std::min<uint64_t>(o.calls_per_round, 50));
  const auto before = program_run_stats(skel->obj);

  TrapRounds r;
  r.calls_per_round = o.calls_per_round;
  std::vector<double>* out[] = {&r.plain, &r.entry, &r.entry_return, &r.nop5, &r.single_step};
  for (size_t round = 0; round < o.rounds; round++)
    for (size_t i = 0; i < std::size(fns); i++)
      out[i]->push_back(time_calls(fns[i], o.calls_per_round));

  // Every probe must have run: a probe that did not fire would pass for a free one.
  const auto after = program_run_stats(skel->obj);
  const uint64_t expected_entry_runs = 3 * o.rounds * o.calls_per_round;
  for (size_t i = 0; i < after.size() && i < before.size() && stats.valid(); i++) {
    const uint64_t runs = after[i].run_cnt - before[i].run_cnt;
    const uint64_t expected = after[i].program == "lw_cal_entry" ? expected_entry_runs
                                                                 : o.rounds * o.calls_per_round;
    if (runs < expected)
      return fail("calibration: {} ran {} times for {} probed calls", after[i].program, runs, expected);
    const double ns = static_cast<double>(after[i].run_time_ns - before[i].run_time_ns) /
                      static_cast<double>(runs);
    (after[i].program == "lw_cal_entry" ? r.bpf_entry_ns : r.bpf_return_ns) = ns;
  }
  r.bpf_stats = stats.valid();
  return r;
}

Result<TrapCalibration> calibrate_traps(const CalibrationOptions& options) {
  auto rounds = measure_trap_rounds(options);
  if (!rounds) return std::unexpected(rounds.error());
  TrapCalibration c = summarize_trap_rounds(*rounds);
  c.host = current_host();
  return c;
}

TrapCalibrationCache::TrapCalibrationCache()
    : TrapCalibrationCache([] { return calibrate_traps(); }, current_host) {}

TrapCalibrationCache::TrapCalibrationCache(Measure measure, Host host)
    : measure_(std::move(measure)), host_(std::move(host)) {}

Result<TrapCalibration> TrapCalibrationCache::get() {
  std::lock_guard<std::mutex> lock(mu_);
  HostKey now = host_();
  if (cached_ && cached_->host == now) return *cached_;
  auto c = measure_();
  measurements_++;
  if (!c) return c;
  c->host = std::move(now);
  cached_ = *c;
  return c;
}

int TrapCalibrationCache::measurements() const {
  std::lock_guard<std::mutex> lock(mu_);
  return measurements_;
}

}  // namespace leakwatch::probe
