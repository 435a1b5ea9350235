// DwarfUnwinder on real snapshots.  The fixtures uw_chain_nofp, uw_cxx_nofp and
// uw_dbgframe_nofp (built -O2 -fomit-frame-pointer) capture their own stacks exactly as the
// BPF return probe of an allocator would (tests/fixtures/uw_capture.h) and stay alive, so
// the unwinder reads their maps; frames are named with the ProcessSymbolizer.  Saved
// snapshots without a live process: unwind_saved_test.cpp.
#include <fcntl.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/atomic_file.h"
#include "common/fd.h"
#include "support/process.h"
#include "common/procfs.h"
#include "symbolize/symbolizer.h"
#include "unwind/snapshot_file.h"
#include "unwind/unwinder.h"
#include "unwind_testing.h"

namespace leakwatch::unwind {
namespace {

namespace fs = std::filesystem;

// A fixture run: its snapshots in a fresh directory, the process alive until the end.
class FixtureRun {
 public:
  explicit FixtureRun(const std::string& name)
      : dir_(make_dir(name)), proc_({leakwatch::testing::fixture(name), dir_}) {
    ready_ = proc_.wait_for("ready").has_value();
  }
  ~FixtureRun() {
    proc_.close_stdin();
    proc_.wait();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  bool ready() const { return ready_; }
  int pid() const { return proc_.pid(); }
  const std::string& dir() const { return dir_; }
  void kill() {
    proc_.signal(SIGKILL);
    proc_.wait();
  }
  std::unique_ptr<lw_stack_snapshot> snapshot(const std::string& name) const {
    auto s = read_snapshot_file(dir_ + "/" + name + ".snap");
    EXPECT_TRUE(s.has_value()) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }

 private:
  static std::string make_dir(const std::string& name) {
    std::string dir = leakwatch::testing::temp_path(name);
    fs::create_directories(dir);
    return dir;
  }
  std::string dir_;
  leakwatch::testing::Proc proc_;
  bool ready_ = false;
};

std::unique_ptr<symbolize::ProcessSymbolizer> symbolizer_for(int pid) {
  symbolize::SymbolizerOptions options;
  options.source_lines = false;  // names only: skips decompressing libc's DWARF
  auto sym = symbolize::ProcessSymbolizer::Create(pid, options);
  EXPECT_TRUE(sym.has_value()) << sym.error().message;
  return sym ? std::move(*sym) : nullptr;
}

struct Named {
  std::vector<std::string> functions, modules;
};

// Function names of the frames.  frames[0] is a return address too in these snapshots
// (return probe), so every frame is named at address - 1: inside the call instruction.
Named names_of(symbolize::ProcessSymbolizer& sym, const UnwoundStack& st) {
  Named out;
  for (uint64_t a : st.frames) {
    symbolize::Symbol s = sym.symbolize(a - 1);
    out.functions.push_back(s.function);
    out.modules.push_back(s.module);
  }
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " <- ") + x;
  return s;
}

size_t index_of(const std::vector<std::string>& v, const std::string& name) {
  return static_cast<size_t>(std::find(v.begin(), v.end(), name) - v.begin());
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// Unwinds snapshot `name` of a live fixture and names its frames.
struct LiveStack {
  UnwoundStack stack;
  Named named;
};
LiveStack unwind_live(const FixtureRun& run, const std::string& name,
                      const UnwindOptions& options = {}) {
  LiveStack out;
  auto snap = run.snapshot(name);
  if (snap == nullptr) return out;
  auto unwinder = DwarfUnwinder::Create(run.pid(), options);
  EXPECT_TRUE(unwinder.has_value()) << unwinder.error().message;
  if (!unwinder) return out;
  auto st = (*unwinder)->unwind(*snap);
  EXPECT_TRUE(st.has_value()) << st.error().message;
  if (!st) return out;
  out.stack = *st;
  auto sym = symbolizer_for(run.pid());
  if (sym != nullptr) out.named = names_of(*sym, out.stack);
  return out;
}

// The bottom of every main-thread stack on glibc 2.34+:
//   main <- __libc_start_call_main <- __libc_start_main <- _start (CFI: rip undefined).
void expect_complete_from(const UnwoundStack& st, const Named& n, const std::string& caller,
                          size_t expected_caller_index) {
  const auto& f = n.functions;
  EXPECT_FALSE(st.truncated) << st.reason << "\n" << joined(f);
  EXPECT_EQ(st.truncation, Truncation::kNone);
  EXPECT_EQ(st.reason, "");
  ASSERT_GT(f.size(), expected_caller_index + 1) << joined(f);
  EXPECT_EQ(f[expected_caller_index], caller) << joined(f);
  EXPECT_EQ(f[expected_caller_index + 1], "main") << joined(f);
  ASSERT_EQ(f.size(), expected_caller_index + 5) << joined(f);
  EXPECT_EQ(f[expected_caller_index + 2], "__libc_start_call_main");
  EXPECT_EQ(n.modules[expected_caller_index + 2], "libc.so.6");
  EXPECT_EQ(f.back(), "_start");
}

TEST(Unwind, TenDeepChainWithoutFramePointersDownToMain) {
  FixtureRun run("uw_chain_nofp");
  ASSERT_TRUE(run.ready());
  LiveStack live = unwind_live(run, "chain");
  const auto& f = live.named.functions;
  const std::vector<std::string> chain = {"f10", "f9", "f8", "f7", "f6",
                                          "f5",  "f4", "f3", "f2", "f1"};
  ASSERT_GE(f.size(), chain.size()) << joined(f) << "\n" << live.stack.reason;
  EXPECT_EQ(std::vector<std::string>(f.begin(), f.begin() + chain.size()), chain) << joined(f);
  expect_complete_from(live.stack, live.named, "f1", 9);
  EXPECT_EQ(live.stack.frame_pointer_frames, 0u);
  EXPECT_GT(live.stack.stack_bytes_used, 600u);  // f3's frame alone has 600 bytes
}

TEST(Unwind, ThroughQsortInLibcToTheCallbacksCaller) {
  FixtureRun run("uw_chain_nofp");
  ASSERT_TRUE(run.ready());
  LiveStack live = unwind_live(run, "qsort");
  const auto& f = live.named.functions;
  ASSERT_GE(f.size(), 3u) << joined(f);
  EXPECT_EQ(f[0], "compare_ints");
  EXPECT_EQ(live.named.modules[0], "uw_chain_nofp");
  // Between the callback and sort_stage: glibc's merge sort (no frame pointers), qsort_r.
  size_t caller = index_of(f, "sort_stage");
  ASSERT_LT(caller, f.size()) << joined(f);
  ASSERT_GE(caller, 2u) << joined(f);
  for (size_t i = 1; i < caller; ++i) EXPECT_EQ(live.named.modules[i], "libc.so.6") << f[i];
  EXPECT_EQ(f[caller - 1], "qsort_r") << joined(f);
  expect_complete_from(live.stack, live.named, "sort_stage", caller);
}

TEST(Unwind, StrdupNamesTheApplicationFunctionThatCalledIt) {
  FixtureRun run("uw_chain_nofp");
  ASSERT_TRUE(run.ready());
  // The snapshot of malloc's return probe: ip is inside strdup (libc, no frame pointer).
  LiveStack live = unwind_live(run, "strdup");
  const auto& f = live.named.functions;
  ASSERT_GE(f.size(), 2u) << joined(f);
  EXPECT_TRUE(f[0] == "strdup" || f[0] == "__strdup") << f[0];
  EXPECT_EQ(live.named.modules[0], "libc.so.6");
  expect_complete_from(live.stack, live.named, "dup_stage", 1);
}

TEST(Unwind, ThreadStackEndsInCloneCompletely) {
  FixtureRun run("uw_chain_nofp");
  ASSERT_TRUE(run.ready());
  LiveStack live = unwind_live(run, "thread");
  const auto& f = live.named.functions;
  EXPECT_FALSE(live.stack.truncated) << live.stack.reason << "\n" << joined(f);
  // thread_leaf <- thread_main <- start_thread <- clone3 (CFI: rip undefined)
  ASSERT_EQ(f.size(), 4u) << joined(f);
  EXPECT_EQ(f[0], "thread_leaf");
  EXPECT_EQ(f[1], "thread_main");
  EXPECT_EQ(live.named.modules[2], "libc.so.6");
  EXPECT_EQ(live.named.modules[3], "libc.so.6");
  EXPECT_EQ(f[3], "__clone3") << joined(f);
}

TEST(Unwind, ThroughLibstdcxxOperatorNewAndStreams) {
  FixtureRun run("uw_cxx_nofp");
  ASSERT_TRUE(run.ready());
  {
    LiveStack live = unwind_live(run, "string");
    const auto& f = live.named.functions;
    ASSERT_GE(f.size(), 4u) << joined(f);
    EXPECT_EQ(f[0], "operator new(unsigned long)");
    EXPECT_TRUE(starts_with(live.named.modules[0], "libstdc++.so")) << live.named.modules[0];
    size_t describe = 0;
    while (describe < f.size() && !starts_with(f[describe], "shop::Basket::describe")) ++describe;
    ASSERT_LT(describe + 1, f.size()) << joined(f);
    EXPECT_TRUE(starts_with(f[describe + 1], "shop::build_report")) << joined(f);
    EXPECT_FALSE(live.stack.truncated) << live.stack.reason;
    EXPECT_EQ(f.size(), describe + 6) << joined(f);
    EXPECT_EQ(f[describe + 2], "main");
  }
  {
    // ostringstream growth: several libstdc++ frames (stringbuf, streambuf, inserter).
    LiveStack live = unwind_live(run, "stream");
    const auto& f = live.named.functions;
    size_t app = 0;
    while (app < f.size() && !starts_with(f[app], "shop::format_total")) ++app;
    ASSERT_LT(app + 1, f.size()) << joined(f);
    EXPECT_GE(app, 4u) << joined(f);
    for (size_t i = 0; i < app; ++i) {
      EXPECT_TRUE(starts_with(live.named.modules[i], "libstdc++.so")) << f[i];
    }
    EXPECT_EQ(f[0], "operator new(unsigned long)");
    EXPECT_EQ(f[app + 1], "main");
    EXPECT_FALSE(live.stack.truncated) << live.stack.reason;
    EXPECT_EQ(f.back(), "_start");
  }
}

TEST(Unwind, DebugFrameWhenEhFrameHasNoEntry) {
  // uw_dbgframe_nofp's own functions have CFI only in .debug_frame.
  const std::string binary = leakwatch::testing::fixture("uw_dbgframe_nofp");
  ElfSymbols syms(binary);
  const uint64_t g3 = syms.address_of("g3");
  ASSERT_NE(g3, 0u);
  for (bool use_debug_frame : {true, false}) {
    auto obj = ObjectCfi::Open(UniqueFd(::open(binary.c_str(), O_RDONLY | O_CLOEXEC)), binary, "",
                               use_debug_frame);
    ASSERT_TRUE(obj.has_value()) << obj.error().message;
    EXPECT_TRUE((*obj)->has_eh_frame());  // crt's _start has one
    std::string error;
    const UnwindRow* row = (*obj)->row_for(g3 + 1, &error);
    if (use_debug_frame) {
      ASSERT_NE(row, nullptr) << error;
      EXPECT_EQ((*obj)->stats().rows_from_debug_frame, 1u);
      EXPECT_EQ((*obj)->stats().rows_from_eh_frame, 0u);
      EXPECT_LE(row->start, g3 + 1);
      EXPECT_GT(row->end, g3 + 1);
    } else {
      EXPECT_EQ(row, nullptr);
      EXPECT_NE(error.find("no CFI"), std::string::npos) << error;
    }
  }

  FixtureRun run("uw_dbgframe_nofp");
  ASSERT_TRUE(run.ready());
  LiveStack live = unwind_live(run, "dbgframe");
  const auto& f = live.named.functions;
  ASSERT_GE(f.size(), 3u) << joined(f);
  EXPECT_EQ(f[0], "g3");
  EXPECT_EQ(f[1], "g2");
  expect_complete_from(live.stack, live.named, "g1", 2);
}

TEST(Unwind, FramePointerFallbackOnlyWhereCfiIsMissing) {
  FixtureRun run("uw_chain_nofp");
  ASSERT_TRUE(run.ready());
  // uw_nocfi_call (assembly without CFI, with a frame pointer) sits between the callback
  // and nocfi_stage.
  LiveStack live = unwind_live(run, "nocfi");
  const auto& f = live.named.functions;
  ASSERT_GE(f.size(), 2u) << joined(f);
  EXPECT_EQ(f[0], "nocfi_callback");
  EXPECT_EQ(f[1], "uw_nocfi_call");
  expect_complete_from(live.stack, live.named, "nocfi_stage", 2);
  EXPECT_EQ(live.stack.frame_pointer_frames, 1u);

  UnwindOptions no_fallback;
  no_fallback.frame_pointer_fallback = false;
  LiveStack cut = unwind_live(run, "nocfi", no_fallback);
  EXPECT_TRUE(cut.stack.truncated);
  EXPECT_EQ(cut.stack.truncation, Truncation::kNoCfi);
  EXPECT_EQ(cut.named.functions, (std::vector<std::string>{"nocfi_callback", "uw_nocfi_call"}));
  EXPECT_NE(cut.stack.reason.find("no CFI for"), std::string::npos) << cut.stack.reason;
  EXPECT_NE(cut.stack.reason.find("uw_chain_nofp"), std::string::npos) << cut.stack.reason;
}

TEST(Unwind, SmallSnapshotIsMarkedTruncatedNeverCut) {
  FixtureRun run("uw_chain_nofp");
  ASSERT_TRUE(run.ready());
  auto snap = run.snapshot("chain");
  ASSERT_NE(snap, nullptr);
  auto unwinder = DwarfUnwinder::Create(run.pid());
  ASSERT_TRUE(unwinder.has_value());
  auto full = (*unwinder)->unwind(*snap);
  ASSERT_TRUE(full.has_value());
  ASSERT_FALSE(full->truncated);

  size_t previous_depth = 0;
  for (uint32_t size : {0u, 8u, 64u, 700u, 1200u}) {
    lw_stack_snapshot small = *snap;
    small.stack_size = size;
    auto st = (*unwinder)->unwind(small);
    ASSERT_TRUE(st.has_value());
    EXPECT_TRUE(st->truncated) << size;
    EXPECT_EQ(st->truncation, Truncation::kSnapshotTooSmall) << st->reason;
    EXPECT_NE(st->reason.find(fmt::format("the snapshot has {} bytes", size)), std::string::npos)
        << st->reason;
    // What was unwound is exactly the innermost part of the full stack.
    ASSERT_LT(st->frames.size(), full->frames.size());
    EXPECT_TRUE(std::equal(st->frames.begin(), st->frames.end(), full->frames.begin()));
    EXPECT_GE(st->frames.size(), previous_depth);
    previous_depth = st->frames.size();
    EXPECT_LE(st->stack_bytes_used, size);
  }
  // The bytes the full unwinding used are enough, and one fewer is not.
  lw_stack_snapshot exact = *snap;
  exact.stack_size = full->stack_bytes_used;
  auto st = (*unwinder)->unwind(exact);
  ASSERT_TRUE(st.has_value());
  EXPECT_FALSE(st->truncated) << st->reason;
  EXPECT_EQ(st->frames, full->frames);
  exact.stack_size = full->stack_bytes_used - 1;
  st = (*unwinder)->unwind(exact);
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->truncated);
}

TEST(Unwind, EqualStacksShareAnIdAndStatsCountTheWork) {
  FixtureRun run("uw_chain_nofp");
  ASSERT_TRUE(run.ready());
  auto chain = run.snapshot("chain");
  auto qsort = run.snapshot("qsort");
  ASSERT_NE(chain, nullptr);
  ASSERT_NE(qsort, nullptr);
  auto unwinder = DwarfUnwinder::Create(run.pid());
  ASSERT_TRUE(unwinder.has_value());
  DwarfUnwinder& u = **unwinder;

  auto a = u.unwind(*chain);
  UnwindStats after_first = u.stats();
  auto b = u.unwind(*chain);
  auto c = u.unwind(*qsort);
  lw_stack_snapshot cut = *chain;
  cut.stack_size = 64;
  auto d = u.unwind(cut);
  ASSERT_TRUE(a && b && c && d);
  EXPECT_NE(a->stack_id, 0u);
  EXPECT_EQ(a->stack_id, b->stack_id);
  EXPECT_NE(a->stack_id, c->stack_id);
  EXPECT_NE(a->stack_id, d->stack_id);
  ASSERT_NE(u.stack(a->stack_id), nullptr);
  EXPECT_EQ(u.stack(a->stack_id)->frames, a->frames);
  EXPECT_FALSE(u.stack(a->stack_id)->truncated);
  EXPECT_TRUE(u.stack(d->stack_id)->truncated);
  EXPECT_EQ(u.stack(0), nullptr);

  UnwindStats s = u.stats();
  EXPECT_EQ(s.stacks, 4u);
  EXPECT_EQ(s.complete, 3u);
  EXPECT_EQ(s.truncated, 1u);
  EXPECT_EQ(s.truncated_by[static_cast<size_t>(Truncation::kSnapshotTooSmall)], 1u);
  EXPECT_EQ(s.distinct_stacks, 3u);
  EXPECT_EQ(s.frames, a->frames.size() * 2 + c->frames.size() + d->frames.size());
  EXPECT_EQ(s.snapshot_bytes, uint64_t{chain->stack_size} * 2 + qsort->stack_size + 64);
  EXPECT_EQ(s.stack_bytes_used, uint64_t{a->stack_bytes_used} * 2 + c->stack_bytes_used +
                                    d->stack_bytes_used);
  EXPECT_EQ(s.max_stack_bytes_used, std::max(a->stack_bytes_used, c->stack_bytes_used));
  EXPECT_GT(s.unwind_ns, 0u);
  // One row per frame step; the second unwinding of the same stack hits the row cache.
  EXPECT_EQ(after_first.row_cache_hits, 0u);
  EXPECT_GE(s.row_cache_hits - after_first.row_cache_hits, a->frames.size());
  EXPECT_EQ(s.maps_reads, 1u);
  EXPECT_GE(s.objects_opened, 2u);  // the fixture and libc at least
}

TEST(Unwind, RejectsMalformedSnapshotsAndOtherProcesses) {
  FixtureRun run("uw_chain_nofp");
  ASSERT_TRUE(run.ready());
  auto snap = run.snapshot("chain");
  ASSERT_NE(snap, nullptr);
  auto unwinder = DwarfUnwinder::Create(run.pid());
  ASSERT_TRUE(unwinder.has_value());
  lw_stack_snapshot other = *snap;
  other.tgid = snap->tgid + 1;
  auto st = (*unwinder)->unwind(other);
  ASSERT_FALSE(st.has_value());
  EXPECT_NE(st.error().message.find("given to the unwinder of process"), std::string::npos);
  lw_stack_snapshot big = *snap;
  big.stack_size = LW_SNAPSHOT_MAX + 1;
  EXPECT_FALSE((*unwinder)->unwind(big).has_value());

  EXPECT_FALSE(DwarfUnwinder::Create(0).has_value());
  auto gone = DwarfUnwinder::Create(0x3fffffff);
  ASSERT_FALSE(gone.has_value());
  EXPECT_NE(gone.error().message.find("no such process"), std::string::npos);
  EXPECT_FALSE(parse_snapshot(std::string(10, '\0')).has_value());
}

TEST(Unwind, PcsOutsideObjectsWithCfiAreTruncatedWithAReason) {
  FixtureRun run("uw_chain_nofp");
  ASSERT_TRUE(run.ready());
  auto snap = run.snapshot("chain");
  ASSERT_NE(snap, nullptr);
  auto maps = read_file(run.dir() + "/maps");
  ASSERT_TRUE(maps.has_value());
  auto entries = parse_proc_maps(*maps);
  ASSERT_TRUE(entries.has_value());
  uint64_t vdso = 0;
  for (const auto& e : *entries) {
    if (e.path == "[vdso]") vdso = e.start;
  }
  ASSERT_NE(vdso, 0u);
  auto unwinder = DwarfUnwinder::Create(run.pid());
  ASSERT_TRUE(unwinder.has_value());

  lw_stack_snapshot s = *snap;
  s.ip = 0x10;  // unmapped: the maps are re-read once, then the stack ends here
  auto st = (*unwinder)->unwind(s);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->frames, std::vector<uint64_t>{0x10});
  EXPECT_EQ(st->truncation, Truncation::kNoMapping);
  EXPECT_EQ(st->reason, "ip 0x10 is in no executable mapping");
  EXPECT_EQ((*unwinder)->stats().auto_refreshes, 1u);
  EXPECT_EQ((*unwinder)->stats().maps_reads, 2u);
  ASSERT_TRUE((*unwinder)->unwind(s).has_value());
  EXPECT_EQ((*unwinder)->stats().auto_refreshes, 1u);  // rate-limited

