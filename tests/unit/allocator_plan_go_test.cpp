// Go programs in the allocator planning (src/alloc/allocator_plan.cpp): Go code is never
// probed.  The executables here are fixtures marked as Go the way the Go toolchain marks
// its output (a .go.buildinfo section), so no Go compiler is needed; the end-to-end test
// (tests/e2e/field_hazards_test.cpp) traces real Go programs.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "alloc/allocator_plan.h"
#include "alloc/link_order.h"
#include "support/process.h"

namespace leakwatch::alloc {
namespace {

using testing::fixture;
using testing::run_argv;
using testing::temp_path;

// A copy of fixture `name` with a .go.buildinfo section added.
std::string as_go_program(const std::string& name) {
  const std::string section = temp_path("buildinfo");
  std::ofstream(section) << "\xff Go buildinf:";
  const std::string out = temp_path(name + "_go");
  auto r = run_argv({"objcopy", "--add-section", ".go.buildinfo=" + section, fixture(name), out});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return out;
}

TEST(AllocatorPlanGo, StaticGoProgramIsRefusedWithAClearMessage) {
  // Stripped and static: no malloc symbol, like a Go program without C code.
  const std::string exe = as_go_program("ml_stripped_static");
  LinkOrder order;
  order.objects.push_back({exe, exe, "executable"});
  order.static_executable = true;
  auto d = discover_in_order(order, "", false);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find(exe + " is a Go program"), std::string::npos) << d.error().message;
  EXPECT_NE(d.error().message.find("never probes Go code"), std::string::npos);
  EXPECT_EQ(d.error().message.find('\n'), std::string::npos);
}

TEST(AllocatorPlanGo, CgoProgramIsTracedInLibcWithAWarning) {
  const std::string exe = as_go_program("ml_short");
  auto order = command_link_order(exe, "", elf::LibrarySearch::FromEnvironment());
  ASSERT_TRUE(order) << order.error().message;
  auto d = discover_in_order(*order, "", false);
  ASSERT_TRUE(d) << d.error().message;
  bool libc_malloc = false;
  for (const auto& p : d->objects)
    for (const auto& s : p.sites)
      if (s.function == "malloc" && s.skipped_reason.empty() &&
          p.display_path.find("libc.so") != std::string::npos)
        libc_malloc = true;
  EXPECT_TRUE(libc_malloc);
  ASSERT_EQ(d->warnings.size(), 1u);
  EXPECT_NE(d->warnings[0].find("is a Go program: only the allocations of its C code (cgo) are "
                                "traced, in libc.so.6"),
            std::string::npos)
      << d->warnings[0];
}

TEST(AllocatorPlanGo, CAllocatorInsideAGoExecutableIsProbed) {
  // ml_static_alloc defines malloc & co. in the executable: C code, safe to probe.
  const std::string exe = as_go_program("ml_static_alloc");
  auto order = command_link_order(exe, "", elf::LibrarySearch::FromEnvironment());
  ASSERT_TRUE(order) << order.error().message;
  auto d = discover_in_order(*order, "", false);
  ASSERT_TRUE(d) << d.error().message;
  ASSERT_FALSE(d->objects.empty());
  bool exe_malloc = false;
  for (const auto& s : d->objects.front().sites)
    if (s.function == "malloc" && s.skipped_reason.empty()) exe_malloc = true;
  EXPECT_TRUE(exe_malloc) << d->objects.front().display_path;
}

TEST(AllocatorPlanGo, GoFunctionsOfTheExecutableAreNeverProbed) {
  // A Go-style name (with a dot) for the allocation API, as --symbols-prefix would ask for:
  // it names Go code, which is refused, and nothing else is left to probe.
  const std::string go = as_go_program("ml_short");
  const std::string exe = temp_path("ml_short_go_dot");
  auto r = run_argv({"objcopy", "--add-symbol", "x.malloc=.text:0x10,function,global", go, exe});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  LinkOrder order;
  order.objects.push_back({exe, exe, "executable"});
  order.static_executable = true;
  auto d = discover_in_order(order, "x.", false);
  ASSERT_FALSE(d) << "x.malloc was planned";
  EXPECT_NE(d.error().message.find("is a Go program"), std::string::npos) << d.error().message;
}

TEST(AllocatorPlanGo, ExplicitGoObjectIsRefused) {
  const std::string exe = as_go_program("ml_short");
  LinkOrder order;
  order.objects.push_back({exe, exe, "-O"});
  auto d = discover_in_order(order, "", true);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("-O " + exe + " is a Go program"), std::string::npos)
      << d.error().message;
}

}  // namespace
}  // namespace leakwatch::alloc
