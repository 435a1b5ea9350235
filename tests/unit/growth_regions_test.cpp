// RegionMap: the regions a process mapped, fed mmap/munmap/mremap/brk events as the growth
// probe writes them.
#include <gtest/gtest.h>

#include <vector>

#include "tracker/growth_regions.h"

namespace leakwatch::tracker {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kMiB = 1 << 20;
constexpr uint32_t kAnonPrivate = 0x22;  // MAP_PRIVATE | MAP_ANONYMOUS
constexpr uint32_t kRw = 3;              // PROT_READ | PROT_WRITE

lw_gr_event mmap_ev(uint64_t addr, uint64_t len, uint64_t stack, uint32_t flags = kAnonPrivate,
                    int fd = -1, uint32_t prot = kRw) {
  lw_gr_event e{};
  e.type = LW_GR_EV_MMAP;
  e.addr = addr;
  e.len = len;
  e.stack = stack;
  e.flags = flags;
  e.fd = fd;
  e.prot = prot;
  return e;
}

lw_gr_event munmap_ev(uint64_t addr, uint64_t len) {
  lw_gr_event e{};
  e.type = LW_GR_EV_MUNMAP;
  e.addr = addr;
  e.len = len;
  return e;
}

lw_gr_event mremap_ev(uint64_t old_addr, uint64_t old_len, uint64_t addr, uint64_t len,
                      uint64_t stack, uint32_t flags = 1 /* MREMAP_MAYMOVE */) {
  lw_gr_event e{};
  e.type = LW_GR_EV_MREMAP;
  e.old_addr = old_addr;
  e.old_len = old_len;
  e.addr = addr;
  e.len = len;
  e.stack = stack;
  e.flags = flags;
  return e;
}

lw_gr_event brk_ev(uint64_t before, uint64_t after, uint64_t stack) {
  lw_gr_event e{};
  e.type = LW_GR_EV_BRK;
  e.old_addr = before;
  e.addr = after;
  e.stack = stack;
  return e;
}

struct Piece {
  uint64_t start, end, stack;
  bool anon, brk;
  bool operator==(const Piece&) const = default;
};

std::vector<Piece> pieces(const RegionMap& m) {
  std::vector<Piece> out;
  m.for_each([&](uint64_t s, const Region& r) {
    out.push_back({s, r.end, r.stack, r.anon, r.brk});
  });
  return out;
}

std::ostream& operator<<(std::ostream& os, const Piece& p) {
  return os << "[" << std::hex << p.start << "," << p.end << ") stack " << std::dec << p.stack
            << (p.anon ? " anon" : " file") << (p.brk ? " brk" : "");
}

TEST(GrowthRegions, MmapRoundsToPagesAndMunmapSplits) {
  RegionMap m(kPage);
  m.apply(mmap_ev(0x10000, 3 * kPage + 1, 7));  // rounded up to 4 pages
  EXPECT_EQ(m.bytes(), 4 * kPage);
  // Unmap the second page: two pieces, same stack.
  m.apply(munmap_ev(0x11000, kPage));
  EXPECT_EQ(pieces(m), (std::vector<Piece>{{0x10000, 0x11000, 7, true, false},
                                           {0x12000, 0x14000, 7, true, false}}));
  // Unmapping across the end of a region and beyond is fine.
  m.apply(munmap_ev(0x13000, 16 * kPage));
  EXPECT_EQ(pieces(m), (std::vector<Piece>{{0x10000, 0x11000, 7, true, false},
                                           {0x12000, 0x13000, 7, true, false}}));
  // A range never seen mapped (before attach) changes nothing.
  m.apply(munmap_ev(0x900000, kMiB));
  EXPECT_EQ(m.bytes(), 2 * kPage);
  // One call unmapping both pieces and the hole between them.
  m.apply(munmap_ev(0x10000, 3 * kPage));
  EXPECT_EQ(m.size(), 0u);
}

TEST(GrowthRegions, FileMappingsAndReservations) {
  RegionMap m(kPage);
  m.apply(mmap_ev(0x100000, kMiB, 1, /*MAP_PRIVATE*/ 0x02, /*fd*/ 5, /*PROT_READ*/ 1));
  m.apply(mmap_ev(0x300000, kMiB, 2, /*MAP_SHARED|MAP_ANONYMOUS*/ 0x21));
  m.apply(mmap_ev(0x500000, 8 * kMiB, 3, kAnonPrivate, -1, /*PROT_NONE*/ 0));
  auto p = pieces(m);
  ASSERT_EQ(p.size(), 2u);  // the PROT_NONE reservation is not memory
  EXPECT_FALSE(p[0].anon);
  EXPECT_TRUE(p[1].anon);   // shared anonymous memory is anonymous
  EXPECT_TRUE(m.find(0x300000 + 5)->shared);
  EXPECT_FALSE(m.find(0x100000)->shared);
  EXPECT_EQ(m.find(0x500000), nullptr);
  EXPECT_EQ(m.find(0x100000 + kMiB), nullptr);  // the end is exclusive
  EXPECT_NE(m.find(0x100000 + kMiB - 1), nullptr);
}

TEST(GrowthRegions, MapFixedReplacesWhatWasThere) {
  RegionMap m(kPage);
  m.apply(mmap_ev(0x100000, 4 * kPage, 1));
  m.apply(mmap_ev(0x101000, 2 * kPage, 2, kAnonPrivate | 0x10 /* MAP_FIXED */));
  EXPECT_EQ(pieces(m), (std::vector<Piece>{{0x100000, 0x101000, 1, true, false},
                                           {0x101000, 0x103000, 2, true, false},
                                           {0x103000, 0x104000, 1, true, false}}));
}

TEST(GrowthRegions, MremapInPlaceGrowsToTheCallersStackAndShrinks) {
  RegionMap m(kPage);
  m.apply(mmap_ev(0x100000, 4 * kPage, 1));
  m.apply(mremap_ev(0x100000, 4 * kPage, 0x100000, 6 * kPage, 9));
  EXPECT_EQ(pieces(m), (std::vector<Piece>{{0x100000, 0x104000, 1, true, false},
                                           {0x104000, 0x106000, 9, true, false}}));
  m.apply(mremap_ev(0x100000, 6 * kPage, 0x100000, 3 * kPage, 9));
  EXPECT_EQ(pieces(m), (std::vector<Piece>{{0x100000, 0x103000, 1, true, false}}));
}

TEST(GrowthRegions, MremapMoveKeepsStacksOfTheMovedBytes) {
  RegionMap m(kPage);
  m.apply(mmap_ev(0x100000, 2 * kPage, 1));
  m.apply(mmap_ev(0x102000, 2 * kPage, 2, kAnonPrivate | 0x10 /* MAP_FIXED */));
  // Move the whole 4 pages elsewhere and grow to 5.
  m.apply(mremap_ev(0x100000, 4 * kPage, 0x800000, 5 * kPage, 3));
  EXPECT_EQ(pieces(m), (std::vector<Piece>{{0x800000, 0x802000, 1, true, false},
                                           {0x802000, 0x804000, 2, true, false},
                                           {0x804000, 0x805000, 3, true, false}}));
  // MREMAP_DONTUNMAP: the old range stays (emptied but mapped) and the bytes are copied.
  m.apply(mremap_ev(0x800000, 2 * kPage, 0x900000, 2 * kPage, 5, 1 | 4));
  EXPECT_EQ(m.bytes(), 7 * kPage);
  EXPECT_EQ(m.find(0x901000)->stack, 1u);
  // Shrinking while moving drops the tail.
  m.apply(mremap_ev(0x900000, 2 * kPage, 0xa00000, kPage, 6));
  EXPECT_EQ(m.find(0xa00000)->stack, 1u);
  EXPECT_EQ(m.find(0xa01000), nullptr);
  EXPECT_EQ(m.find(0x900000), nullptr);
}

TEST(GrowthRegions, MremapOfAnUntrackedRangeCountsOnlyTheGrowth) {
  RegionMap m(kPage);
  m.apply(mremap_ev(0x100000, 4 * kPage, 0x700000, 10 * kPage, 8));
  EXPECT_EQ(pieces(m), (std::vector<Piece>{{0x704000, 0x70a000, 8, true, false}}));
}

TEST(GrowthRegions, BrkGrowsAndShrinksFromTheTop) {
  RegionMap m(kPage);
  m.apply(brk_ev(0x555000000100, 0x555000021000, 1));  // the first break is not aligned
  m.apply(brk_ev(0x555000021000, 0x555000041000, 2));
  EXPECT_EQ(pieces(m),
            (std::vector<Piece>{{0x555000001000, 0x555000021000, 1, true, true},
                                {0x555000021000, 0x555000041000, 2, true, true}}));
  m.apply(brk_ev(0x555000041000, 0x555000030800, 3));  // shrink: partial page kept
  EXPECT_EQ(pieces(m),
            (std::vector<Piece>{{0x555000001000, 0x555000021000, 1, true, true},
                                {0x555000021000, 0x555000031000, 2, true, true}}));
}

TEST(GrowthRegions, RemoveReturnsTheClippedPieces) {
  RegionMap m(kPage);
  m.insert(0x1000, Region{0x3000, 1, true, false, false});
  m.insert(0x5000, Region{0x8000, 2, true, false, false});
  auto removed = m.remove(0x2000, 0x6000);
  ASSERT_EQ(removed.size(), 2u);
  EXPECT_EQ(removed[0].first, 0x2000u);
  EXPECT_EQ(removed[0].second.end, 0x3000u);
  EXPECT_EQ(removed[1].first, 0x5000u);
  EXPECT_EQ(removed[1].second.end, 0x6000u);
  EXPECT_EQ(m.bytes(), 0x1000u + 0x2000u);
}

}  // namespace
}  // namespace leakwatch::tracker