  // [vdso]: its CFI is not loaded, and rbp is not trusted there either.
  s.ip = vdso + 0x20;
  st = (*unwinder)->unwind(s);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->frames.size(), 1u);
  EXPECT_EQ(st->truncation, Truncation::kNoObject);
  EXPECT_NE(st->reason.find("[vdso]"), std::string::npos) << st->reason;
  EXPECT_EQ(st->frame_pointer_frames, 0u);
}

TEST(Unwind, KeepsUnwindingAfterTheProcessExits) {
  auto cache = std::make_shared<CfiCache>();
  UnwindOptions options;
  options.cfi_cache = cache;
  std::unique_ptr<DwarfUnwinder> first;
  std::unique_ptr<lw_stack_snapshot> snap;
  {
    FixtureRun run("uw_chain_nofp");
    ASSERT_TRUE(run.ready());
    snap = run.snapshot("strdup");
    auto u = DwarfUnwinder::Create(run.pid(), options);
    ASSERT_TRUE(u.has_value());
    first = std::move(*u);
    run.kill();
  }
  ASSERT_NE(snap, nullptr);
  EXPECT_TRUE(first->refresh().has_value());
  EXPECT_TRUE(first->stats().process_exited);
  auto st = first->unwind(*snap);
  ASSERT_TRUE(st.has_value());
  EXPECT_FALSE(st->truncated) << st->reason;
  EXPECT_EQ(st->frames.size(), 6u);  // strdup dup_stage main + libc start + _start

  // A second process of the same binary reuses the cached CFI (same build ids).
  const uint64_t loads = cache->loads();
  FixtureRun again("uw_chain_nofp");
  ASSERT_TRUE(again.ready());
  auto second = DwarfUnwinder::Create(again.pid(), options);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(cache->loads(), loads);
  EXPECT_GE(cache->hits(), 2u);
  auto st2 = (*second)->unwind(*again.snapshot("strdup"));
  ASSERT_TRUE(st2.has_value());
  EXPECT_FALSE(st2->truncated) << st2->reason;
  EXPECT_EQ(st2->frames.size(), 6u);
}

}  // namespace
}  // namespace leakwatch::unwind
