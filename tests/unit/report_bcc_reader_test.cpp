#include <gtest/gtest.h>

#include <cmath>

#include "report/bcc_text_reader.h"
#include "report/text_writer.h"
#include "report_testing.h"

namespace leakwatch::report {
namespace {

using namespace testing;

Report read_file_or_fail(const std::string& name, uint64_t rate) {
  std::string text = read_text_file(golden_path(name));
  EXPECT_FALSE(text.empty()) << name;
  auto r = read_bcc_text(text, rate);
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : Report{};
}

TEST(ReportBccReader, NewerFormatWithAddresses) {
  Report r = read_file_or_fail("bcc_memleak_output.txt", 1);
  EXPECT_EQ(r.target.pid, 24811);
  EXPECT_FALSE(r.target.kernel);
  EXPECT_EQ(r.sampling.mode, SamplingMode::kExact);
  // only the last block; BCC's ascending order becomes largest first
  ASSERT_EQ(r.stacks.size(), 4u);
  EXPECT_EQ(r.stacks[0].bytes, exact(20480));
  EXPECT_EQ(r.stacks[0].count, exact(5));
  EXPECT_EQ(r.stacks[1].bytes.estimate, 8192);
  EXPECT_EQ(r.stacks[2].bytes.estimate, 1536);
  EXPECT_EQ(r.stacks[3].bytes.estimate, 512);

  const auto& leak = r.stacks[0].frames;
  ASSERT_EQ(leak.size(), 5u);
  EXPECT_EQ(leak[0].address, 0x55d0c1a011c9u);
  EXPECT_EQ(leak[0].function, "leak_fn(unsigned long)");
  EXPECT_EQ(leak[0].offset, 0x19u);
  EXPECT_EQ(leak[0].module, "leaky_demo");
  EXPECT_EQ(leak[3].function, "__libc_start_main_impl");
  EXPECT_EQ(leak[3].module, "libc.so.6");

  // C++ names with spaces, commas, brackets and '+' in them
  const auto& cxx = r.stacks[2].frames;
  ASSERT_EQ(cxx.size(), 4u);
  EXPECT_TRUE(cxx[0].function.starts_with("std::vector<std::pair<int, int>, std::allocator"));
  EXPECT_TRUE(cxx[0].function.ends_with("std::pair<int, int>&&)"));
  EXPECT_EQ(cxx[0].offset, 0x1a4u);
  EXPECT_EQ(cxx[1].function, "operator+(Money const&, Money const&)");
  EXPECT_EQ(cxx[1].offset, 0x22u);

  // unknown frames, with and without a module
  const auto& unk = r.stacks[3].frames;
  ASSERT_EQ(unk.size(), 2u);
  EXPECT_EQ(unk[0].function, "");
  EXPECT_EQ(unk[0].module, "libplugin.so");
  EXPECT_EQ(unk[0].address, 0x7f3a5d203a10u);
  EXPECT_EQ(unk[1].function, "");
  EXPECT_EQ(unk[1].module, "");
  EXPECT_EQ(unk[1].address, 0x7ffd00001234u);

  ASSERT_GE(r.notes.size(), 2u);
  EXPECT_NE(r.notes[0].find("[14:02:11]"), std::string::npos);
  EXPECT_NE(r.notes[1].find("3 \"addr = ... size = ...\" lines"), std::string::npos);
}

TEST(ReportBccReader, OlderFormatSampledIsScaled) {
  Report r = read_file_or_fail("bcc_memleak_output_old.txt", 10);
  EXPECT_EQ(r.target.pid, 2614);
  EXPECT_EQ(r.sampling.mode, SamplingMode::kCalls);
  EXPECT_EQ(r.sampling.rate, 10u);
  ASSERT_EQ(r.stacks.size(), 2u);
  const StackReport& top = r.stacks[0];
  EXPECT_EQ(top.bytes.sampled, 48);
  EXPECT_EQ(top.bytes.estimate, 480);
  EXPECT_EQ(top.count.sampled, 1);
  EXPECT_EQ(top.count.estimate, 10);
  ASSERT_EQ(top.frames.size(), 2u);
  EXPECT_EQ(top.frames[0].function, "grow_buffer");
  EXPECT_EQ(top.frames[0].offset, 0x1eu);
  EXPECT_EQ(top.frames[0].module, "allocs");
  EXPECT_EQ(top.frames[0].address, 0u);  // no address column in this format
  EXPECT_EQ(top.frames[1].function, "");

  // 2 sampled calls of 16 B at 1 in 10: count 20 +- 1.96 * sqrt(2 * 10 * 9) = 20 +- 26.3,
  // the lower end clamped at the 2 calls that were seen.
  const StackReport& second = r.stacks[1];
  EXPECT_EQ(second.count.estimate, 20);
  EXPECT_NEAR(second.count.ci_hi, 20 + 1.96 * std::sqrt(180.0), 1e-9);
  EXPECT_EQ(second.count.ci_lo, 2);
  EXPECT_NEAR(second.bytes.ci_hi, 320 + 1.96 * std::sqrt(90.0 / 2) * 32, 1e-9);
  EXPECT_LE(second.bytes.ci_lo, second.bytes.estimate);
  EXPECT_NE(r.notes[0].find("sampled 1 in 10"), std::string::npos);
}

TEST(ReportBccReader, KernelModeOldStyle) {
  const char* text =
      "Attaching to kernel allocators, Ctrl+C to quit.\n"
      "[09:10:11] Top 10 stacks with outstanding allocations:\n"
      "\t248 bytes in 4 allocations from stack\n"
      "\t\t bpf_prog_load [kernel]\n"
      "\t\t sys_bpf [kernel]\n"
      "\n"
      "\t8192 bytes in 1 allocations from stack\n"
      "\t\t alloc_and_copy_ftrace_hash.constprop.59 [kernel]\n"
      "\t\t ftrace_set_hash [kernel]\n";
  auto r = read_bcc_text(text, 1);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->target.kernel);
  ASSERT_EQ(r->stacks.size(), 2u);
  EXPECT_EQ(r->stacks[0].bytes.estimate, 8192);
  EXPECT_EQ(r->stacks[0].frames[0].function, "alloc_and_copy_ftrace_hash.constprop.59");
  EXPECT_EQ(r->stacks[0].frames[0].module, "[kernel]");
  EXPECT_EQ(r->stacks[1].frames[1].function, "sys_bpf");
}

TEST(ReportBccReader, LibbpfToolsFormat) {
  const char* text =
      "using default object: libc.so.6\n"
      "Tracing outstanding memory allocs...  Hit Ctrl-C to end\n"
      "[18:23:40] Top 10 stacks with outstanding allocations:\n"
      "4096 bytes in 1 allocations from stack\n"
      "\taddr = 0x55d0c2f1a2a0 size = 4096\n"
      "\t0 [<000055d0c1a011c9>] leak_fn+0x19 [leaky_demo]\n"
      "\t1 [<00007f3a5c0271ca>] <null sym>\n"
      "100 bytes in 10 allocations from stack\n"
      "\t0 [<000055d0c1a01300>] helper+0x5\n";
  auto r = read_bcc_text(text, 1);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->stacks.size(), 2u);
  const StackReport& s = r->stacks[0];
  EXPECT_EQ(s.bytes.estimate, 4096);
  ASSERT_EQ(s.allocations.size(), 1u);
  EXPECT_EQ(s.allocations[0].address, 0x55d0c2f1a2a0u);
  EXPECT_EQ(s.allocations[0].size, 4096u);
  ASSERT_EQ(s.frames.size(), 2u);
  EXPECT_EQ(s.frames[0].address, 0x55d0c1a011c9u);
  EXPECT_EQ(s.frames[0].function, "leak_fn");
  EXPECT_EQ(s.frames[0].module, "leaky_demo");
  EXPECT_EQ(s.frames[1].address, 0x7f3a5c0271cau);
  EXPECT_EQ(s.frames[1].function, "");
  EXPECT_EQ(r->stacks[1].frames[0].function, "helper");
  EXPECT_EQ(r->stacks[1].frames[0].module, "");
}

