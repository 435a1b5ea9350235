// The culprit frame of a stack and the finding of an investigation from its two reports.
#include <gtest/gtest.h>

#include "report/culprit.h"
#include "report/finding.h"

namespace leakwatch::report {
namespace {

Frame frame(std::string function, std::string module, std::string file = "", int line = 0) {
  Frame f;
  f.function = std::move(function);
  f.module = std::move(module);
  f.file = std::move(file);
  f.line = line;
  return f;
}

TEST(Culprit, QualifiedNameDropsReturnTypeTemplateArgumentsAndParameters) {
  EXPECT_EQ(qualified_name("malloc"), "malloc");
  EXPECT_EQ(qualified_name("operator new(unsigned long)"), "operator new");
  EXPECT_EQ(qualified_name("operator delete[](void*, unsigned long)"), "operator delete[]");
  EXPECT_EQ(qualified_name("void std::vector<int, std::allocator<int> >::_M_realloc_insert<int "
                           "const&>(__gnu_cxx::__normal_iterator<int*, std::vector<int, "
                           "std::allocator<int> > >, int const&)"),
            "std::vector<int, std::allocator<int> >::_M_realloc_insert");
  EXPECT_EQ(qualified_name("(anonymous namespace)::Cache::put(int)"),
            "(anonymous namespace)::Cache::put");
  EXPECT_EQ(qualified_name("main::{lambda()#1}::operator()() const"),
            "main::{lambda()#1}::operator()");
  EXPECT_EQ(qualified_name("bool operator<(Key const&, Key const&)"), "operator<");
  EXPECT_EQ(qualified_name("Sessions::open(std::string const&)"), "Sessions::open");
}

TEST(Culprit, RuntimeByObjectAndBySymbol) {
  for (const char* m : {"libc.so.6", "libc-2.31.so", "libstdc++.so.6", "ld-linux-x86-64.so.2",
                        "libjemalloc.so.2", "libtcmalloc_minimal.so.4", "libleakwatch-preload.so",
                        "libgcc_s.so.1", "[vdso]"})
    EXPECT_TRUE(is_runtime_object(m)) << m;
  for (const char* m : {"server", "libcurl.so.4", "libc-client.so.2007", "libmyapp.so", "libcrypto.so.3"})
    EXPECT_FALSE(is_runtime_object(m)) << m;
  for (const char* s : {"malloc", "operator new(unsigned long)", "_int_malloc", "sysmalloc",
                        "__default_morecore", "__brk", "std::__cxx11::basic_string<char, "
                        "std::char_traits<char>, std::allocator<char> >::_M_mutate(unsigned long, "
                        "unsigned long, char const*, unsigned long)",
                        "__gnu_cxx::new_allocator<int>::allocate(unsigned long, void const*)",
                        "je_malloc", "tcmalloc::ThreadCache::FetchFromCentralCache(unsigned int, int, void* (*)(unsigned long))",
                        "__memset_avx2_unaligned_erms"})
    EXPECT_TRUE(is_runtime_symbol(s)) << s;
  for (const char* s : {"Sessions::open(std::string const&)", "mallocate_buffers", "leak_many",
                        "main", "Cache::put(int)"})
    EXPECT_FALSE(is_runtime_symbol(s)) << s;
}

TEST(Culprit, IsTheInnermostFrameOutsideTheRuntimes) {
  // A node of an unordered_map allocated in the program, through inlined standard-library
  // code (program module, std:: symbols), operator new in libstdc++ and malloc in libc.
  std::vector<Frame> frames{
      frame("malloc", "libc.so.6"),
      frame("operator new(unsigned long)", "libstdc++.so.6"),
      frame("std::__detail::_Hashtable_alloc<std::allocator<std::__detail::_Hash_node<std::pair<"
            "int const, Session>, false> > >::_M_allocate_node<>()", "server"),
      frame("std::unordered_map<int, Session>::operator[](int const&)", "server"),
      frame("Sessions::open(int)", "server", "sessions.cpp", 42),
      frame("main", "server"),
  };
  auto i = culprit_index(frames);
  ASSERT_TRUE(i);
  EXPECT_EQ(frames[*i].function, "Sessions::open(int)");

  // An unsymbolized program frame is used only when no named one follows.
  std::vector<Frame> unnamed{frame("malloc", "libc.so.6"), frame("", "server")};
  ASSERT_TRUE(culprit_index(unnamed));
  EXPECT_EQ(*culprit_index(unnamed), 1u);
  // Nothing but runtime frames: no culprit.
  std::vector<Frame> runtime{frame("malloc", "libc.so.6"), frame("_dl_init", "ld-linux-x86-64.so.2")};
  EXPECT_FALSE(culprit_index(runtime));
}

TEST(Culprit, AProgramsOwnAllocationWrapperIsChargedToItsCaller) {
  for (const char* s : {"zmalloc_usable", "ztrymalloc_usable", "zmalloc", "zcalloc", "xmalloc",
                        "xstrdup", "emalloc", "_emalloc", "g_malloc0", "av_mallocz",
                        "PyMem_RawMalloc", "_PyObject_Malloc", "CRYPTO_zalloc",
                        "sqlite3MallocZero", "util::xrealloc(void*, unsigned long)"})
    EXPECT_TRUE(is_allocation_wrapper(s)) << s;
  for (const char* s : {"leaky_malloc", "malloc_leak", "calloc_many", "strdup_names", "do_alloc", "do_realloc", "allocate(int)", "mallocate_buffers",
                        "Cache::put(int)", "_sdsnewlen", "main"})
    EXPECT_FALSE(is_allocation_wrapper(s)) << s;

  // redis: zmalloc_usable in the program, called by the string library.
  std::vector<Frame> frames{frame("zmalloc_usable", "redis-server"), frame("_sdsnewlen", "redis-server"),
                            frame("createStringObject", "redis-server"), frame("main", "redis-server")};
  auto i = culprit_index(frames);
  ASSERT_TRUE(i);
  EXPECT_EQ(frames[*i].function, "_sdsnewlen");
  // A wrapper is still named when nothing named calls it.
  std::vector<Frame> alone{frame("malloc", "libc.so.6"), frame("xmalloc", "tool"), frame("", "tool")};
  ASSERT_TRUE(culprit_index(alone));
  EXPECT_EQ(*culprit_index(alone), 1u);
  // An application function that calls malloc itself is the culprit, whatever its name.
  std::vector<Frame> own{frame("malloc", "libc.so.6"), frame("leaky_malloc", "app"), frame("main", "app")};
  ASSERT_TRUE(culprit_index(own));
  EXPECT_EQ(*culprit_index(own), 1u);
}

StackReport stack(std::vector<Frame> frames, double bytes, double rate, Verdict v, double score) {
  StackReport s;
  s.frames = std::move(frames);
  s.bytes.estimate = bytes;
  s.growth_bytes_per_s = rate;
  s.verdict = v;
  s.score = score;
  s.reason = "slope";
  return s;
}

GrowthStack growth_stack(std::vector<Frame> frames, double bytes) {
  GrowthStack s;
  s.frames = std::move(frames);
  s.growth_bytes = bytes;
  return s;
}

FindingInputs inputs(const Report* alloc, const GrowthReport* growth) {
  FindingInputs in;
  in.allocations = alloc;
  in.growth = growth;
  return in;
}

const Frame kMalloc = frame("malloc", "libc.so.6");
const Frame kBrk = frame("__brk", "libc.so.6");
const Frame kSysmalloc = frame("sysmalloc", "libc.so.6");

TEST(Finding, TheAllocationTracesLeakWinsAndTheStepsAgree) {
  Report alloc;
  // A cache holds more bytes than the leak, but it is a cache.
  alloc.stacks.push_back(stack({kMalloc, frame("Cache::fill()", "svc")}, 32e6, 0, Verdict::kCache, 0.9));
  alloc.stacks.push_back(stack({kMalloc, frame("leak_block()", "svc", "svc.c", 12)}, 2e6, 655360,
                               Verdict::kLeak, 0.85));
  alloc.stacks.push_back(stack({kMalloc, frame("leak_block()", "svc", "svc.c", 12)}, 1e6, 1000,
                               Verdict::kLeak, 0.7));
  GrowthReport growth;
  growth.duration_s = 10;
  growth.stacks.push_back(growth_stack({kBrk, kSysmalloc, kMalloc, frame("leak_block()", "svc")}, 6e6));
  growth.stacks.push_back(growth_stack({frame("memset", "libc.so.6"), frame("warm()", "svc")}, 1e6));

  auto f = make_finding(inputs(&alloc, &growth));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->function, "leak_block()");
  EXPECT_EQ(f->module, "svc");
  EXPECT_EQ(f->file, "svc.c");
  EXPECT_EQ(f->line, 12);
  EXPECT_DOUBLE_EQ(f->bytes, 3e6);
  EXPECT_DOUBLE_EQ(f->bytes_per_s, 656360);
  EXPECT_EQ(f->verdict, Verdict::kLeak);
  EXPECT_DOUBLE_EQ(f->confidence, 0.85);
  EXPECT_EQ(f->seen_by, (std::vector<std::string>{"allocation trace", "growth step"}));
  EXPECT_EQ(f->agreement, "agree");
  EXPECT_EQ(f->alert_level, "high");  // 656 KB/s is 2.2 GB an hour
  EXPECT_NE(f->reason.find("86%"), std::string::npos) << f->reason;
  EXPECT_NE(describe_finding(*f).find("leak in leak_block() (svc) at svc.c:12"), std::string::npos)
      << describe_finding(*f);
}

TEST(Finding, GrowthAloneNamesTheFunctionWithHalfItsShareAsConfidence) {
  Report empty;  // the allocation trace sampled nothing, and its guard stopped it
  GrowthReport growth;
  growth.duration_s = 5;
  growth.stacks.push_back(growth_stack({kBrk, kSysmalloc, frame("_int_malloc", "libc.so.6"),
                                        kMalloc, frame("Handler::on_request()", "svc")}, 3e6));
  growth.stacks.push_back(growth_stack({kBrk, kSysmalloc, frame("__default_morecore", "libc.so.6")}, 1e6));
  FindingInputs in = inputs(&empty, &growth);
  in.allocations_stopped = "stopped by the overhead guard: 40% > 10%";
  auto f = make_finding(in);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->function, "Handler::on_request()");
  EXPECT_EQ(f->verdict, Verdict::kUnknown);
  EXPECT_DOUBLE_EQ(f->confidence, 0.5 * 3e6 / 4e6);
  EXPECT_EQ(f->seen_by, (std::vector<std::string>{"growth step"}));
  EXPECT_EQ(f->agreement, "");
  EXPECT_DOUBLE_EQ(f->bytes_per_s, 3e6 / 5);
  EXPECT_NE(f->reason.find("overhead guard"), std::string::npos) << f->reason;
  EXPECT_NE(f->reason.find("no outstanding allocations sampled"), std::string::npos) << f->reason;
}

