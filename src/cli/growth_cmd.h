// `leakwatch growth`: where resident and mapped memory grows, from page faults and the
// mmap family, with tracepoints only (no uprobes, any allocator, any language runtime).
#pragma once

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

namespace leakwatch::cli {

struct GrowthOptions {
  int pid = 0;
  bool pid_given = false;      // -p was given (even as "" or 0)
  std::string command;
  bool command_given = false;  // -c was given (even as "")
  std::string cgroup;              // cgroup v2 directory: every task under it
  double interval_s = 5;
  int64_t count = -1;              // reports before exiting; -1 = until stopped
  double duration_s = 0;
  uint32_t sample_faults = 16;     // capture 1 in N fault stacks
  std::string stack_walker = "fp"; // fp (leakwatch's walk) | kernel (bpf_get_stackid)
  std::string unwind = "auto";     // fp (the walker above) | dwarf | auto
  std::string snapshot_size = "8K";
  bool no_rss = false;             // do not attach kmem:rss_stat
  int top = 10;
  std::string format = "text";
  std::string output;
  uint32_t max_stacks = 16384;
  int verbose = 0;
  std::string btf;
  // -c only: start the command with the sampling library preloaded (at R = sample_bytes),
  // so that `leakwatch memleak -p` and the agent's investigations can later trace its
  // allocations in-process.
  bool inprocess = false;
  std::string sample_bytes;
};

// Registers the subcommand.
CLI::App* add_growth_subcommand(CLI::App& app, GrowthOptions& opts);

// Exit codes as memleak: 0 ok (also when a -c command exits normally), 1 error, 3 the
// target went away abnormally (a -p process exited, or the -c command was killed by a
// signal).  The final report is written in every case but errors.
int run_growth(const GrowthOptions& opts);

}  // namespace leakwatch::cli