TEST(ReportBccReader, CombinedOnlyLostStack) {
  auto r = read_bcc_text("[01:00:00] Top 3 stacks with outstanding allocations:\n"
                         "\t64 bytes in 2 allocations from stack\n"
                         "\t\tstack information lost\n",
                         1);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->stacks.size(), 1u);
  EXPECT_TRUE(r->stacks[0].truncated);
  EXPECT_TRUE(r->stacks[0].frames.empty());
}

// leakwatch's own text is BCC text too: it reads back with the same figures and frames.
TEST(ReportBccReader, ReadsLeakwatchText) {
  Report original = exact_report();
  TextOptions o;
  o.time_hhmmss = "12:00:00";
  o.show_allocs = true;
  auto r = read_bcc_text(write_bcc_text(original, o), 1);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->stacks.size(), original.stacks.size());
  for (size_t i = 0; i < original.stacks.size(); ++i) {
    const StackReport& a = original.stacks[i];
    const StackReport& b = r->stacks[i];
    EXPECT_EQ(b.bytes.estimate, a.bytes.estimate);
    EXPECT_EQ(b.count.estimate, a.count.estimate);
    ASSERT_EQ(b.frames.size(), a.frames.size());
    for (size_t k = 0; k < a.frames.size(); ++k) {
      EXPECT_EQ(b.frames[k].address, a.frames[k].address);
      EXPECT_EQ(b.frames[k].function, a.frames[k].function);
      EXPECT_EQ(b.frames[k].offset, a.frames[k].offset);
      EXPECT_EQ(b.frames[k].module, a.frames[k].module);
    }
  }
  EXPECT_EQ(r->lost.at("attach_failed"), 1u);
  EXPECT_NE(std::find(r->notes.begin(), r->notes.end(), original.notes[0]), r->notes.end());
}

