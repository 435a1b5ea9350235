// `leakwatch memleak`: BCC memleak's command line and text output, on leakwatch's probes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace leakwatch::cli {

struct MemleakOptions {
  int pid = 0;
  std::string cgroup;  // --cgroup PATH (cgroup v2 directory)
  bool trace = false;
  bool show_allocs = false;
  double older_ms = 500;
  std::string command;
  bool combined_only = false;
  bool wa_missing_free = false;
  uint64_t sample_rate = 1;
  std::string sample_bytes;  // --sample-bytes R (e.g. 512K)
  int top = 10;
  std::string min_size, max_size;
  std::vector<std::string> objects;
  bool percpu = false;
  std::string symbols_prefix;
  std::string sort = "size";
  double interval_s = 5;
  int64_t count = -1;  // reports before exiting; -1 = until stopped
  double duration_s = 0;
  int verbose = 0;
  std::string format = "text";
  std::string output;
  uint32_t max_allocs = 1000000;
  uint32_t max_stacks = 16384;
  std::string attach = "auto";
  std::string verdicts_only;
  std::string unwind = "auto";      // fp | dwarf | auto
  std::string snapshot_size = "8K";  // --snapshot-size
  std::string btf;  // --btf FILE: kernel BTF when /sys/kernel/btf/vmlinux is missing
  // Sample in the program (libleakwatch-preload.so).  1 --inprocess, 0 --no-inprocess,
  // -1: in-process for -c when sampling and the program can load the library, and for -p
  // when the program runs with it.
  int inprocess = -1;
  // -p: load the sampling library into the running process first (src/inject), then trace
  // it in-process.
  bool inject = false;
};

// Registers the subcommand; `run` is set to the function to call after parsing.
CLI::App* add_memleak_subcommand(CLI::App& app, MemleakOptions& opts);

// Exit codes: 0 ok (also when a -c command exits normally), 1 error, 3 the target went
// away abnormally (a -p process exited, or the -c command was killed by a signal).
int run_memleak(const MemleakOptions& opts);

}  // namespace leakwatch::cli
