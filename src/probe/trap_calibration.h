// What a uprobe hit costs on this host, measured: a probed function in leakwatch itself is
// timed with and without probes that run the smallest BPF programs (bpf/trap_calibration.bpf.c).
//
//   round i (interleaved, `calls_per_round` calls each, timed in this thread's CPU time):
//     plain         push %rbp ... ret          no probe
//     entry         push %rbp ... ret          uprobe (push: emulated by the kernel)
//     entry_return  push %rbp ... ret          uprobe + uretprobe
//     nop5          nopl 0(%rax,%rax) ; ret    uprobe on a 5-byte NOP (the in-process
//                                              library's hooks: the kernel may turn it
//                                              into a call instead of a trap)
//     single_step   test %rdi,%rdi ; ret       uprobe on an instruction run out of line
//
//   entry trap   = median_i(entry - plain)               - BPF run time per entry run
//   return trap  = median_i(entry_return - entry)        - BPF run time per return run
//   nop5 trap    = median_i(nop5 - plain)                - BPF run time per entry run
//
// The BPF part comes from kernel.bpf_stats (run time / run count of the two programs) and
// is reported apart: the overhead guard adds the traced session's own BPF run time.
// Trap costs differ by an order of magnitude between hosts (0.4-7 us), hence a measurement
// at start, again when the kernel or the CPU model changes (TrapCalibrationCache).
//
// Thread-safety: measure_trap_rounds() uses process-wide probes on this process: one
// calibration at a time (TrapCalibrationCache serialises them).  The rest is plain data.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace leakwatch::probe {

// What a calibration holds for: the kernel and the CPU it was measured on.
struct HostKey {
  std::string kernel_release;  // uname -r
  std::string cpu_model;       // /proc/cpuinfo "model name" of the first CPU
  bool operator==(const HostKey&) const = default;
};
HostKey current_host();

// Raw timings: ns per call of each function, one figure per round.
struct TrapRounds {
  std::vector<double> plain, entry, entry_return, nop5, single_step;
  double bpf_entry_ns = 0;   // run time per run of the entry program (0: no bpf_stats)
  double bpf_return_ns = 0;  // the same for the return program
  bool bpf_stats = false;    // run times were available
  uint64_t calls_per_round = 0;
};

struct TrapCalibration {
  double entry_ns = 0;        // a uprobe's trap on an emulated instruction (push)
  double return_ns = 0;       // a uretprobe on top of its entry
  double nop5_ns = 0;         // a uprobe on a 5-byte NOP hook
  double single_step_ns = 0;  // a uprobe on an instruction the kernel single-steps
  double bpf_entry_ns = 0;    // the minimal programs' run time per run (bpf_stats)
  double bpf_return_ns = 0;
  bool bpf_stats = false;
  double plain_ns = 0;        // the unprobed call
  size_t rounds = 0;
  uint64_t calls_per_round = 0;
  HostKey host;

  // "entry 5210 ns, return 2870 ns, 5-byte NOP 1830 ns, single-stepped 9100 ns (trap;
  // BPF program 41/38 ns per run apart; median of 7 rounds of 500 calls)"
  std::string summary() const;
};

// The median (the mean of the two middle values for an even count); 0 when empty.
double median(std::vector<double> values);

// The costs from raw rounds: medians of per-round differences less the BPF part, never
// below 0.  Rounds missing for a function make its figure 0.
TrapCalibration summarize_trap_rounds(const TrapRounds& rounds);

struct CalibrationOptions {
  // ~50 ms of CPU where an emulated trap costs 5 us (the single-stepped probe is the
  // dearest part), a few ms on a host with fast traps.
  size_t rounds = 5;
  uint64_t calls_per_round = 300;
};

// Attaches the probes to this process, times the functions, detaches.  Needs the rights to
// load BPF programs and attach uprobes.
[[nodiscard]] Result<TrapRounds> measure_trap_rounds(const CalibrationOptions& options);
// measure_trap_rounds() summarised, for current_host().
[[nodiscard]] Result<TrapCalibration> calibrate_traps(const CalibrationOptions& options = {});

// The host's calibration, measured on first use and again when the kernel release or the
// CPU model (a VM migrated to another host) is no longer the one it was measured on.
// Thread-safety: get() may be called from several threads; one measures, the others wait.
class TrapCalibrationCache {
 public:
  using Measure = std::function<Result<TrapCalibration>()>;
  using Host = std::function<HostKey()>;
  // Defaults: calibrate_traps() and current_host().
  TrapCalibrationCache();
  TrapCalibrationCache(Measure measure, Host host);

  // The calibration for the host as it is now: the cached one, or a new measurement.  A
  // failed measurement is returned as is and not cached (the next call tries again).
  Result<TrapCalibration> get();
  // How many measurements were made.
  int measurements() const;

 private:
  Measure measure_;
  Host host_;
  mutable std::mutex mu_;
  std::optional<TrapCalibration> cached_;
  int measurements_ = 0;
};

}  // namespace leakwatch::probe