TEST(ReportBccReader, Errors) {
  auto none = read_bcc_text("Attaching to pid 1, Ctrl+C to quit.\nnothing here\n", 1);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("Top N stacks"), std::string::npos);
  EXPECT_FALSE(read_bcc_text("[00:00:00] Top 1 stacks with outstanding allocations:\n", 0));
  auto empty = read_bcc_text("[00:00:00] Top 1 stacks with outstanding allocations:\n", 1);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->stacks.empty());
}

// Damaged lines are an error naming the first of them, never dropped with a report of what
// was left (a silent exit 0 on a truncated or edited file).
TEST(ReportBccReader, MalformedLinesAreErrorsNotDropped) {
  const std::string header = "[00:00:00] Top 3 stacks with outstanding allocations:\n";
  struct Case {
    std::string body;
    std::string expected;
  };
  const Case cases[] = {
      {"\tlots bytes in 5 allocations from stack\n\t\t0x1\tf [a]\n",
       "line 2: a stack's count line whose figures do not parse"},
      {"\t99999999999999999999999 bytes in 5 allocations from stack\n",
       "line 2: a stack's count line"},
      {"\t64 bytes in 2 allocations from stack\n\t\t0xZZZZ\tf [a]\n",
       "line 3: a frame whose address does not parse: \"0xZZZZ\tf [a]\""},
      {"64 bytes in 1 allocations from stack\n\t0 [<zz>] f [a]\n",
       "line 3: a frame whose address does not parse"},
      {"\taddr = xyz size = 16\n\t64 bytes in 2 allocations from stack\n",
       "line 2: an allocation line"},
      {"\t64 bytes in 2 allocations from stack\n\t\t0x1\tf [a]\n\tlost: stack_lost=many\n",
       "line 4: a loss counter"},
      {"Detaching...\n\t\t0x1\tf [a]\n\t\t0x2\tg [a]\n",
       "line 3: an indented line outside any stack: \"0x1\tf [a]\" and 1 more malformed lines"},
  };
  for (const Case& c : cases) {
    auto r = read_bcc_text(header + c.body, 1);
    ASSERT_FALSE(r) << c.body;
    EXPECT_NE(r.error().message.find(c.expected), std::string::npos)
        << c.body << " -> " << r.error().message;
    EXPECT_TRUE(r.error().message.starts_with("BCC text: ")) << r.error().message;
  }
  // Foreign unindented text ends a stack without being an error ("Detaching...").
  auto ok = read_bcc_text(header + "\t64 bytes in 2 allocations from stack\n\t\t0x1\tf [a]\n"
                                   "Detaching...\n",
                          1);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->stacks.size(), 1u);
}

}  // namespace
}  // namespace leakwatch::report
