// Allocator discovery on real objects: Debian's libjemalloc2, libtcmalloc-minimal4,
// libmimalloc2.0, glibc, and the fixture executables (static allocator, static glibc,
// stripped static, je_-prefixed API).  No privileges needed: only files are read.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include "alloc/allocator_catalog.h"
#include "alloc/allocator_plan.h"
#include "elf/elf_dynamic.h"
#include "elf/elf_symbols.h"
#include "alloc/link_order.h"
#include "support/process.h"

namespace leakwatch::alloc {
namespace {

using namespace leakwatch::elf;

const std::string kLibDir = "/usr/lib/x86_64-linux-gnu/";
const std::string kJemalloc = kLibDir + "libjemalloc.so.2";
const std::string kTcmalloc = kLibDir + "libtcmalloc_minimal.so.4";
const std::string kMimalloc = kLibDir + "libmimalloc.so.2";

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

std::string base(const std::string& p) { return p.substr(p.rfind('/') + 1); }

// The search order a command would get (as -c predicts it).
LinkOrder order_for(const std::string& exe, const std::string& preload = "") {
  auto o = command_link_order(exe, preload, LibrarySearch::FromEnvironment());
  EXPECT_TRUE(o.has_value()) << (o ? "" : o.error().message);
  return o ? *o : LinkOrder{};
}

const ObjectPlan* plan_named(const AllocatorDiscovery& d, const std::string& basename_prefix) {
  for (const auto& p : d.objects)
    if (base(p.display_path).rfind(basename_prefix, 0) == 0) return &p;
  return nullptr;
}

const ProbeSite* site(const ObjectPlan* p, const std::string& fn) {
  if (!p) return nullptr;
  for (const auto& s : p->sites)
    if (s.function == fn) return &s;
  return nullptr;
}

bool probed(const ObjectPlan* p, const std::string& fn) {
  const ProbeSite* s = site(p, fn);
  return s && s->skipped_reason.empty();
}

std::string all_text(const AllocatorDiscovery& d) {
  std::string s;
  for (const auto& l : d.explanation) s += l + "\n";
  return s;
}

TEST(ElfDynamic, ReadsNeededInterpAndTheSystemCache) {
  auto info = read_dynamic_info(testing::fixture("ml_alloc_jemalloc"));
  ASSERT_TRUE(info.has_value()) << info.error().message;
  EXPECT_TRUE(info->has_interp);
  ASSERT_FALSE(info->needed.empty());
  EXPECT_EQ(info->needed[0], "libjemalloc.so.2");

  auto st = read_dynamic_info(testing::fixture("ml_static"));
  ASSERT_TRUE(st.has_value());
  EXPECT_FALSE(st->has_interp);
  EXPECT_TRUE(st->needed.empty());

  std::ifstream in("/etc/ld.so.cache", std::ios::binary);
  std::vector<uint8_t> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto cache = parse_ld_so_cache(buf);
  ASSERT_TRUE(cache.count("libc.so.6")) << cache.size() << " entries";
  EXPECT_TRUE(exists(cache["libc.so.6"]));
  EXPECT_TRUE(parse_ld_so_cache(std::span<const uint8_t>()).empty());
}

TEST(LinkOrder, CommandOrderPutsPreloadThenNeededBreadthFirst) {
  auto linked = order_for(testing::fixture("ml_alloc_jemalloc"));
  ASSERT_GE(linked.objects.size(), 4u);
  EXPECT_EQ(base(linked.objects[0].path), "ml_alloc_jemalloc");
  EXPECT_EQ(base(linked.objects[1].path), "libjemalloc.so.2");
  EXPECT_EQ(linked.objects[1].why, "DT_NEEDED of ml_alloc_jemalloc");

  auto pre = order_for(testing::fixture("ml_alloc"), kTcmalloc);
  ASSERT_GE(pre.objects.size(), 3u);
  EXPECT_EQ(pre.objects[1].path, kTcmalloc);
  EXPECT_EQ(pre.objects[1].why, "LD_PRELOAD");
  // libc comes after both the executable's own and the preload's needs are queued.
  auto libc = std::find_if(pre.objects.begin(), pre.objects.end(),
                           [](const LinkedObject& o) { return base(o.path) == "libc.so.6"; });
  ASSERT_NE(libc, pre.objects.end());

  auto st = order_for(testing::fixture("ml_static"));
  EXPECT_TRUE(st.static_executable);
  EXPECT_EQ(st.objects.size(), 1u);
}

TEST(LinkOrder, RunningProcessOrderComesFromItsLinkMap) {
  auto names = read_link_map(::getpid());
  ASSERT_TRUE(names.has_value()) << names.error().message;
  ASSERT_GE(names->size(), 3u);
  EXPECT_EQ((*names)[0], "");  // the executable
  auto order = process_link_order(::getpid());
  ASSERT_TRUE(order.has_value()) << order.error().message;
  EXPECT_NE(order->method.find("link map"), std::string::npos) << order->method;
  EXPECT_EQ(order->objects[0].why, "executable");
  bool libc = std::any_of(order->objects.begin(), order->objects.end(),
                          [](const LinkedObject& o) { return base(o.path) == "libc.so.6"; });
  EXPECT_TRUE(libc);
}

TEST(AllocatorPlan, JemallocFirstInOrderServesMallocAndOperatorNew) {
  auto d = discover_in_order(order_for(testing::fixture("ml_alloc"), kJemalloc), "", false);
  ASSERT_TRUE(d.has_value()) << d.error().message;
  const ObjectPlan* je = plan_named(*d, "libjemalloc");
  const ObjectPlan* libc = plan_named(*d, "libc.so");
  ASSERT_NE(je, nullptr) << all_text(*d);
  ASSERT_NE(libc, nullptr) << all_text(*d);
  EXPECT_EQ(je->allocator, "jemalloc");
  EXPECT_TRUE(je->defines_malloc);
  for (const char* fn : {"malloc", "calloc", "realloc", "free", "posix_memalign", "_Znwm", "_ZdlPvm"})
    EXPECT_TRUE(probed(je, fn)) << fn << "\n" << all_text(*d);
  // jemalloc's own API, with the argument layouts of existing kinds.
  ASSERT_TRUE(probed(je, "mallocx"));
  EXPECT_EQ(site(je, "mallocx")->kind, LW_FN_MALLOC);
  EXPECT_EQ(site(je, "rallocx")->kind, LW_FN_REALLOC);
  EXPECT_EQ(site(je, "dallocx")->kind, LW_FN_FREE);
  EXPECT_EQ(site(je, "sdallocx")->kind, LW_FN_FREE);
  // xallocx fits no kind: listed, not probed, with the reason.
  ASSERT_NE(site(je, "xallocx"), nullptr);
  EXPECT_NE(site(je, "xallocx")->skipped_reason.find("resize in place"), std::string::npos);
  // operator delete only jumps to free@plt, which binds to jemalloc's (probed) free.
  ASSERT_NE(site(je, "_ZdlPv"), nullptr);
  EXPECT_NE(site(je, "_ZdlPv")->skipped_reason.find("free@plt"), std::string::npos);
  // glibc's copies are never called; what jemalloc lacks still binds to glibc.
  EXPECT_EQ(site(libc, "malloc"), nullptr);
  EXPECT_EQ(site(libc, "free"), nullptr);
  EXPECT_TRUE(probed(libc, "reallocarray"));
  EXPECT_TRUE(probed(libc, "mmap"));
  EXPECT_EQ(plan_named(*d, "libstdc++"), nullptr) << "libstdc++'s operator new is not bound";
  auto in_use = std::find_if(d->allocators.begin(), d->allocators.end(),
                             [](const FoundAllocator& a) { return a.family == "jemalloc"; });
  ASSERT_NE(in_use, d->allocators.end());
  EXPECT_TRUE(in_use->in_use);
  EXPECT_NE(all_text(*d).find("allocator jemalloc in libjemalloc.so.2 (mallctl): IN USE"), std::string::npos)
      << all_text(*d);
}

TEST(AllocatorPlan, LibstdcxxOperatorNewIsLeftToMalloc) {
  // libstdc++'s operator new is a loop around malloc@plt and the new-handler: probing it
  // would add three traps to each new (its entry and return, malloc's nested entry).  Every
  // form is left to the allocation function it ends in; its caller is recovered at malloc's
  // return (memleak.bpf.c, frameless_callers).
  auto d = discover_in_order(order_for(testing::fixture("ml_cxx")), "", false);
  ASSERT_TRUE(d.has_value()) << d.error().message;
  const ObjectPlan* cxx = plan_named(*d, "libstdc++");
  const ObjectPlan* libc = plan_named(*d, "libc.so");
  ASSERT_NE(cxx, nullptr) << all_text(*d);
  ASSERT_NE(libc, nullptr) << all_text(*d);
  for (const char* fn : {"_Znwm", "_ZnwmRKSt9nothrow_t", "_ZnwmSt11align_val_t"}) {
    ASSERT_NE(site(cxx, fn), nullptr) << fn << "\n" << all_text(*d);
    EXPECT_EQ(site(cxx, fn)->skipped_reason.rfind("wraps ", 0), 0u) << fn << "\n" << all_text(*d);
  }
  EXPECT_NE(site(cxx, "_Znwm")->skipped_reason.find("malloc@plt"), std::string::npos);
  EXPECT_NE(site(cxx, "_ZnwmSt11align_val_t")->skipped_reason.find("aligned_alloc@plt"), std::string::npos);
  EXPECT_NE(site(cxx, "_ZnwmRKSt9nothrow_t")->skipped_reason.find("_Znwm@plt"), std::string::npos);
  for (const auto& s : cxx->sites) {
    if (s.kind != LW_FN_NEW) continue;
    EXPECT_FALSE(s.skipped_reason.empty()) << s.function << "\n" << all_text(*d);
  }
  EXPECT_TRUE(probed(libc, "malloc"));
  EXPECT_TRUE(probed(libc, "aligned_alloc"));
}

TEST(AllocatorPlan, TcmallocAliasesProbedOnceUnderTheStandardName) {
  auto d = discover_in_order(order_for(testing::fixture("ml_alloc_tcmalloc")), "", false);
  ASSERT_TRUE(d.has_value()) << d.error().message;
  const ObjectPlan* tc = plan_named(*d, "libtcmalloc_minimal");
  ASSERT_NE(tc, nullptr) << all_text(*d);
  EXPECT_EQ(tc->allocator, "tcmalloc");
  EXPECT_TRUE(probed(tc, "malloc"));
  ASSERT_NE(site(tc, "tc_malloc"), nullptr);
  EXPECT_NE(site(tc, "tc_malloc")->skipped_reason.find("alias of malloc"), std::string::npos);
  EXPECT_TRUE(probed(tc, "_Znwm"));
  // tcmalloc (full and minimal) defines mmap itself: the program's mmap binds there.
  EXPECT_TRUE(probed(tc, "mmap"));
  const ObjectPlan* libc = plan_named(*d, "libc.so");
  EXPECT_EQ(site(libc, "mmap"), nullptr);
}

TEST(AllocatorPlan, MimallocPreloaded) {
  if (!exists(kMimalloc)) GTEST_SKIP() << "libmimalloc2.0 not installed";
  auto d = discover_in_order(order_for(testing::fixture("ml_alloc"), kMimalloc), "", false);
  ASSERT_TRUE(d.has_value()) << d.error().message;
  const ObjectPlan* mi = plan_named(*d, "libmimalloc");
  ASSERT_NE(mi, nullptr) << all_text(*d);
  EXPECT_EQ(mi->allocator, "mimalloc");
  for (const char* fn : {"malloc", "calloc", "realloc", "free", "_Znwm"})
    EXPECT_TRUE(probed(mi, fn)) << fn << "\n" << all_text(*d);
  EXPECT_NE(site(mi, "mi_malloc")->skipped_reason.find("alias of malloc"), std::string::npos);
}

TEST(AllocatorPlan, AllocatorDefinedInTheExecutable) {
  auto d = discover_in_order(order_for(testing::fixture("ml_static_alloc")), "", false);
  ASSERT_TRUE(d.has_value()) << d.error().message;
  const ObjectPlan* exe = plan_named(*d, "ml_static_alloc");
  ASSERT_NE(exe, nullptr);
  for (const char* fn : {"malloc", "calloc", "realloc", "free"}) EXPECT_TRUE(probed(exe, fn)) << fn;
  EXPECT_FALSE(exe->defines_malloc) << "the executable's own mmap calls are the program's";
  EXPECT_EQ(site(plan_named(*d, "libc.so"), "malloc"), nullptr);
  EXPECT_NE(all_text(*d).find("allocator custom in ml_static_alloc"), std::string::npos) << all_text(*d);
}

TEST(AllocatorPlan, StaticGlibcFoundThroughSymtab) {
  auto d = discover_in_order(order_for(testing::fixture("ml_static")), "", false);
  ASSERT_TRUE(d.has_value()) << d.error().message;
  ASSERT_EQ(d->objects.size(), 1u);
  EXPECT_TRUE(probed(&d->objects[0], "malloc"));
  EXPECT_TRUE(probed(&d->objects[0], "free"));
  EXPECT_EQ(d->objects[0].allocator, "glibc");
}

TEST(AllocatorPlan, StrippedStaticExecutableIsAPlainError) {
  auto d = discover_in_order(order_for(testing::fixture("ml_stripped_static")), "", false);
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message.find("statically linked and has no symbol for malloc"), std::string::npos)
      << d.error().message;
}

TEST(AllocatorPlan, PrefixedApiFoundNextToTheStandardOne) {
  auto d = discover_in_order(order_for(testing::fixture("ml_prefixed")), "", false);
  ASSERT_TRUE(d.has_value()) << d.error().message;
  const ObjectPlan* exe = plan_named(*d, "ml_prefixed");
  const ObjectPlan* libc = plan_named(*d, "libc.so");
  for (const char* fn : {"je_malloc", "je_calloc", "je_realloc", "je_free"}) EXPECT_TRUE(probed(exe, fn)) << fn;
  EXPECT_TRUE(probed(libc, "malloc"));
  EXPECT_NE(all_text(*d).find("IN USE through its je_-prefixed API"), std::string::npos) << all_text(*d);

  // --symbols-prefix je_ overrides: the prefixed API only (mmap and C++ still bound).
  auto only = discover_in_order(order_for(testing::fixture("ml_prefixed")), "je_", false);
  ASSERT_TRUE(only.has_value()) << only.error().message;
  EXPECT_TRUE(probed(plan_named(*only, "ml_prefixed"), "je_malloc"));
  EXPECT_EQ(site(plan_named(*only, "libc.so"), "malloc"), nullptr);
  EXPECT_TRUE(probed(plan_named(*only, "libc.so"), "mmap"));

  auto missing = discover_in_order(order_for(testing::fixture("ml_alloc")), "zz_", false);
  EXPECT_FALSE(missing.has_value());
}

TEST(AllocatorPlan, ExplicitObjectTakesEveryKnownFunction) {
  PlanRequest req;
  req.objects = {kJemalloc};
  auto d = discover_allocators(req);
  ASSERT_TRUE(d.has_value()) << d.error().message;
  ASSERT_EQ(d->objects.size(), 1u);
  EXPECT_TRUE(probed(&d->objects[0], "malloc"));
  EXPECT_TRUE(probed(&d->objects[0], "sdallocx"));
  req.objects = {"/nonexistent/libfoo.so"};
  EXPECT_FALSE(discover_allocators(req).has_value());
}

TEST(AllocatorPlan, NoProcessYetPlansThisHostsRuntime) {
  // An empty cgroup: nothing to read a link map from yet.
  auto d = discover_allocators(PlanRequest{});
  ASSERT_TRUE(d.has_value()) << d.error().message;
  const ObjectPlan* libc = plan_named(*d, "libc.so");
  ASSERT_NE(libc, nullptr) << all_text(*d);
  EXPECT_TRUE(probed(libc, "malloc"));
  EXPECT_NE(all_text(*d).find("no target process yet"), std::string::npos) << all_text(*d);
}

TEST(AllocatorPlan, CommandThroughEnvIsWarnedAbout) {
  PlanRequest req;
  req.command_path = "/usr/bin/env";
  auto d = discover_allocators(req);
  ASSERT_TRUE(d.has_value()) << d.error().message;
  ASSERT_EQ(d->warnings.size(), 1u);
  EXPECT_NE(d->warnings[0].find("export LD_PRELOAD before running leakwatch"), std::string::npos);
  req.command_path = testing::fixture("ml_alloc");
  auto plain = discover_allocators(req);
  ASSERT_TRUE(plain.has_value());
  EXPECT_TRUE(plain->warnings.empty());
}

TEST(AllocatorCatalog, KindsAndIdentity) {
  EXPECT_EQ(allocator_function_kind("rallocx"), LW_FN_REALLOC);
  EXPECT_EQ(allocator_function_kind("sdallocx"), LW_FN_FREE);
  EXPECT_EQ(allocator_function_kind("tc_memalign"), LW_FN_ALIGNED_ALLOC);
  EXPECT_EQ(allocator_function_kind("mi_reallocn"), LW_FN_REALLOCARRAY);
  EXPECT_EQ(allocator_function_kind("_ZnamSt11align_val_t"), LW_FN_NEW);
  EXPECT_EQ(allocator_function_kind("strdup"), LW_FN_NONE);
  auto je = ElfObject::Open(kJemalloc);
  ASSERT_TRUE(je.has_value());
  EXPECT_EQ(identify_allocator(*je, kJemalloc, false).family, "jemalloc");
  EXPECT_EQ(jemalloc_prefixes(*je, false), std::vector<std::string>{""});
  auto exe = ElfObject::Open(testing::fixture("ml_prefixed"));
  ASSERT_TRUE(exe.has_value());
  EXPECT_EQ(jemalloc_prefixes(*exe, true), std::vector<std::string>{"je_"});
  EXPECT_TRUE(jemalloc_prefixes(*exe, false).empty()) << "not exported: only the executable sees them";
  if (exists("/lib/x86_64-linux-musl/libc.so")) {
    auto musl = ElfObject::Open("/lib/x86_64-linux-musl/libc.so");
    ASSERT_TRUE(musl.has_value());
    EXPECT_EQ(identify_allocator(*musl, "/lib/x86_64-linux-musl/libc.so", false).family, "musl");
  }
}

}  // namespace
}  // namespace leakwatch::alloc
