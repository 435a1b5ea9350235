// DwarfUnwinder on the snapshots saved in tests/data/unwind (see its README.md): no live
// process, the recorded maps, the recorded binary; libc from the system only when it is
// the recorded one.
#include <fcntl.h>

#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/atomic_file.h"
#include "common/fd.h"
#include "symbolize/object_file.h"
#include "common/procfs.h"
#include "unwind/snapshot_file.h"
#include "unwind/unwinder.h"
#include "unwind_testing.h"

namespace leakwatch::unwind {
namespace {

const std::string kData = std::string(LEAKWATCH_TEST_DATA) + "/unwind";

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " <- ") + x;
  return s;
}

std::map<std::string, std::string> recorded_build_ids() {
  std::map<std::string, std::string> out;
  std::ifstream in(kData + "/build-ids");
  std::string path, id;
  while (in >> path >> id) out[path] = id;
  return out;
}

std::string build_id_of(const std::string& path) {
  auto obj = ObjectCfi::Open(UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)), path, "", false);
  return obj ? (*obj)->build_id() : "";
}

struct Offline {
  std::unique_ptr<DwarfUnwinder> unwinder;
  uint64_t fixture_bias = 0;
  bool system_libc = false;  // this machine's libc is the recorded one
};

// Fixture from its saved copy; libc and ld.so from the system when their build ids match
// the recorded ones, else not at all.
Offline offline_unwinder(const UnwindOptions& options = {}) {
  Offline out;
  auto maps = read_file(kData + "/maps");
  EXPECT_TRUE(maps.has_value());
  if (!maps) return out;
  const auto ids = recorded_build_ids();
  const std::string libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  out.system_libc = ids.count(libc) != 0 && build_id_of(libc) == ids.at(libc);
  auto resolve = [&](const std::string& path) -> std::string {
    if (path.ends_with("/uw_chain_nofp")) return kData + "/uw_chain_nofp";
    auto it = ids.find(path);
    if (it != ids.end() && build_id_of(path) == it->second) return path;
    return "";
  };
  auto u = DwarfUnwinder::CreateOffline(*maps, resolve, options);
  EXPECT_TRUE(u.has_value()) << u.error().message;
  if (!u) return out;
  out.unwinder = std::move(*u);
  auto entries = parse_proc_maps(*maps);
  for (const auto& e : *entries) {
    if (e.executable && e.path.ends_with("/uw_chain_nofp")) {
      UniqueFd fd(::open((kData + "/uw_chain_nofp").c_str(), O_RDONLY | O_CLOEXEC));
      out.fixture_bias = symbolize::compute_load_bias(fd.get(), e).value_or(0);
    }
  }
  return out;
}

TEST(Unwind, SavedSnapshotUnwindsWithoutTheProcess) {
  Offline off = offline_unwinder();
  ASSERT_NE(off.unwinder, nullptr);
  ASSERT_NE(off.fixture_bias, 0u);
  ElfSymbols syms(kData + "/uw_chain_nofp");
  auto snap = read_snapshot_file(kData + "/chain.snap");
  ASSERT_TRUE(snap.has_value()) << snap.error().message;
  auto st = off.unwinder->unwind(**snap);
  ASSERT_TRUE(st.has_value()) << st.error().message;

  std::vector<std::string> names;
  for (uint64_t a : st->frames) names.push_back(syms.function_at(a - 1 - off.fixture_bias));
  const std::vector<std::string> chain = {"f10", "f9", "f8", "f7", "f6", "f5",
                                          "f4",  "f3", "f2", "f1", "main"};
  ASSERT_GE(names.size(), chain.size() + 1) << joined(names) << "\n" << st->reason;
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + chain.size()), chain);
  if (off.system_libc) {
    // main <- __libc_start_call_main <- __libc_start_main <- _start
    EXPECT_FALSE(st->truncated) << st->reason;
    ASSERT_EQ(names.size(), chain.size() + 3);
    EXPECT_EQ(names.back(), "_start");
  } else {
    // Without libc's CFI the unwinding stops in main's caller, and says so.
    EXPECT_TRUE(st->truncated);
    EXPECT_EQ(st->truncation, Truncation::kNoObject);
    EXPECT_EQ(names.size(), chain.size() + 1);
    EXPECT_NE(st->reason.find("libc.so.6"), std::string::npos) << st->reason;
  }

  // The allocation inside strdup: frame 0 is in libc.
  auto dup = read_snapshot_file(kData + "/strdup.snap");
  ASSERT_TRUE(dup.has_value());
  auto st2 = off.unwinder->unwind(**dup);
  ASSERT_TRUE(st2.has_value());
  if (off.system_libc) {
    EXPECT_FALSE(st2->truncated) << st2->reason;
    ASSERT_EQ(st2->frames.size(), 6u);
    EXPECT_EQ(syms.function_at(st2->frames[1] - 1 - off.fixture_bias), "dup_stage");
  } else {
    EXPECT_TRUE(st2->truncated);
    EXPECT_EQ(st2->frames.size(), 1u);
    EXPECT_EQ(st2->truncation, Truncation::kNoObject);
  }
}

