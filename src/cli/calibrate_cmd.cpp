#include "cli/calibrate_cmd.h"

#include <cstdio>

#include "common/exit_status.h"
#include "probe/trap_calibration.h"

namespace leakwatch::cli {

CLI::App* add_calibrate_subcommand(CLI::App& app, CalibrateOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "calibrate",
      "Measure what a uprobe hit costs on this host (the kernel's trap and the BPF program, "
      "apart): the figures the agent's overhead guard uses");
  cmd->add_option("--rounds", o.rounds, "rounds (the median is taken)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--calls", o.calls, "probed calls per round and function")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000000));
  return cmd;
}

int run_calibrate(const CalibrateOptions& o) {
  auto c = probe::calibrate_traps({o.rounds, o.calls});
  if (!c) {
    std::fprintf(stderr, "leakwatch calibrate: %s\n", c.error().message.c_str());
    return kExitError;
  }
  std::printf("host: kernel %s, CPU %s\n", c->host.kernel_release.c_str(), c->host.cpu_model.c_str());
  std::printf("uprobe trap, emulated entry (push %%rbp):     %8.0f ns per hit\n", c->entry_ns);
  std::printf("uretprobe, on top of its entry:              %8.0f ns per hit\n", c->return_ns);
  std::printf("uprobe on a 5-byte NOP (in-process hooks):   %8.0f ns per hit\n", c->nop5_ns);
  std::printf("uprobe, single-stepped (test %%rdi,%%rdi):     %8.0f ns per hit\n", c->single_step_ns);
  if (c->bpf_stats)
    std::printf("BPF program (minimal), run time per run:     %8.0f ns entry, %.0f ns return\n",
                c->bpf_entry_ns, c->bpf_return_ns);
  else
    std::printf("BPF program run time: not available (bpf_stats): included in the figures above\n");
  std::printf("unprobed call:                               %8.1f ns\n", c->plain_ns);
  std::printf("median of %zu rounds of %llu calls per function\n", c->rounds,
              static_cast<unsigned long long>(c->calls_per_round));
  return kExitOk;
}

}  // namespace leakwatch::cli
