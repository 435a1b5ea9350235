// End-to-end kernel-mode memleak (no -p/-c): a fixture makes the kernel allocate and keep
// memory (pipes held open); the interval reports must show it in the pipe allocation
// stacks, and closing the pipes must bring it back.  The rest of the machine allocates
// too, so figures are compared with margins far below the fixture's own (see each test).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include "common/atomic_file.h"
#include "report/bcc_text_reader.h"
#include "report/json_writer.h"
#include "support/memleak_run.h"

namespace leakwatch::testing {
namespace {

class KernelMemleak : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  }
};

const std::string kHeader = "stacks with outstanding allocations:";

// The next complete interval report printed after this point: from its header to the
// header of the one after it.
std::optional<report::Report> next_report(Proc& lw) {
  if (!lw.wait_for(kHeader, std::chrono::seconds(10))) return std::nullopt;
  size_t start = lw.out().rfind('[', lw.out().rfind(kHeader));
  if (!lw.wait_for(kHeader, std::chrono::seconds(10))) return std::nullopt;
  size_t end = lw.out().rfind('[', lw.out().rfind(kHeader));
  auto rep = report::read_bcc_text(lw.out().substr(start, end - start), 1);
  if (!rep) return std::nullopt;
  return *rep;
}

// Bytes and allocations outstanding in stacks that pass through `function`.
std::pair<double, double> through(const report::Report& r, const std::string& function) {
  double bytes = 0, count = 0;
  for (const auto& s : r.stacks) {
    for (const auto& f : s.frames) {
      if (f.function == function) {
        bytes += s.bytes.sampled;
        count += s.count.sampled;
        break;
      }
    }
  }
  return {bytes, count};
}

TEST_F(KernelMemleak, HeldPipesShowInPipeStacksAndClosingThemBringsItBack) {
  // Each pipe costs a struct pipe_inode_info (kmalloc-192 here) and its array of 16
  // struct pipe_buffer (kmalloc-1k), both allocated in alloc_pipe_info().
  constexpr int kPipes = 3000;
  Proc fx({fixture("ml_kpipes")});
  ASSERT_TRUE(fx.wait_for("ready"));
  Proc lw({leakwatch(), "memleak", "-o", "0", "-T", "400", "1"});
  ASSERT_TRUE(lw.wait_for("Attaching to kernel allocators, Ctrl+C to quit.")) << lw.err();

  auto before = next_report(lw);
  ASSERT_TRUE(before.has_value()) << lw.err();
  fx.write("open " + std::to_string(kPipes) + "\n");
  ASSERT_TRUE(fx.wait_for("opened " + std::to_string(kPipes)));
  auto held = next_report(lw);
  ASSERT_TRUE(held.has_value()) << lw.err();
  fx.write("close\n");
  ASSERT_TRUE(fx.wait_for("closed"));
  auto after = next_report(lw);
  ASSERT_TRUE(after.has_value()) << lw.err();
  lw.signal(SIGINT);
  int st = lw.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << lw.err();
  fx.close_stdin();
  fx.wait();

  auto [held_bytes, held_count] = through(*held, "alloc_pipe_info");
  auto [before_bytes, before_count] = through(*before, "alloc_pipe_info");
  auto [after_bytes, after_count] = through(*after, "alloc_pipe_info");
  // At least two allocations per pipe, of at least 1024 + 128 bytes together.  Other
  // processes open and close pipes meanwhile (compilers: measured up to ~150 pipes' worth
  // between two reports), a few percent of 3000.
  EXPECT_GE(held_count - before_count, 2.0 * kPipes * 0.9) << held_count << " vs " << before_count;
  EXPECT_GE(held_bytes - before_bytes, kPipes * 1152.0 * 0.9);
  // Closing gives (nearly) all of it back.
  EXPECT_GE(held_bytes - after_bytes, kPipes * 1152.0 * 0.8)
      << "held " << held_bytes << ", after close " << after_bytes << ", before " << before_bytes;
  // The stacks are the pipe2 path, symbolized from /proc/kallsyms as kernel frames.
  bool pipe2 = false;
  for (const auto& s : held->stacks) {
    bool has_alloc = false, has_syscall = false;
    for (const auto& f : s.frames) {
      has_alloc |= f.function == "alloc_pipe_info";
      has_syscall |= f.function == "do_pipe2";
      if (f.function == "alloc_pipe_info") {
        EXPECT_EQ(f.module, "[kernel]");
      }
    }
    pipe2 |= has_alloc && has_syscall && s.count.sampled >= kPipes;
  }
  EXPECT_TRUE(pipe2) << "no alloc_pipe_info <- do_pipe2 stack with " << kPipes << " allocations";
}

TEST_F(KernelMemleak, FinalJsonReportIsAKernelReport) {
  std::string out = temp_path("kernel.json");
  auto r = run_argv({leakwatch(), "memleak", "-v", "-o", "0", "--duration", "1.5", "--wa-missing-free",
                     "--format", "json", "--output", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto text = read_file(out);
  ASSERT_TRUE(text.has_value());
  auto rep = report::read_json(*text);
  ASSERT_TRUE(rep.has_value()) << rep.error().message;
  EXPECT_TRUE(rep->target.kernel);
  EXPECT_TRUE(rep->final);
  ASSERT_FALSE(rep->stacks.empty()) << "a busy kernel allocates within 1.5 s";
  size_t named = 0, frames = 0;
  for (const auto& s : rep->stacks)
    for (const auto& f : s.frames) {
      frames++;
      named += !f.function.empty() && !f.module.empty();
    }
  EXPECT_GT(frames, 0u);
  EXPECT_GE(named, frames * 9 / 10) << "kernel frames resolve through /proc/kallsyms";
  bool hits = false;
  for (const auto& n : rep->notes) hits |= n.find("tracepoint hits: kmalloc") != std::string::npos;
  EXPECT_TRUE(hits);
  EXPECT_EQ(rep->lost.at("attach_failed"), 0u);
}

}  // namespace
}  // namespace leakwatch::testing