TEST(Unwind, ExactIpSnapshotAsAtAnEntryProbe) {
  // Rebuild the chain snapshot as an entry probe on leak_here would see it: ip = the first
  // instruction of leak_here, sp one slot lower, holding the return address into f10.
  Offline off = offline_unwinder();
  ASSERT_NE(off.unwinder, nullptr);
  ElfSymbols syms(kData + "/uw_chain_nofp");
  auto snap = read_snapshot_file(kData + "/chain.snap");
  ASSERT_TRUE(snap.has_value());
  const uint64_t leak_here = syms.address_of("leak_here");
  ASSERT_NE(leak_here, 0u);

  auto entry = std::make_unique<lw_stack_snapshot>(**snap);
  entry->ip = leak_here + off.fixture_bias;
  entry->sp = (*snap)->sp - 8;
  entry->stack_size = (*snap)->stack_size + 8;
  std::memcpy(entry->stack, &(*snap)->ip, 8);
  std::memcpy(entry->stack + 8, (*snap)->stack, (*snap)->stack_size);
  entry->flags = LW_SNAPSHOT_IP_EXACT;
  auto st = off.unwinder->unwind(*entry);
  ASSERT_TRUE(st.has_value());
  ASSERT_GE(st->frames.size(), 3u) << st->reason;
  EXPECT_EQ(syms.function_at(st->frames[0] - off.fixture_bias), "leak_here");
  EXPECT_EQ(syms.function_at(st->frames[1] - 1 - off.fixture_bias), "f10");
  EXPECT_EQ(syms.function_at(st->frames[2] - 1 - off.fixture_bias), "f9");
  auto full = off.unwinder->unwind(**snap);
  ASSERT_TRUE(full.has_value());
  EXPECT_EQ(std::vector<uint64_t>(st->frames.begin() + 1, st->frames.end()), full->frames);

}

TEST(Unwind, ReturnAddressHijackedByAUretprobeEndsTheStack) {
  // f10's return address replaced by the uretprobe trampoline, as when a probed function
  // further out (here f9) has not returned yet.
  auto maps = read_file(kData + "/maps");
  ASSERT_TRUE(maps.has_value());
  const uint64_t trampoline = 0x7fffffffe000;
  *maps += "7fffffffe000-7ffffffff000 r-xp 00000000 00:00 0                          [uprobes]\n";
  auto resolve = [](const std::string& path) {
    return path.ends_with("/uw_chain_nofp") ? kData + "/uw_chain_nofp" : std::string();
  };
  auto u = DwarfUnwinder::CreateOffline(*maps, resolve);
  ASSERT_TRUE(u.has_value()) << u.error().message;
  auto snap = read_snapshot_file(kData + "/chain.snap");
  ASSERT_TRUE(snap.has_value());
  auto full = (*u)->unwind(**snap);
  ASSERT_TRUE(full.has_value());
  ASSERT_GE(full->frames.size(), 3u);

  // The slot holding frames[1] (f10's return address into f9) is the first such word.
  lw_stack_snapshot& s = **snap;
  size_t slot = 0;
  while (slot + 8 <= s.stack_size && std::memcmp(s.stack + slot, &full->frames[1], 8) != 0) {
    slot += 8;
  }
  ASSERT_LE(slot + 8, s.stack_size);
  std::memcpy(s.stack + slot, &trampoline, 8);
  auto st = (*u)->unwind(s);
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->truncated);
  EXPECT_EQ(st->truncation, Truncation::kNoObject);
  EXPECT_EQ(st->frames, std::vector<uint64_t>{s.ip});  // the trampoline is not a frame
  EXPECT_NE(st->reason.find("uretprobe trampoline"), std::string::npos) << st->reason;
}

}  // namespace
}  // namespace leakwatch::unwind
