// Shared by the report_*_test.cpp files: hand-built reports that cover the cases the writers
// must get right (exact and sampled figures, unknown and inlined frames, C++ names, kernel
// frames, loss counters, notes), and golden-file comparison.
//
// Golden files live in tests/data/report/.  To accept new output after an intended format
// change: LEAKWATCH_UPDATE_GOLDEN=1 build-x/tests/unit_tests --gtest_filter='Report*'
// then review `git diff tests/data/report`.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "report/model.h"

namespace leakwatch::report::testing {

inline std::string golden_path(const std::string& name) {
  return std::string(LEAKWATCH_TEST_DATA) + "/report/" + name;
}

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string visible(const std::string& line) {
  std::string out;
  for (char c : line) out += c == '\t' ? std::string("\\t") : std::string(1, c);
  return out;
}

// Compares `actual` with the golden file `name`; with LEAKWATCH_UPDATE_GOLDEN=1 rewrites it.
inline void expect_golden(const std::string& name, const std::string& actual) {
  const std::string path = golden_path(name);
  const char* update = std::getenv("LEAKWATCH_UPDATE_GOLDEN");
  if (update && std::string(update) == "1") {
    std::ofstream(path, std::ios::binary) << actual;
    std::cout << "updated golden file " << path << "\n";
    return;
  }
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << "golden file " << path << " is missing; create it with "
                  << "LEAKWATCH_UPDATE_GOLDEN=1";
    return;
  }
  const std::string expected = read_text_file(path);
  if (expected == actual) return;
  const std::string actual_path = ::testing::TempDir() + name + ".actual";
  std::ofstream(actual_path, std::ios::binary) << actual;
  std::istringstream e(expected), a(actual);
  std::string el, al;
  int line = 0;
  while (true) {
    ++line;
    bool more_e = static_cast<bool>(std::getline(e, el));
    bool more_a = static_cast<bool>(std::getline(a, al));
    if (!more_e && !more_a) break;
    if (more_e != more_a || el != al) {
      ADD_FAILURE() << "output differs from golden file " << path << " at line " << line
                    << ":\n  expected: " << (more_e ? visible(el) : "<end of file>")
                    << "\n  actual:   " << (more_a ? visible(al) : "<end of file>")
                    << "\nsee: diff -u " << path << " " << actual_path
                    << "\naccept with LEAKWATCH_UPDATE_GOLDEN=1 if the change is intended";
      return;
    }
  }
  ADD_FAILURE() << "output differs from " << path << " only in its final newline; see diff -u "
                << path << " " << actual_path;
}

inline Estimate exact(double v) { return Estimate{v, v, v, v}; }

inline Frame frame(uint64_t address, std::string function, uint64_t offset,
                   std::string module, std::string module_path, uint64_t module_offset,
                   std::string file = "", int line = 0) {
  Frame f;
  f.address = address;
  f.function = std::move(function);
  f.offset = offset;
  f.module = std::move(module);
  f.module_path = std::move(module_path);
  f.module_offset = module_offset;
  f.file = std::move(file);
  f.line = line;
  return f;
}

constexpr uint64_t kAppBase = 0x55d0c1a00000;
constexpr uint64_t kLibcBase = 0x7f3a5c000000;
constexpr uint64_t kPluginBase = 0x7f3a5d200000;
inline const char* kAppBuildId = "9f1c2e4b7d3a8c6e0b5f2d1a4c7e9b3d5f8a2c10";
inline const char* kLibcBuildId = "3e4f2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f";

inline Frame app_frame(uint64_t off, std::string fn, uint64_t fn_off, int line) {
  Frame f = frame(kAppBase + off, std::move(fn), fn_off, "leaky_demo",
                  "/usr/local/bin/leaky_demo", off, "/src/leaky_demo.cpp", line);
  f.build_id = kAppBuildId;
  return f;
}

inline Frame libc_start() {
  Frame f = frame(kLibcBase + 0x271ca, "__libc_start_call_main", 0x7a, "libc.so.6",
                  "/usr/lib/x86_64-linux-gnu/libc.so.6", 0x271ca);
  f.build_id = kLibcBuildId;
  return f;
}

