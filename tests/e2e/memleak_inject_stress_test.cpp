// Stress: inject-and-trace cycles against busy multi-threaded programs.  Each cycle
//   1. injects the library into a fresh 8-thread inj_target working at full speed (the whole
//      ptrace path: stop, safe point, stub, restore), which must then carry on intact;
//   2. traces the long-lived 16-thread target with `memleak -p --inject` (the first cycle
//      injects, the others find the library and reuse it) while it leaks 3 blocks of a size
//      unique to the cycle: exactly those must be reported, with no loss.
// The long-lived target checks its own data at the end.  `make test` runs a short slice;
// `make stress-inject` runs LEAKWATCH_STRESS_CYCLES=200.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "inject/injector.h"
#include "alloc/preload_plan.h"
#include "support/inject_run.h"
#include "support/memleak_run.h"

namespace leakwatch::testing {
namespace {

class MemleakInjectStress : public BpfTest {};

int cycles() {
  const char* env = std::getenv("LEAKWATCH_STRESS_CYCLES");
  return env && *env ? std::atoi(env) : 3;
}

TEST_F(MemleakInjectStress, InjectAndTraceCycles) {
  const std::string library =
      (std::filesystem::path(leakwatch()).parent_path() / LEAKWATCH_PRELOAD_LIBRARY).string();
  Proc busy({fixture("inj_target"), "16"});
  ASSERT_TRUE(busy.wait_for("ready"));
  const int n = cycles();
  for (int i = 0; i < n; ++i) {
    SCOPED_TRACE(fmt::format("cycle {} of {}", i + 1, n));
    {
      Proc fresh({fixture("inj_target"), "8"});
      ASSERT_TRUE(fresh.wait_for("ready"));
      inject::InjectOptions o;
      o.library = library;
      o.sample_bytes = (i % 2) ? 1 : 65536;
      auto out = inject::inject_library(fresh.pid(), o);
      ASSERT_TRUE(out) << out.error().message;
      auto loaded = alloc::find_loaded_preload(fresh.pid());
      ASSERT_TRUE(loaded && *loaded) << "the library did not start sampling";
      EXPECT_TRUE((*loaded)->active());
      EXPECT_TRUE((*loaded)->stats.flags & LW_PRELOAD_F_INJECTED);
      fresh.write("leak 5 100\n");
      ASSERT_TRUE(fresh.wait_for("leaked 5"));
      expect_target_intact(fresh);
    }
    const size_t size = 1000 + static_cast<size_t>(i);
    auto run = inject_and_trace(busy, {}, [&] {
      busy.write(fmt::format("leak 3 {}\n", size));
      ASSERT_TRUE(busy.wait_for("leaked 3"));
      busy.write("check\n");
      ASSERT_TRUE(busy.wait_for("ok ")) << "the busy program's own check failed";
    });
    ASSERT_TRUE(run.parsed) << run.err;
    expect_exact_leak(run.report, "inj_leak", 3, static_cast<double>(size));
    for (const auto& [name, value] : run.report.lost) EXPECT_EQ(value, 0u) << name;
    if (::testing::Test::HasFailure()) break;
  }
  expect_target_intact(busy);
}

}  // namespace
}  // namespace leakwatch::testing
