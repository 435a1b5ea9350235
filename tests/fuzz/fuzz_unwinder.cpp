// A stack snapshot record (what the BPF side sends, or a saved .snap file) through the
// whole DWARF unwinder: the record's parser, then the unwinding of its stack against the
// recorded process of tests/data/unwind (its maps, its binary, the system's libc).
#include <memory>

#include "common/atomic_file.h"
#include "fuzz_support.h"
#include "unwind/snapshot_file.h"
#include "unwind/unwinder.h"

namespace {

using namespace leakwatch;

const std::string kData = std::string(LEAKWATCH_TEST_DATA) + "/unwind";

std::string resolve(const std::string& path) {
  if (path.ends_with("/uw_chain_nofp")) return kData + "/uw_chain_nofp";
  if (path.starts_with("/usr/lib/x86_64-linux-gnu/")) return path;  // libc, ld.so
  return "";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string maps = read_file(kData + "/maps").value_or("");
  // The objects' CFI is shared by every run (as the agent shares it between processes);
  // the unwinder itself is made per input, so its stack table does not grow forever.
  static auto cache = std::make_shared<unwind::CfiCache>();
  auto snap = unwind::parse_snapshot(fuzz::as_text(data, size));
  if (!snap) return 0;
  unwind::UnwindOptions options;
  options.cfi_cache = cache;
  auto unwinder = unwind::DwarfUnwinder::CreateOffline(maps, resolve, options);
  if (!unwinder) __builtin_trap();  // the recorded maps always load
  auto stack = (*unwinder)->unwind(**snap);
  if (stack && stack->stack_id != 0) (void)(*unwinder)->stack(stack->stack_id);
  (void)(*unwinder)->stats();
  return 0;
}
