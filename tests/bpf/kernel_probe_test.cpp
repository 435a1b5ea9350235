// The kernel-mode BPF object on real tracepoints, driven from this process so that its own
// allocations can be picked out by tgid among everything else the machine allocates.
#include <gtest/gtest.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "probe/kernel_probe.h"
#include "probe/tracefs.h"
#include "support/process.h"
#include "symbolize/kallsyms.h"

namespace leakwatch::probe {
namespace {

class KernelProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  }
};

struct Mine {
  uint64_t bytes = 0, count = 0;
};

Mine outstanding(const KernelProbe& p, uint32_t space, uint32_t source) {
  Mine m;
  auto a = p.read_allocs();
  EXPECT_TRUE(a.has_value());
  if (!a) return m;
  uint32_t me = static_cast<uint32_t>(::getpid());
  for (const auto& e : *a)
    if (e.tgid == me && e.space == space && e.source == source) {
      m.bytes += e.size;
      m.count++;
    }
  return m;
}

// Only this process's allocations are recorded: the rest of a busy machine could fill the
// map (a million outstanding pages come quickly while compilers run).
KernelConfig mine_only() {
  KernelConfig cfg;
  cfg.only_tgid = static_cast<uint32_t>(::getpid());
  return cfg;
}

TEST_F(KernelProbeTest, PagesFreedByMunmapAreNotLeaks) {
  auto probe = KernelProbe::Create(mine_only());
  ASSERT_TRUE(probe.has_value()) << probe.error().message;
  KernelProbe& p = **probe;
  constexpr size_t kLen = 64u << 20;
  const uint64_t batched_before = p.read_counters()[KLW_CNT_PAGE_FREE_BATCHED];
  // Reading the map allocates in this process too (its heap grows and keeps its pages):
  // read once to warm up, then measure against a baseline.
  (void)outstanding(p, KLW_SPACE_PAGE, KLW_SRC_PAGE);
  Mine base = outstanding(p, KLW_SPACE_PAGE, KLW_SRC_PAGE);
  char* mem = static_cast<char*>(mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(mem, MAP_FAILED);
  madvise(mem, kLen, MADV_NOHUGEPAGE);
  for (size_t off = 0; off < kLen; off += 4096) mem[off] = 1;
  Mine held = outstanding(p, KLW_SPACE_PAGE, KLW_SRC_PAGE);
  // Every touched page was allocated in this process's page faults (plus page tables).
  EXPECT_GE(held.bytes - base.bytes, kLen * 95 / 100) << held.count << " pages";
  munmap(mem, kLen);
  Mine after = outstanding(p, KLW_SPACE_PAGE, KLW_SRC_PAGE);
  // munmap gives the pages back in batches (mm_page_free_batched, and on kernels since
  // 2.6.33 mm_page_free for each page as well): none of them may stay outstanding.
  EXPECT_LE(after.bytes, base.bytes + (4u << 20))
      << after.count - base.count << " more pages outstanding than before";
  auto c = p.read_counters();
  EXPECT_GE(c[KLW_CNT_PAGE_FREE_BATCHED] - batched_before, kLen / 4096 * 9 / 10);
  EXPECT_EQ(c[KLW_CNT_ALLOCS_FULL], 0u);
}

// What the test above relies on besides mm_page_free_batched: on this kernel (and since
// 2.6.33) every page freed in a batch is also reported by mm_page_free, before the batched
// event and before the page can be reused.  With the batched handler off (BCC's set of
// tracepoints) the pages still come back.
TEST_F(KernelProbeTest, BatchedPagesAreAlsoReportedByMmPageFree) {
  KernelConfig cfg = mine_only();
  cfg.batched_free = false;
  auto probe = KernelProbe::Create(cfg);
  ASSERT_TRUE(probe.has_value()) << probe.error().message;
  KernelProbe& p = **probe;
  constexpr size_t kLen = 32u << 20;
  (void)outstanding(p, KLW_SPACE_PAGE, KLW_SRC_PAGE);
  Mine base = outstanding(p, KLW_SPACE_PAGE, KLW_SRC_PAGE);
  char* mem = static_cast<char*>(mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(mem, MAP_FAILED);
  madvise(mem, kLen, MADV_NOHUGEPAGE);
  for (size_t off = 0; off < kLen; off += 4096) mem[off] = 1;
  munmap(mem, kLen);
  Mine after = outstanding(p, KLW_SPACE_PAGE, KLW_SRC_PAGE);
  EXPECT_LE(after.bytes, base.bytes + (4u << 20));
  EXPECT_EQ(p.read_counters()[KLW_CNT_FREED_BATCHED], 0u);
}

TEST_F(KernelProbeTest, SlabAllocationsCarryKernelStacks) {
  auto probe = KernelProbe::Create(mine_only());
  ASSERT_TRUE(probe.has_value()) << probe.error().message;
  auto ksyms = symbolize::Kallsyms::Load();
  ASSERT_TRUE(ksyms.has_value()) << ksyms.error().message;
  constexpr int kPipes = 200;
  int fds[2 * kPipes];
  for (int i = 0; i < kPipes; i++) ASSERT_EQ(pipe2(fds + 2 * i, O_CLOEXEC), 0);
  auto a = (*probe)->read_allocs();
  ASSERT_TRUE(a.has_value());
  int in_pipe_stacks = 0;
  uint32_t me = static_cast<uint32_t>(::getpid());
  for (const auto& e : *a) {
    if (e.tgid != me || e.space != KLW_SPACE_SLAB) continue;
    for (uint64_t ip : (*probe)->read_stack(e.stack_hash)) {
      auto s = ksyms->resolve(ip);
      if (s && s->function == "alloc_pipe_info") {
        in_pipe_stacks++;
        break;
      }
    }
  }
  for (int fd : fds) ::close(fd);
  EXPECT_GE(in_pipe_stacks, 2 * kPipes);
}

TEST_F(KernelProbeTest, PercpuModeTracksPercpuMaps) {
  if (!tracepoint_exists("percpu", "percpu_alloc_percpu")) GTEST_SKIP() << "no percpu tracepoints";
  KernelConfig cfg = mine_only();
  cfg.percpu = true;
  auto probe = KernelProbe::Create(cfg);
  ASSERT_TRUE(probe.has_value()) << probe.error().message;
  // A per-CPU array allocates one per-CPU block per element (value size 64 here).
  constexpr int kMaps = 10, kEntries = 32;
  std::vector<int> maps;
  for (int i = 0; i < kMaps; i++) {
    int fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, nullptr, 4, 64, kEntries, nullptr);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    maps.push_back(fd);
  }
  Mine held = outstanding(**probe, KLW_SPACE_PERCPU, KLW_SRC_PERCPU);
  EXPECT_GE(held.bytes, uint64_t{kMaps} * kEntries * 64);
  EXPECT_GE(held.count, uint64_t{kMaps} * kEntries);
  for (int fd : maps) ::close(fd);
  // Maps are freed from a work item after the last reference goes.
  Mine after;
  for (int i = 0; i < 40; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    after = outstanding(**probe, KLW_SPACE_PERCPU, KLW_SRC_PERCPU);
    if (after.bytes < held.bytes / 10) break;
  }
  EXPECT_LT(after.bytes, held.bytes / 10);
  // Percpu mode traces only the percpu allocator (as BCC's --percpu does).
  EXPECT_EQ(outstanding(**probe, KLW_SPACE_SLAB, KLW_SRC_KMALLOC).count, 0u);
}

}  // namespace
}  // namespace leakwatch::probe