TEST(Finding, DisagreementNamesBothFunctions) {
  Report alloc;
  alloc.stacks.push_back(stack({kMalloc, frame("a()", "svc")}, 1e6, 100, Verdict::kLeak, 0.6));
  GrowthReport growth;
  growth.duration_s = 1;
  growth.stacks.push_back(growth_stack({frame("b()", "svc")}, 5e6));
  auto f = make_finding(inputs(&alloc, &growth));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->function, "a()");
  EXPECT_EQ(f->agreement, "disagree");
  EXPECT_EQ(f->seen_by, (std::vector<std::string>{"allocation trace"}));
  EXPECT_NE(f->reason.find("b()"), std::string::npos) << f->reason;
}

TEST(Finding, NothingSeenIsNoFinding) {
  Report empty;
  GrowthReport growth;
  EXPECT_FALSE(make_finding(inputs(&empty, &growth)));
  EXPECT_FALSE(make_finding(FindingInputs{}));
}

TEST(Finding, AlertLevels) {
  EXPECT_EQ(alert_level(Verdict::kLeak, 200 * 1048576.0, 0), "high");
  EXPECT_EQ(alert_level(Verdict::kLeak, 1e6, 100 * 1048576.0 / 3600 + 1), "high");
  EXPECT_EQ(alert_level(Verdict::kLeak, 1e5, 1), "medium");
  EXPECT_EQ(alert_level(Verdict::kUnknown, 20 * 1048576.0, 0), "medium");
  EXPECT_EQ(alert_level(Verdict::kUnknown, 1e5, 1), "low");
  EXPECT_EQ(alert_level(Verdict::kCache, 50 * 1048576.0, 1e6), "low");
  EXPECT_EQ(alert_level(Verdict::kCache, 150 * 1048576.0, 0), "medium");
}

}  // namespace
}  // namespace leakwatch::report
