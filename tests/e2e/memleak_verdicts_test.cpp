// Verdicts on a real traced program: a true leak next to a bounded cache, a pool made at
// start and a churning LRU.  Only the leak may be called a leak.
#include <gtest/gtest.h>

#include "support/memleak_run.h"

namespace leakwatch::testing {
namespace {

const report::StackReport* largest(const report::Report& r, const std::string& fn) {
  const report::StackReport* best = nullptr;
  for (const auto* s : stacks_in(r, fn))
    if (!best || s->bytes.estimate > best->bytes.estimate) best = s;
  return best;
}

TEST(MemleakVerdicts, LeakIsLeakCacheAndPoolAreNot) {
  if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  // Reports every 0.5 s over 6 s give the per-stack history the verdicts need.
  auto run = memleak_command(fixture("ml_verdicts") + " 6", {"0.5"});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed);
  const auto& r = run.report;

  const auto* leak = largest(r, "leak_requests");
  ASSERT_NE(leak, nullptr) << describe(r);
  EXPECT_EQ(leak->verdict, report::Verdict::kLeak) << leak->reason;
  EXPECT_GT(leak->growth_bytes_per_s, 0);
  EXPECT_FALSE(leak->reason.empty());

  const auto* cache = largest(r, "fill_cache");
  ASSERT_NE(cache, nullptr) << describe(r);
  EXPECT_EQ(cache->bytes.sampled, 200 * 300.0);
  EXPECT_EQ(cache->verdict, report::Verdict::kCache) << cache->reason;

  const auto* pool = largest(r, "make_pool");
  ASSERT_NE(pool, nullptr) << describe(r);
  EXPECT_EQ(pool->verdict, report::Verdict::kCache) << pool->reason;

  // The LRU's survivors are young (each lives ~100 ms): never a leak.
  for (const auto* s : stacks_in(r, "lru_insert"))
    EXPECT_NE(s->verdict, report::Verdict::kLeak) << s->reason;
}

TEST(MemleakVerdicts, VerdictsOnlyLeakFilters) {
  if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  auto run = memleak_command(fixture("ml_verdicts") + " 4", {"0.5", "--verdicts-only", "leak"});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed);
  ASSERT_FALSE(run.report.stacks.empty());
  for (const auto& s : run.report.stacks) EXPECT_EQ(s.verdict, report::Verdict::kLeak) << describe(run.report);
  EXPECT_FALSE(stacks_in(run.report, "leak_requests").empty()) << describe(run.report);
  EXPECT_TRUE(stacks_in(run.report, "make_pool").empty());
}

}  // namespace
}  // namespace leakwatch::testing
