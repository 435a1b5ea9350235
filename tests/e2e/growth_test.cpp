// End-to-end: `leakwatch growth` traces tests/fixtures/gr_growth.c with real BPF.  The
// fixture grows memory in known functions by known amounts (see its header):
//   grow_heap_pages  64 MiB mapped (one mmap) and 64 MiB of first touches (16384 faults)
//   keep_mappings    30 MiB mapped by its mmap call site, 8 MiB by its mremap call site
//   grow_brk         20 MiB of program break (24 x sbrk(1 MiB), then sbrk(-4 MiB))
//   read_file_map    a 16 MiB file mapping read page by page: no anonymous growth
// Mapped bytes are exact; faulted bytes are exact with --sample-faults 1 (up to a few
// pages of stack the function itself touches) and estimates otherwise.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "profile.pb.h"
#include "support/process.h"
#include "support/profile_servers.h"

namespace leakwatch::testing {
namespace {

using Json = nlohmann::json;
constexpr double kMiB = 1024.0 * 1024.0;

class Growth : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct GrowthRun {
  RunResult result;
  Json report;
  bool parsed = false;
};

// `leakwatch growth -c <fixture> <extra...> --format json --output F`, F parsed.
GrowthRun growth_command(const std::vector<std::string>& extra,
                         const std::string& program = "gr_growth") {
  std::string out = temp_path("growth.json");
  std::vector<std::string> argv = {leakwatch(), "growth", "-c", fixture(program)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.insert(argv.end(), {"--format", "json", "--output", out});
  GrowthRun run;
  run.result = run_argv(argv, std::chrono::seconds(60));
  std::string text = slurp(out);
  run.report = Json::parse(text, nullptr, false);
  run.parsed = !run.report.is_discarded() && run.report.is_object();
  return run;
}

bool in_system_library(const Json& frame) {
  std::string m = frame.value("module", "");
  return m.starts_with("libc.so") || m.starts_with("ld-linux") || m.starts_with("libstdc++") ||
         m.starts_with("libgcc_s");
}

// The function that did it: the first frame outside libc, the C++ runtime and the dynamic
// loader (which hold the syscall wrappers, malloc, operator new and memset).
std::string app_function(const Json& stack) {
  for (const auto& f : stack["frames"])
    if (!in_system_library(f)) return f.value("function", "");
  return "";
}

struct Sums {
  double faulted = 0, faulted_lo = 0, faulted_hi = 0, mapped = 0, brk = 0, file_mapped = 0,
         file_faulted = 0;
  int stacks = 0;
};

Sums sums_for(const Json& report, const std::string& fn) {
  Sums s;
  for (const auto& st : report["stacks"]) {
    if (app_function(st) != fn) continue;
    s.stacks++;
    s.faulted += st["faulted_bytes"]["estimate"].get<double>();
    s.faulted_lo += st["faulted_bytes"]["ci95"][0].get<double>();
    s.faulted_hi += st["faulted_bytes"]["ci95"][1].get<double>();
    s.mapped += st["mapped_bytes"].get<double>();
    s.brk += st["brk_bytes"].get<double>();
    s.file_mapped += st["file_mapped_bytes"].get<double>();
    s.file_faulted += st["file_faulted_bytes"]["estimate"].get<double>();
  }
  return s;
}

std::string describe(const Json& r) {
  std::string out;
  for (const auto& st : r["stacks"]) {
    out += "  " + app_function(st) + ": faulted " +
           std::to_string(st["faulted_bytes"]["estimate"].get<double>()) + " mapped " +
           std::to_string(st["mapped_bytes"].get<double>()) + " |";
    for (const auto& f : st["frames"]) out += " " + f.value("function", "?");
    out += "\n";
  }
  return out + "totals: " + r["totals"].dump() + "\nlost: " + r["lost"].dump();
}

void expect_mappings_exact(const Json& r) {
  EXPECT_EQ(sums_for(r, "grow_heap_pages").mapped, 64 * kMiB) << describe(r);
  EXPECT_EQ(sums_for(r, "keep_mappings").mapped, (30 + 8) * kMiB) << describe(r);
  Sums brk = sums_for(r, "grow_brk");
  EXPECT_EQ(brk.mapped, 20 * kMiB) << describe(r);
  EXPECT_EQ(brk.brk, 20 * kMiB) << describe(r);
  Sums file = sums_for(r, "read_file_map");
  EXPECT_EQ(file.mapped, 0) << describe(r);
  EXPECT_EQ(file.file_mapped, 16 * kMiB) << describe(r);
}

TEST_F(Growth, EveryFaultExactlyAndEveryMappingByItsCallSite) {
  // Frame pointers: every fault of a 16384-fault burst is exact only when no stack can be
  // lost; DWARF snapshots of a burst that outruns their unwinding are dropped (and counted:
  // the Unwind* tests below).
  auto run = growth_command({"--sample-faults", "1", "--unwind", "fp"});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed) << run.result.err;
  const Json& r = run.report;
  EXPECT_EQ(r["kind"], "growth");
  EXPECT_EQ(r["stack_walker"], "fp");
  EXPECT_EQ(r["unwind"]["mode"], "fp");
  EXPECT_EQ(r["final"], true);
  // 16384 first touches; the function's own stack may add a page or two.
  Sums heap = sums_for(r, "grow_heap_pages");
  EXPECT_GE(heap.faulted, 64 * kMiB) << describe(r);
  EXPECT_LE(heap.faulted, 64 * kMiB + 16 * 4096) << describe(r);
  expect_mappings_exact(r);
  // The file mapping is read, not heap: at most the page of stack its write buffer uses.
  Sums file = sums_for(r, "read_file_map");
  EXPECT_LE(file.faulted, 64 * 1024) << describe(r);
  EXPECT_GT(file.file_faulted, 0) << describe(r);
  EXPECT_EQ(sums_for(r, "keep_mappings").faulted, 0) << describe(r);
  EXPECT_EQ(sums_for(r, "grow_brk").faulted, 0) << describe(r);
  // Largest growth first: the two 64 MiB stacks of grow_heap_pages.
  ASSERT_GE(r["stacks"].size(), 2u);
  EXPECT_EQ(app_function(r["stacks"][0]), "grow_heap_pages") << describe(r);
  EXPECT_EQ(app_function(r["stacks"][1]), "grow_heap_pages") << describe(r);
  // Exact: every fault's stack was captured and classified.
  const Json& t = r["totals"];
  EXPECT_EQ(t["faults"], t["sampled_faults"]);
  EXPECT_EQ(t["classes_estimated"], false);
  EXPECT_GE(t["anon_faults"].get<double>(), 16384) << describe(r);
  EXPECT_GT(t["file_faults"].get<double>(), 0) << describe(r);
  EXPECT_EQ(t["unknown_faults"].get<double>(), 0) << describe(r);
  EXPECT_EQ(t["mremap_calls"], 1);
  for (const auto& [name, value] : r["lost"].items()) EXPECT_EQ(value, 0) << name;
  // RSS from kmem:rss_stat: anonymous memory went past the 64 MiB touched.
  ASSERT_EQ(r["processes"].size(), 1u);
  const Json& rss = r["processes"][0]["rss"]["anon"];
  ASSERT_TRUE(rss.is_object()) << r["processes"].dump();
  EXPECT_GE(rss["peak"].get<double>(), 60 * kMiB);
  EXPECT_LT(rss["first"].get<double>(), 16 * kMiB);
  EXPECT_EQ(r["processes"][0]["comm"], "gr_growth");
}

TEST_F(Growth, SampledFaultStacksAreScaledBack) {
  // 1 in 16 of 16384 faults: about 1024 samples, a relative standard error of 3%; the
  // 20% tolerance is more than 6 standard errors.
  auto run = growth_command({"--sample-faults", "16"});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed) << run.result.err;
  const Json& r = run.report;
  EXPECT_EQ(r["sample_period"], 16);
  Sums heap = sums_for(r, "grow_heap_pages");
  EXPECT_NEAR(heap.faulted, 64 * kMiB, 0.20 * 64 * kMiB) << describe(r);
  EXPECT_LT(heap.faulted_lo, heap.faulted) << describe(r);
  EXPECT_GT(heap.faulted_hi, heap.faulted) << describe(r);
  EXPECT_EQ(r["totals"]["classes_estimated"], true);
  EXPECT_LT(r["totals"]["sampled_faults"].get<double>(), r["totals"]["faults"].get<double>() / 8);
  // Mappings are not sampled.
  expect_mappings_exact(r);
  EXPECT_LE(sums_for(r, "read_file_map").faulted, 1 * kMiB) << describe(r);
}

TEST_F(Growth, AttachesToARunningProcessAndEndsWithIt) {
  Proc target({fixture("gr_growth"), "wait"});
  ASSERT_TRUE(target.wait_for("ready"));
  Proc lw({leakwatch(), "growth", "-p", std::to_string(target.pid()), "--sample-faults", "4",
           "-T", "5"});
  ASSERT_TRUE(lw.wait_for("Tracing memory growth of pid")) << lw.out();
  target.write("go\n");
  ASSERT_TRUE(target.wait_for("done"));
  target.close_stdin();  // the fixture exits: leakwatch prints its final report, exits 3
  int st = lw.wait(std::chrono::seconds(30));
  target.wait();
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 3) << lw.err();
  const std::string& out = lw.out();
  EXPECT_NE(out.find("stacks by memory growth (pid " + std::to_string(target.pid()) + " gr_growth"),
            std::string::npos) << out;
  EXPECT_NE(out.find("\tgrow_heap_pages+0x"), std::string::npos) << out;
  EXPECT_NE(out.find("\tkeep_mappings+0x"), std::string::npos) << out;
  EXPECT_NE(out.find(" bytes faulted (anonymous, "), std::string::npos) << out;
  EXPECT_NE(out.find("31457280 bytes mapped, from stack"), std::string::npos) << out;
  EXPECT_NE(out.find("\nRSS pid "), std::string::npos) << out;
  EXPECT_NE(out.find("mappings: "), std::string::npos) << out;
}

