// HookTable: the in-process hooks' records kept in user space.
#include "tracker/hook_table.h"

#include <gtest/gtest.h>

#include <vector>

namespace leakwatch::tracker {
namespace {

constexpr uint32_t kBit = 1u << 30;

lw_hook_event alloc_event(uint32_t tgid, uint64_t addr, uint64_t size, uint64_t ts,
                          const std::vector<uint64_t>& frames) {
  lw_hook_event e{};
  e.h.addr = addr;
  e.h.size = size;
  e.h.ts = ts;
  e.h.tgid = tgid;
  e.h.type = LW_HOOK_EV_ALLOC;
  e.h.depth = static_cast<uint32_t>(frames.size());
  for (size_t i = 0; i < frames.size(); i++) e.ips[i] = frames[i];
  return e;
}

lw_hook_event free_event(uint32_t tgid, uint64_t addr) {
  lw_hook_event e{};
  e.h.addr = addr;
  e.h.tgid = tgid;
  e.h.type = LW_HOOK_EV_FREE;
  return e;
}

size_t len_of(const lw_hook_event& e) { return LW_HOOK_EVENT_HEADER + e.h.depth * 8; }

std::vector<probe::OutstandingAlloc> allocs(const HookTable& t) {
  std::vector<probe::OutstandingAlloc> out;
  t.append_allocs(out, kBit);
  return out;
}

TEST(HookTable, BlocksStayUntilFreedAndEqualStacksShareAnId) {
  HookTable t(16, 100);
  auto a = alloc_event(7, 0x1000, 100, 5, {0x401000, 0x402000});
  auto b = alloc_event(7, 0x2000, 200, 6, {0x401000, 0x402000});
  auto c = alloc_event(7, 0x3000, 300, 7, {0x401010, 0x402000});
  for (const auto* e : {&a, &b, &c}) t.consume(*e, len_of(*e));
  auto out = allocs(t);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].stack_id, out[1].stack_id);
  EXPECT_NE(out[0].stack_id, out[2].stack_id);
  EXPECT_TRUE(static_cast<uint32_t>(out[0].stack_id) & kBit);
  EXPECT_EQ(out[1].size, 200u);
  EXPECT_EQ(out[1].timestamp_ns, 6u);
  EXPECT_EQ(out[0].kind, static_cast<uint32_t>(LW_FN_HOOK_ALLOC));
  EXPECT_EQ(t.stack(static_cast<uint32_t>(out[2].stack_id) & ~kBit),
            (std::vector<uint64_t>{0x401010, 0x402000}));

  auto f = free_event(7, 0x2000);
  t.consume(f, len_of(f));
  out = allocs(t);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].address, 0x1000u);
  EXPECT_EQ(out[1].address, 0x3000u);
  EXPECT_EQ(t.stats().allocs, 3u);
  EXPECT_EQ(t.stats().frees, 1u);
  EXPECT_EQ(t.stats().unknown_frees, 0u);
}

TEST(HookTable, AddressesAreKeptPerProcessAndReusedAfterTheirFree) {
  HookTable t(16, 100);
  auto a1 = alloc_event(1, 0x1000, 10, 1, {0x10});
  auto a2 = alloc_event(2, 0x1000, 20, 2, {0x20});
  auto f1 = free_event(1, 0x1000);
  auto again = alloc_event(1, 0x1000, 30, 3, {0x30});
  for (const auto* e : {&a1, &a2, &f1, &again}) t.consume(*e, len_of(*e));
  auto out = allocs(t);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].tgid, 1u);
  EXPECT_EQ(out[0].size, 30u);
  EXPECT_EQ(out[1].tgid, 2u);
  EXPECT_EQ(out[1].size, 20u);
}

TEST(HookTable, FreeOfABlockSampledBeforeTheTraceIsCountedNotAnError) {
  HookTable t(16, 100);
  auto f = free_event(3, 0x5000);
  t.consume(f, len_of(f));
  EXPECT_EQ(t.stats().unknown_frees, 1u);
  EXPECT_TRUE(allocs(t).empty());
}

TEST(HookTable, StacksBeyondTheLimitAreLostButTheirBlocksKept) {
  HookTable t(1, 100);
  auto a = alloc_event(1, 0x1000, 10, 1, {0x10});
  auto b = alloc_event(1, 0x2000, 10, 1, {0x20});
  auto none = alloc_event(1, 0x3000, 10, 1, {});
  for (const auto* e : {&a, &b, &none}) t.consume(*e, len_of(*e));
  auto out = allocs(t);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_GT(out[0].stack_id, 0);
  EXPECT_EQ(out[1].stack_id, -1);
  EXPECT_EQ(out[2].stack_id, -1);  // sent without a stack
  EXPECT_EQ(t.stats().stacks_full, 1u);
}

TEST(HookTable, SamplesBeyondTheBlockLimitAreDroppedAndCounted) {
  HookTable t(16, 2);
  auto a = alloc_event(1, 0x1000, 10, 1, {0x10});
  auto b = alloc_event(1, 0x2000, 10, 1, {0x10});
  auto c = alloc_event(1, 0x3000, 10, 1, {0x10});
  auto again = alloc_event(1, 0x1000, 20, 2, {0x10});  // an address it holds: replaced
  for (const auto* e : {&a, &b, &c, &again}) t.consume(*e, len_of(*e));
  auto out = allocs(t);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].size, 20u);
  EXPECT_EQ(t.stats().table_full, 1u);
}

TEST(HookTable, ShortRecordsAreCountedAndNeverReadPastTheirEnd) {
  HookTable t(16, 100);
  auto a = alloc_event(1, 0x1000, 10, 1, {0x10, 0x20, 0x30});
  t.consume(a, LW_HOOK_EVENT_HEADER + 8);  // claims 3 frames, holds 1
  t.consume(a, 8);                         // not even a header
  EXPECT_EQ(t.stats().bad_records, 2u);
  auto out = allocs(t);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].stack_id, -1);
}

}  // namespace
}  // namespace leakwatch::tracker