// An exact report: a leak, a cache with an inlined frame and C++ names, a stack with unknown
// frames, one loss counter set, one note, outstanding allocations listed (-a).
inline Report exact_report() {
  Report r;
  r.target.pid = 4242;
  r.target.comm = "leaky_demo";
  r.duration_s = 12.5;
  r.timestamp_unix_ms = 1764000000123;
  r.final = true;

  StackReport leak;
  leak.stack_id = 7;
  leak.frames = {app_frame(0x11c9, "leak_fn(unsigned long)", 0x19, 21),
                 app_frame(0x1290, "main", 0x4a, 48), libc_start()};
  leak.bytes = exact(1048576);
  leak.count = exact(256);
  leak.alloc_bytes = exact(1048576);
  leak.alloc_count = exact(256);
  leak.verdict = Verdict::kLeak;
  leak.score = 0.93;
  leak.reason = "grows 83886 B/s (R2 0.99) for 12.5 s; oldest survivor 12.4 s old";
  leak.growth_bytes_per_s = 83886.08;
  leak.oldest_age_s = 12.4;
  leak.allocations = {{kAppBase + 0x2a2a0, 4096, 12.4}, {kAppBase + 0x2b2b0, 4096, 0.75}};

  StackReport cache;
  cache.stack_id = 3;
  Frame inl = app_frame(0x15d4, "Cache::put(std::string const&, std::vector<char>)", 0x2e, 77);
  inl.inlined = true;
  Frame outer = app_frame(0x15d4, "Cache::warm(int)", 0x84, 102);
  cache.frames = {app_frame(0x1500, "std::vector<char, std::allocator<char> >::reserve(unsigned long)", 0x30, 66),
                  inl, outer, app_frame(0x12b0, "main", 0x6a, 50), libc_start()};
  cache.bytes = exact(65536);
  cache.count = exact(16);
  cache.alloc_bytes = exact(262144);
  cache.alloc_count = exact(64);
  cache.verdict = Verdict::kCache;
  cache.score = 0.81;
  cache.reason = "level since 2.0 s (growth 0 B/s over the last 10.5 s)";
  cache.oldest_age_s = 10.5;

  StackReport unknown;
  unknown.stack_id = 11;
  Frame plugin = frame(kPluginBase + 0x3a10, "", 0, "libplugin.so", "/opt/app/libplugin.so",
                       0x3a10);
  Frame nowhere = frame(0x7ffd00001234, "", 0, "", "", 0);
  unknown.frames = {plugin, nowhere};
  unknown.truncated = true;
  unknown.bytes = exact(4000);
  unknown.count = exact(2);
  unknown.alloc_bytes = exact(4000);
  unknown.alloc_count = exact(2);

  r.stacks = {leak, cache, unknown};
  r.lost = {{"allocs_map_full", 0}, {"attach_failed", 1}, {"stack_lost", 0}};
  r.notes = {"attach failed: pvalloc (not exported by libc.so.6)"};
  return r;
}

// A byte-sampled report (R = 512 KiB) with fractional estimates and intervals.
inline Report sampled_report() {
  Report r;
  r.target.pid = 977;
  r.target.comm = "server";
  r.sampling = {SamplingMode::kBytes, 524288};
  r.duration_s = 60.25;
  r.timestamp_unix_ms = 1764000060000;

  StackReport leak;
  leak.stack_id = 1;
  leak.frames = {app_frame(0x2010, "Session::append(std::string_view)", 0x3c, 140),
                 app_frame(0x2200, "Server::on_read(int)", 0x111, 201), libc_start()};
  leak.bytes = {3145728, 52428800.5, 44040192.25, 60817408.75};
  leak.count = {3, 51200.4, 43000.1, 59400.7};
  leak.alloc_bytes = {4194304, 67108864, 58720256, 75497472};
  leak.alloc_count = {4, 65536, 57000, 74000};
  leak.verdict = Verdict::kLeak;
  leak.score = 0.97;
  leak.reason = "grows 870 KB/s (R2 0.98); oldest survivor 59.8 s old";
  leak.growth_bytes_per_s = 870187.3;
  leak.oldest_age_s = 59.8;

  StackReport transient;
  transient.stack_id = 2;
  transient.frames = {app_frame(0x2400, "Parser::on<';'>(char)", 0x12, 310),
                      app_frame(0x2200, "Server::on_read(int)", 0x111, 205), libc_start()};
  transient.bytes = {1048576, 1310720, 0, 2883584};
  transient.count = {1, 5.1, 0, 11.2};
  transient.verdict = Verdict::kTransient;
  transient.score = 0.7;
  transient.reason = "survivors are young (oldest 0.4 s)";
  transient.oldest_age_s = 0.4;

  r.stacks = {leak, transient};
  r.lost = {{"allocs_map_full", 12}, {"attach_failed", 0}, {"stack_lost", 2}};
  return r;
}

// Kernel mode: frames carry the "[kernel]" module or none at all.
inline Report kernel_report() {
  Report r;
  r.target.kernel = true;
  r.duration_s = 5;
  StackReport s;
  s.stack_id = 1;
  s.frames = {frame(0xffffffff812a6b10, "kmalloc_trace", 0x2d, "[kernel]", "", 0),
              frame(0xffffffff81b0c2f0, "bpf_prog_load", 0x4c0, "", "", 0)};
  s.bytes = exact(8192);
  s.count = exact(2);
  r.stacks = {s};
  r.lost = {{"allocs_map_full", 0}};
  return r;
}

}  // namespace leakwatch::report::testing
