// The tracker's timeline: outstanding bytes of the report's largest stacks on one time axis
// with the total and the process's RSS, bounded in size however long the session.
#include <gtest/gtest.h>

#include <cmath>

#include "analysis/history.h"
#include "tracker/tracker.h"
#include "tracker_testing.h"

namespace leakwatch::tracker {
namespace {

using testing::NamingResolver;

constexpr uint64_t kSecond = 1000000000ull;

// Allocations: `per_stack[i]` blocks of 1000 bytes on stack i+1 (ids 1..n), all of tgid 7.
Snapshot snapshot(const std::vector<int>& per_stack, std::optional<double> rss) {
  Snapshot snap;
  uint64_t address = 0x1000;
  for (size_t i = 0; i < per_stack.size(); ++i)
    for (int k = 0; k < per_stack[i]; ++k)
      snap.allocs.push_back({address += 0x100, 7, 1000, kSecond / 2, static_cast<int32_t>(i + 1), 0});
  snap.read_stack = [](int32_t id) { return std::vector<uint64_t>{static_cast<uint64_t>(id)}; };
  snap.rss_bytes = rss;
  return snap;
}

TEST(TrackerTimeline, LargestStacksOnOneAxisWithTotalAndRss) {
  NamingResolver resolver;
  TrackerConfig cfg;
  cfg.target.pid = 7;
  Tracker tracker(cfg, resolver);
  // Stack 1 grows by 2 blocks a report, stack 2 stays at 3, stack 3 appears at t=3.
  report::Report rep;
  for (int t = 1; t <= 4; ++t) {
    std::vector<int> blocks{2 * t, 3};
    if (t >= 3) blocks.push_back(1);
    std::optional<double> rss = t == 2 ? std::nullopt : std::optional<double>(1e6 * t);
    rep = tracker.update(snapshot(blocks, rss), static_cast<uint64_t>(t) * kSecond, t);
  }
  ASSERT_TRUE(rep.timeline);
  const report::Timeline& tl = *rep.timeline;
  EXPECT_EQ(tl.t_s, (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(tl.total_bytes, (std::vector<double>{5000, 7000, 10000, 12000}));
  ASSERT_EQ(tl.rss_bytes.size(), 4u);
  EXPECT_EQ(tl.rss_bytes[0], 1e6);
  EXPECT_TRUE(std::isnan(tl.rss_bytes[1]));  // not read at that report
  EXPECT_EQ(tl.rss_bytes[3], 4e6);
  ASSERT_EQ(tl.stacks.size(), 3u);
  // Largest first, as the report's stacks; ids are the report's.
  EXPECT_EQ(tl.stacks[0].stack_id, rep.stacks[0].stack_id);
  EXPECT_EQ(rep.stacks[0].frames[0].function, "fn1");
  EXPECT_EQ(tl.stacks[0].bytes, (std::vector<double>{2000, 4000, 6000, 8000}));
  EXPECT_EQ(tl.stacks[1].bytes, (std::vector<double>{3000, 3000, 3000, 3000}));
  EXPECT_EQ(tl.stacks[2].bytes, (std::vector<double>{0, 0, 1000, 1000}));  // 0 before it appeared
}

TEST(TrackerTimeline, BoundedAndCoveringTheWholeSession) {
  NamingResolver resolver;
  TrackerConfig cfg;
  Tracker tracker(cfg, resolver);
  report::Report rep;
  std::vector<int> blocks(12, 1);  // more stacks than the timeline draws
  for (int t = 1; t <= 1000; ++t)
    rep = tracker.update(snapshot(blocks, 2e6), static_cast<uint64_t>(t) * kSecond, t);
  ASSERT_TRUE(rep.timeline);
  const report::Timeline& tl = *rep.timeline;
  EXPECT_LE(tl.t_s.size(), analysis::StackHistory::kDefaultMaxPoints + 1);
  EXPECT_GE(tl.t_s.size(), analysis::StackHistory::kDefaultMaxPoints / 2);
  EXPECT_LT(tl.t_s.front(), 10);
  EXPECT_GT(tl.t_s.back(), 990);
  EXPECT_EQ(tl.stacks.size(), 8u);
  for (const auto& s : tl.stacks) {
    ASSERT_EQ(s.bytes.size(), tl.t_s.size());
    for (double b : s.bytes) EXPECT_DOUBLE_EQ(b, 1000);
  }
  for (double r : tl.rss_bytes) EXPECT_DOUBLE_EQ(r, 2e6);
}

}  // namespace
}  // namespace leakwatch::tracker