TEST_F(Growth, PprofAndFoldedOutputs) {
  std::string pprof = temp_path("growth.pb.gz");
  auto r = run_argv({leakwatch(), "growth", "-c", fixture("gr_growth"), "--sample-faults", "1",
                     "--unwind", "fp", "--format", "pprof", "--output", pprof});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  perftools::profiles::Profile p;
  ASSERT_TRUE(p.ParseFromString(gunzip(slurp(pprof))));
  auto str = [&](int64_t i) { return p.string_table(static_cast<int>(i)); };
  ASSERT_EQ(p.sample_type_size(), 3);
  EXPECT_EQ(str(p.sample_type(0).type()), "faulted_bytes");
  EXPECT_EQ(str(p.sample_type(1).type()), "mapped_bytes");
  EXPECT_EQ(str(p.default_sample_type()), "faulted_bytes");
  // The sample whose first location is in grow_heap_pages carries the 16384 faults.
  std::map<uint64_t, std::string> fn_by_id, fn_of_location;
  for (const auto& f : p.function()) fn_by_id[f.id()] = str(f.name());
  for (const auto& l : p.location())
    if (l.line_size() > 0) fn_of_location[l.id()] = fn_by_id[l.line(0).function_id()];
  int64_t heap_faults = 0;
  for (const auto& s : p.sample())
    if (s.location_id_size() > 0 && fn_of_location[s.location_id(0)] == "grow_heap_pages")
      heap_faults += s.value(2);
  EXPECT_GE(heap_faults, 16384);
  EXPECT_LE(heap_faults, 16384 + 16);

  // `go tool pprof` reads it and ranks grow_heap_pages first by faulted bytes.
  if (::system("command -v go >/dev/null 2>&1") == 0) {
    std::string dir = temp_path("gohome");
    std::filesystem::create_directories(dir);
    std::string cmd = "env HOME=" + dir + " GOCACHE=" + dir + "/cache GOPATH=" + dir +
                      "/path PPROF_TMPDIR=" + dir + " GOFLAGS= GO111MODULE=off go tool pprof -top "
                      "-sample_index=faulted_bytes " + pprof + " 2>&1";
    auto g = run_argv({"sh", "-c", cmd}, std::chrono::seconds(60));
    EXPECT_EQ(g.exit_code, 0) << g.out;
    EXPECT_NE(g.out.find("Type: faulted_bytes"), std::string::npos) << g.out;
    auto first = g.out.find("flat%");
    ASSERT_NE(first, std::string::npos) << g.out;
    auto line_end = g.out.find('\n', g.out.find('\n', first) + 1);
    EXPECT_NE(g.out.substr(first, line_end - first).find("grow_heap_pages"), std::string::npos)
        << g.out;
  }

  std::string folded = temp_path("growth.folded");
  r = run_argv({leakwatch(), "growth", "-c", fixture("gr_growth"), "--format", "folded",
                "--output", folded});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string text = slurp(folded);
  EXPECT_NE(text.find(";main;grow_heap_pages "), std::string::npos) << text;
  EXPECT_NE(text.find(";main;keep_mappings;mremap 8388608\n"), std::string::npos) << text;
  EXPECT_NE(text.find(";grow_brk;__sbrk;brk 20971520\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("read_file_map;"), std::string::npos) << text;
}

TEST_F(Growth, FollowsEveryProcessOfACgroup) {
  std::string dir = "/sys/fs/cgroup/unified/leakwatch-growth-test-" + std::to_string(::getpid());
  struct stat st;
  if (::stat("/sys/fs/cgroup/unified", &st) != 0)
    dir = "/sys/fs/cgroup/leakwatch-growth-test-" + std::to_string(::getpid());
  if (::mkdir(dir.c_str(), 0755) != 0) GTEST_SKIP() << "cannot create a cgroup v2 at " << dir;
  Proc target({fixture("gr_growth"), "wait"});
  // Whatever happens below, the fixture leaves the cgroup and the cgroup is removed.
  struct Cleanup {
    std::string dir, parent;
    pid_t pid;
    ~Cleanup() {
      ::kill(pid, SIGKILL);
      std::ofstream(parent + "/cgroup.procs") << pid << "\n";
      ::rmdir(dir.c_str());
    }
  } cleanup{dir, dir.substr(0, dir.rfind('/')), target.pid()};
  ASSERT_TRUE(target.wait_for("ready"));
  std::ofstream(dir + "/cgroup.procs") << target.pid() << "\n";
  std::string json = temp_path("cgroup.json");
  Proc lw({leakwatch(), "growth", "--cgroup", dir, "--sample-faults", "1", "--unwind", "fp",
           "--format", "json", "--output", json});
  ASSERT_TRUE(lw.wait_for("Tracing memory growth in cgroup")) << lw.out();
  target.write("go\n");
  ASSERT_TRUE(target.wait_for("done"));
  lw.signal(SIGINT);
  int status = lw.wait(std::chrono::seconds(30));
  target.close_stdin();
  target.wait();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << lw.err();
  Json r = Json::parse(slurp(json), nullptr, false);
  ASSERT_TRUE(r.is_object()) << lw.err();
  EXPECT_EQ(r["target"]["cgroup"], dir);
  Sums heap = sums_for(r, "grow_heap_pages");
  EXPECT_GE(heap.faulted, 64 * kMiB) << describe(r);
  EXPECT_EQ(heap.mapped, 64 * kMiB) << describe(r);
  // Nothing from outside the cgroup (leakwatch itself, the test runner).
  for (const auto& s : r["stacks"]) EXPECT_EQ(s["pid"], target.pid()) << describe(r);
}

TEST_F(Growth, IntervalReportsCountAndDuration) {
  Proc idle({"sleep", "30"});
  // interval 0.3 s, 3 reports: two interval reports and the final one, then exit 0.
  auto r = run_argv({leakwatch(), "growth", "-p", std::to_string(idle.pid()), "0.3", "3"},
                    std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  size_t headers = 0;
  for (size_t at = 0; (at = r.out.find("stacks by memory growth", at)) != std::string::npos; at++)
    headers++;
  EXPECT_EQ(headers, 3u) << r.out;
  // --duration ends the session with its final report, whatever the interval.
  auto start = std::chrono::steady_clock::now();
  r = run_argv({leakwatch(), "growth", "-p", std::to_string(idle.pid()), "--duration", "0.5",
                "--format", "json"},
               std::chrono::seconds(30));
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(took, 10);
  auto j = Json::parse(r.out.substr(r.out.find('{')), nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["final"], true);
  EXPECT_EQ(j["target"]["comm"], "sleep");
  EXPECT_GE(j["duration_s"].get<double>(), 0.5);
  idle.signal(SIGKILL);
  idle.wait();
}

// Growth through the allocator: tests/fixtures/gr_unwind.cpp grows the heap in four named
// functions, by malloc and by operator new in std::vector, std::string and
// std::unordered_map (see its header).  The brk calls are made in glibc's sysmalloc and many
// first touches in _int_malloc or memset, none of which keeps a frame pointer: DWARF
// unwinding must charge them to the fixture's functions (found anywhere in the stack: in the
// -O0 build the containers' templates add frames of the program between the two).
struct UnwindExpectation {
  std::string function;
  double mapped;   // anonymous bytes mapped and kept (brk, and blocks above the mmap threshold)
  double brk;      // ... of which program break
  double touched;  // bytes written
};
const std::vector<UnwindExpectation>& unwind_expectations() {
  static const std::vector<UnwindExpectation> e = {
      {"grow_malloc_blocks", 160 * 100 * 1024.0, 160 * 100 * 1024.0, 160 * 100 * 1024.0},
      {"grow_vectors", 16 * kMiB, 16 * kMiB, 16 * kMiB},
      // 16384 strings of 1001 bytes in 1024-byte chunks (brk), and the vector of their
      // headers, 512 KiB (one mmap)
      {"grow_strings", 16 * kMiB + 512 * 1024.0, 16 * kMiB, 16 * kMiB + 512 * 1024.0},
      // 500000 nodes in 32-byte chunks (brk), and 500009 buckets of 8 bytes (one mmap)
      {"grow_unordered_map", 500000 * 32.0 + 500009 * 8.0, 500000 * 32.0,
       500000 * 32.0 + 500009 * 8.0},
  };
  return e;
}

bool names(const Json& frame, const std::string& fn) {
  std::string f = frame.value("function", "");
  return f == fn || f.starts_with(fn + "(");
}

struct Charged {
  std::map<std::string, Sums> by_function;
  double other_brk = 0;  // program break grown by stacks naming none of the functions
};

Charged charge_to_functions(const Json& r) {
  Charged c;
  for (const auto& st : r["stacks"]) {
    std::string owner;
    for (const auto& f : st["frames"])
      for (const auto& e : unwind_expectations())
        if (owner.empty() && names(f, e.function)) owner = e.function;
    if (owner.empty()) {
      c.other_brk += st["brk_bytes"].get<double>();
      continue;
    }
    Sums& s = c.by_function[owner];
    s.stacks++;
    s.faulted += st["faulted_bytes"]["estimate"].get<double>();
    s.mapped += st["mapped_bytes"].get<double>();
    s.brk += st["brk_bytes"].get<double>();
  }
  return c;
}

// Whether the run charged each function its growth: mapped and brk bytes (exact) within
// 0.75 MiB (malloc grows the break in steps with 128 KiB to spare, and a function starts on
// what the previous one left at the top of the heap; seen: within 0.15 MiB), faulted bytes
// (sampled 1 in 4: ~1000 samples each, a 3% standard error; seen: within 5%) within 25%,
// and less than 2 MiB of break (the runtime's start) charged to none of them.
void expect_charged_to_callers(const Json& r) {
  Charged c = charge_to_functions(r);
  for (const auto& e : unwind_expectations()) {
    const Sums& s = c.by_function[e.function];
    EXPECT_NEAR(s.mapped, e.mapped, 0.75 * kMiB) << e.function << "\n" << describe(r);
    EXPECT_NEAR(s.brk, e.brk, 0.75 * kMiB) << e.function << "\n" << describe(r);
    EXPECT_NEAR(s.faulted, e.touched, 0.25 * e.touched) << e.function << "\n" << describe(r);
  }
  EXPECT_LT(c.other_brk, 2 * kMiB) << describe(r);
  // The stack of a brk starts in glibc (the syscall wrapper) and reaches the function.
  bool brk_through_libc = false;
  for (const auto& st : r["stacks"])
    if (st["brk_bytes"].get<double>() > 0 && !st["frames"].empty() &&
        in_system_library(st["frames"][0]) && app_function(st) != "")
      brk_through_libc = true;
  EXPECT_TRUE(brk_through_libc) << describe(r);
}

void expect_unwind_figures(const Json& r, const std::string& mode) {
  EXPECT_EQ(r["stack_walker"], mode);
  EXPECT_EQ(r["unwind"]["mode"], mode);
  EXPECT_FALSE(r["unwind"]["decision"].get<std::string>().empty());
  // Every loss of the unwinding is a counter of the report, present when zero.
  for (const char* name : {"snapshots_lost", "snapshot_empty", "unwind_failed", "stack_lost",
                           "events_lost"})
    EXPECT_TRUE(r["lost"].contains(name)) << name << " " << r["lost"].dump();
  EXPECT_EQ(r["lost"]["unwind_failed"], r["unwind"]["failed"]);
  if (mode == "dwarf") {
    EXPECT_GT(r["unwind"]["snapshots"].get<uint64_t>(), 1000u) << r["unwind"].dump();
    EXPECT_EQ(r["unwind"]["unwound"].get<uint64_t>() + r["unwind"]["failed"].get<uint64_t>(),
              r["unwind"]["snapshots"].get<uint64_t>() - r["lost"]["snapshots_lost"].get<uint64_t>())
        << r["unwind"].dump();
  }
}

TEST_F(Growth, UnwindAutoChargesAllocatorGrowthToTheCallerWithFramePointers) {
  auto run = growth_command({"--sample-faults", "4"}, "gr_unwind");
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed) << run.result.err;
  expect_unwind_figures(run.report, "dwarf");  // glibc and libstdc++ keep no frame pointers
  expect_charged_to_callers(run.report);
}

TEST_F(Growth, UnwindAutoChargesAllocatorGrowthToTheCallerWithoutFramePointers) {
  auto run = growth_command({"--sample-faults", "4"}, "gr_unwind_nofp");
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed) << run.result.err;
  expect_unwind_figures(run.report, "dwarf");
  expect_charged_to_callers(run.report);
}

TEST_F(Growth, UnwindDwarfAndFpCompared) {
  // Explicit DWARF on the frame-pointer build: the same result as auto.
  auto dwarf = growth_command({"--sample-faults", "4", "--unwind", "dwarf"}, "gr_unwind");
  ASSERT_EQ(dwarf.result.exit_code, 0) << dwarf.result.err;
  ASSERT_TRUE(dwarf.parsed) << dwarf.result.err;
  expect_unwind_figures(dwarf.report, "dwarf");
  expect_charged_to_callers(dwarf.report);
  // Frame pointers on the build without them: the walk stops in the allocator, and much
  // of the growth is charged to nobody the test names.
  auto fp = growth_command({"--sample-faults", "4", "--unwind", "fp"}, "gr_unwind_nofp");
  ASSERT_EQ(fp.result.exit_code, 0) << fp.result.err;
  ASSERT_TRUE(fp.parsed) << fp.result.err;
  expect_unwind_figures(fp.report, "fp");
  EXPECT_EQ(fp.report["unwind"]["decision"], "frame pointers: asked (--unwind fp)");
  EXPECT_GT(charge_to_functions(fp.report).other_brk, 16 * kMiB) << describe(fp.report);
}

TEST_F(Growth, UnwindTruncationIsCounted) {
  // 512 bytes of stack do not hold the frames from sysmalloc up to main: stacks end early,
  // and the report says how many.
  auto run = growth_command({"--sample-faults", "4", "--unwind", "dwarf", "--snapshot-size",
                             "512"}, "gr_unwind_nofp");
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed) << run.result.err;
  const Json& u = run.report["unwind"];
  EXPECT_EQ(u["snapshot_size"], 512);
  EXPECT_GT(u["truncated"].get<uint64_t>(), 0u) << u.dump();
  EXPECT_LE(u["snapshot_bytes"].get<uint64_t>(), 512 * u["snapshots"].get<uint64_t>());
  bool noted = false;
  for (const auto& n : run.report["notes"])
    noted |= n.get<std::string>().find("truncated") != std::string::npos;
  EXPECT_TRUE(noted) << run.report["notes"].dump();
}

