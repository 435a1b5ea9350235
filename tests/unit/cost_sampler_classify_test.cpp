// Sorting the target's CPU samples into "at the probes" and "its own work"
// (probe/cost_sampler.h classify_samples), on fixed maps.
#include <gtest/gtest.h>

#include "probe/cost_sampler.h"

namespace leakwatch::probe {
namespace {

MapEntry map(uint64_t start, uint64_t end, uint64_t offset, uint64_t inode, std::string path) {
  MapEntry m;
  m.start = start;
  m.end = end;
  m.offset = offset;
  m.inode = inode;
  m.readable = m.executable = true;
  m.path = std::move(path);
  return m;
}

class ClassifySamples : public ::testing::Test {
 protected:
  // libc's text mapped from file offset 0x26000 (inode 7), the program (inode 9), the
  // kernel's [uprobes] page, a heap.
  std::vector<MapEntry> maps{
      map(0x400000, 0x401000, 0x1000, 9, "/srv/app"),
      map(0x7f0000028000, 0x7f000017e000, 0x26000, 7, "/usr/lib/x86_64-linux-gnu/libc.so.6"),
      map(0x7f0000200000, 0x7f0000300000, 0, 0, "[heap]"),
      map(0x7fffffffe000, 0x7ffffffff000, 0, 0, "[uprobes]"),
  };
  // malloc probed at file offset 0x98930 of libc (reached by another path, /lib/...).
  std::vector<ProbeSite> sites{{7, 0x98930}};
  static constexpr uint64_t kMalloc = 0x7f0000028000 + (0x98930 - 0x26000);
  std::set<uint64_t> traps_;
};

TEST_F(ClassifySamples, TheProbedInstructionAndTheBytesAfterItAreTheProbes) {
  CostSplit s = classify_samples({{kMalloc, 5}, {kMalloc + 1, 7}, {kMalloc + kProbeSiteBytes - 1, 2}},
                                 maps, sites, traps_);
  EXPECT_EQ(s.at_probes, 14u);
  EXPECT_EQ(s.work, 0u);
}

TEST_F(ClassifySamples, TheRestOfTheAllocatorAndTheProgramAreWork) {
  CostSplit s = classify_samples({{kMalloc + kProbeSiteBytes, 3}, {kMalloc - 1, 4}, {0x400123, 10}},
                                 maps, sites, traps_);
  EXPECT_EQ(s.at_probes, 0u);
  EXPECT_EQ(s.work, 17u);
}

TEST_F(ClassifySamples, TheUprobesPageIsTheProbes) {
  CostSplit s = classify_samples({{0x7fffffffe00d, 6}}, maps, sites, traps_);
  EXPECT_EQ(s.at_probes, 6u);
}

TEST_F(ClassifySamples, TheSameOffsetInAnotherObjectIsWork) {
  // The program's file offset equal to the probe's: a different inode.
  const uint64_t same_offset_elsewhere = 0x400000 + (0x98930 - 0x1000);
  std::vector<MapEntry> m = maps;
  m[0].end = same_offset_elsewhere + 0x1000;
  m[1].start += 0x100000000;  // keep the maps apart
  m[1].end += 0x100000000;
  CostSplit s = classify_samples({{same_offset_elsewhere, 4}}, m, sites, traps_);
  EXPECT_EQ(s.at_probes, 0u);
  EXPECT_EQ(s.work, 4u);
}

TEST_F(ClassifySamples, AddressesInNoMappingAreCountedApart) {
  CostSplit s = classify_samples({{0x1000, 2}, {0x7f000017e000, 3}, {0x7f0000200010, 1}}, maps, sites, traps_);
  EXPECT_EQ(s.unmapped, 5u);  // below every mapping; one past libc's end
  EXPECT_EQ(s.work, 1u);      // the heap (code run from it is the target's)
  EXPECT_EQ(s.total(), 6u);
}

// A return probe's trap shows the caller's return address (0x400242 here): samples taken
// in the trap are the probes', and so are user samples there, in this read or a later one
// (an interrupt held back during the trap lands on the next instructions).
TEST_F(ClassifySamples, ReturnSitesSeenInTrapsAreTheProbes) {
  CostSplit s = classify_samples({{0x400242 | kSampleInTrap, 9}, {0x400242, 4}, {0x400245, 2},
                                  {0x400242 + kProbeSiteBytes, 1}},
                                 maps, sites, traps_);
  EXPECT_EQ(s.at_probes, 15u);
  EXPECT_EQ(s.work, 1u);
  CostSplit later = classify_samples({{0x400244, 3}, {0x400100, 5}}, maps, sites, traps_);
  EXPECT_EQ(later.at_probes, 3u);
  EXPECT_EQ(later.work, 5u);
}

TEST_F(ClassifySamples, EveryTrapSampleIsTheProbesEvenOutsideAnyMapping) {
  CostSplit s = classify_samples({{0x10 | kSampleInTrap, 2}}, maps, sites, traps_);
  EXPECT_EQ(s.at_probes, 2u);
  EXPECT_EQ(s.unmapped, 0u);
}

}  // namespace
}  // namespace leakwatch::probe
