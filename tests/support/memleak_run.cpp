#include "support/memleak_run.h"

#include <fmt/format.h>

#include "common/atomic_file.h"
#include "report/json_writer.h"

namespace leakwatch::testing {

MemleakRun memleak_command(const std::string& command, const std::vector<std::string>& extra,
                           const std::vector<std::string>& env) {
  std::string out = temp_path("report.json");
  std::vector<std::string> argv;
  if (!env.empty()) {
    argv.push_back("env");
    argv.insert(argv.end(), env.begin(), env.end());
  }
  argv.insert(argv.end(), {leakwatch(), "memleak", "-c", command, "-o", "0"});
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.insert(argv.end(), {"--format", "json", "--output", out});
  MemleakRun run;
  run.result = run_argv(argv);
  auto text = read_file(out);
  if (!text) return run;
  auto rep = report::read_json(*text);
  if (!rep) return run;
  run.report = std::move(*rep);
  run.parsed = true;
  return run;
}

std::vector<const report::StackReport*> stacks_in(const report::Report& r, const std::string& function) {
  std::vector<const report::StackReport*> out;
  for (const auto& s : r.stacks)
    if (!s.frames.empty() && s.frames[0].function.rfind(function, 0) == 0) out.push_back(&s);
  return out;
}

Totals totals_in(const report::Report& r, const std::string& function) {
  Totals t;
  for (const auto* s : stacks_in(r, function)) {
    t.bytes += s->bytes.sampled;
    t.count += s->count.sampled;
    t.est_bytes += s->bytes.estimate;
    t.est_count += s->count.estimate;
    t.ci_lo += s->bytes.ci_lo;
    t.ci_hi += s->bytes.ci_hi;
  }
  return t;
}

void expect_exact_leak(const report::Report& r, const std::string& fn, double count, double each) {
  double n = 0, bytes = 0;
  for (const auto& s : r.stacks) {
    if (s.frames.empty()) continue;
    const std::string& f = s.frames[0].function;
    if (f != fn && f.rfind(fn + "(", 0) != 0) continue;
    n += s.count.sampled;
    bytes += s.bytes.sampled;
  }
  EXPECT_EQ(n, count) << fn << "\n" << describe(r);
  EXPECT_EQ(bytes, count * each) << fn << "\n" << describe(r);
}

void expect_ml_functions_leaks(const report::Report& r) {
  expect_exact_leak(r, "leak_malloc", 4, 1111);
  expect_exact_leak(r, "leak_calloc", 3, 777);
  expect_exact_leak(r, "leak_realloc_chain", 1, 2222);
  expect_exact_leak(r, "leak_reallocarray", 2, 363);
  expect_exact_leak(r, "leak_posix_memalign", 2, 640);
  expect_exact_leak(r, "leak_aligned_alloc", 2, 1280);
  expect_exact_leak(r, "leak_memalign", 2, 2560);
  expect_exact_leak(r, "leak_valloc", 1, 5000);
  expect_exact_leak(r, "leak_pvalloc", 1, 6000);
  expect_exact_leak(r, "leak_mmap", 2, 12288);
  expect_exact_leak(r, "leak_realloc_fail", 1, 3333);
  // No frame twice in a row (ml_functions has no recursion and, at -O0, no inlining): a
  // return address recovered by the caller search must not repeat the chain's next one.
  for (const auto& s : r.stacks)
    for (size_t i = 0; i + 1 < s.frames.size(); i++)
      EXPECT_FALSE(s.frames[i].address == s.frames[i + 1].address && !s.frames[i].inlined)
          << "frame " << i << " repeated in\n" << describe(r);
}

std::string describe(const report::Report& r) {
  std::string s;
  for (const auto& st : r.stacks) {
    s += fmt::format("  {} bytes in {} allocations:", st.bytes.sampled, st.count.sampled);
    for (size_t i = 0; i < st.frames.size() && i < 4; i++)
      s += fmt::format(" {} [{}] <-", st.frames[i].function, st.frames[i].module);
    s += "\n";
  }
  for (const auto& [k, v] : r.lost) s += fmt::format("  lost {}={}\n", k, v);
  for (const auto& n : r.notes) s += fmt::format("  note: {}\n", n);
  return s;
}

}  // namespace leakwatch::testing