TEST_F(Growth, BadInputGetsOneLineAndExitOne) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  std::vector<Case> cases = {
      {{}, "give a target: -p PID, -c COMMAND or --cgroup PATH"},
      {{"-p", "1", "-c", "true"}, "cannot be used together"},
      {{"-p", "999999999"}, "no such process: 999999999"},
      {{"--cgroup", "/nonexistent/cg"}, "--cgroup /nonexistent/cg: no such directory"},
      {{"-c", "true", "--stack-walker", "dwarf"}, "--stack-walker: unknown walker 'dwarf'"},
      {{"-c", "true", "--sample-faults", "0"}, "--sample-faults: must be >= 1"},
      {{"-c", "true", "--unwind", "cfi"}, "--unwind: unknown mode 'cfi'"},
      {{"-c", "true", "--snapshot-size", "64"}, "--snapshot-size: must be between 512"},
      {{"-c", "true", "--format", "xml"}, "--format: unknown format 'xml'"},
      {{"-p", "1", "--inprocess"}, "--inprocess needs -c"},
      {{"-c", "true", "--sample-bytes", "64K"}, "--sample-bytes is the sampling library's rate"},
      {{"-c", fixture("ml_static"), "--inprocess"}, "statically linked"},
      {{"-c", "/nonexistent/program"}, "/nonexistent/program"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv = {leakwatch(), "growth"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = run_argv(argv, std::chrono::seconds(30));
    EXPECT_EQ(r.exit_code, 1) << c.message << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

}  // namespace
}  // namespace leakwatch::testing
