// DWARF unwinding of user-space stack snapshots (src/bpf/unwind.h) with the call frame
// information of the mapped objects (.eh_frame, else .debug_frame).
//
// How it works (unwinder.cpp):
//
//   snapshot {ip, sp, bp, stack[sp, sp+size)}      /proc/PID/maps (via /proc/PID/root)
//          |                                              |
//          v                                              v
//   regs = {rip, rsp, rbp} --pc--> mapping --> ObjectCfi (CfiCache: per build id)
//          ^                                       | row for (pc - 1 - load bias)
//          |                                       v
//          +---- caller's regs <-- step(row): CFA, saved registers read from the snapshot
//
// Each step looks up the CFI row of the current pc (the pc minus one for return addresses,
// so the lookup lands in the call instruction), computes the CFA and the caller's registers,
// and continues with the return address.  The stack is complete when the CFI marks the
// return address undefined (glibc's _start and clone3 do) or the return address is 0.  It
// is truncated, with a reason, when a step cannot be made: the snapshot ends before the
// saved data (too small), a pc is outside every executable mapping, an object has no CFI
// for a pc (then rbp is tried as a frame pointer if enabled), a register needed is unknown
// (only rip, rsp and rbp are captured), the stack does not move up, or max_frames.
// A return address in [uprobes] (a uretprobe of a function further out that had not
// returned replaced it) also ends the stack, without that frame: the snapshot must be
// taken at the outermost probed function's return.
//
// Thread-safety: a DwarfUnwinder is not thread-safe, nor is a CfiCache shared by several:
// use them from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bpf/unwind.h"
#include "common/result.h"
#include "unwind/object_cfi.h"
#include "unwind/stack_table.h"

namespace leakwatch::unwind {

enum class Truncation : uint8_t {
  kNone = 0,
  kSnapshotTooSmall,  // saved registers or a return address lie beyond the snapshot's end
  kNoMapping,         // a pc lies outside every executable mapping
  kNoObject,          // the object's file could not be opened or is not ELF
  kNoCfi,             // the object has no CFI for the pc (and no usable frame pointer)
  kUnknownRegister,   // the CFI needs a register that was not captured
  kBadMemory,         // memory needed is neither in the snapshot nor in a read-only file
  kBadCfi,            // CFI that could not be interpreted
  kNoProgress,        // the caller's stack pointer is not above the callee's
  kDepthLimit,        // max_frames reached
};
inline constexpr size_t kTruncationKinds = 10;
// "none", "snapshot_too_small", "no_mapping", ... (stable: used as metric labels)
const char* truncation_name(Truncation t);

struct UnwoundStack {
  uint32_t stack_id = 0;          // equal (frames, truncated) get equal ids; see stack()
  std::vector<uint64_t> frames;   // innermost first: frames[0] is the snapshot's ip, the
                                  // others return addresses (symbolize address - 1)
  bool truncated = false;         // the outermost frame was not reached
  Truncation truncation = Truncation::kNone;
  std::string reason;             // why it is truncated ("" when complete)
  uint32_t frame_pointer_frames = 0;  // callers found through rbp where CFI was missing
  uint32_t stack_bytes_used = 0;  // bytes of the snapshot the unwinding read (from sp)
};

struct UnwindOptions {
  size_t max_frames = 127;  // LW_MAX_STACK_DEPTH
  // Where CFI is known to be missing (an ELF without an entry for the pc, anonymous
  // executable memory such as JIT code), take rbp as a frame pointer ([rbp] = caller's
  // rbp, [rbp + 8] = return address) when both lie in the snapshot.  Not used for files
  // that could not be opened.
  bool frame_pointer_fallback = true;
  // Look for .debug_frame (in the object or its separate debug file) when .eh_frame has
  // no entry for a pc.
  bool use_debug_frame = true;
  // A pc outside every known mapping re-reads the maps (dlopen), at most this often.
  std::chrono::milliseconds min_auto_refresh_interval{500};
  // CFI shared with other unwinders (same thread); null: the unwinder makes its own.
  std::shared_ptr<CfiCache> cfi_cache;
};

// Cumulative since creation.
struct UnwindStats {
  uint64_t stacks = 0;       // snapshots unwound
  uint64_t complete = 0;
  uint64_t truncated = 0;
  uint64_t truncated_by[kTruncationKinds] = {};  // indexed by Truncation
  uint64_t frames = 0;
  uint64_t frame_pointer_frames = 0;
  uint64_t snapshot_bytes = 0;     // stack bytes received (sum of stack_size)
  uint64_t stack_bytes_used = 0;   // of those, bytes the unwinding needed (sum)
  uint64_t max_stack_bytes_used = 0;
  uint64_t unwind_ns = 0;          // time spent in unwind()
  uint64_t row_lookups = 0;        // CFI rows needed (one per frame step)
  uint64_t row_cache_hits = 0;     // ... answered by the row cache
  uint64_t distinct_stacks = 0;    // ids handed out
  uint64_t objects_opened = 0;     // ELF files opened for mappings (shared ones included)
  uint64_t object_failures = 0;    // executable file mappings that could not be used
  uint64_t maps_reads = 0;
  uint64_t auto_refreshes = 0;
  bool process_exited = false;
};

// Where an offline unwinder finds the file a recorded maps line names; "" = not available.
using PathResolver = std::function<std::string(const std::string& path)>;

class DwarfUnwinder {
 public:
  // Reads /proc/PID/maps and opens the executable objects through /proc/PID/root (then
  // /proc/PID/map_files, then the path).  Fails when the process does not exist.
  [[nodiscard]] static Result<std::unique_ptr<DwarfUnwinder>> Create(
      int pid, const UnwindOptions& options = {});
  // Unwinds snapshots of a process that is gone, from a copy of its maps; files are
  // opened where `resolve` says.  Snapshots are not checked against a pid.
  [[nodiscard]] static Result<std::unique_ptr<DwarfUnwinder>> CreateOffline(
      std::string_view maps_text, const PathResolver& resolve, const UnwindOptions& options = {});
  ~DwarfUnwinder();
  DwarfUnwinder(const DwarfUnwinder&) = delete;
  DwarfUnwinder& operator=(const DwarfUnwinder&) = delete;

  // Unwinds one snapshot.  Fails only for a malformed snapshot (stack_size too big) or one
  // of another process; anything that stops the unwinding gives a truncated stack.
  [[nodiscard]] Result<UnwoundStack> unwind(const lw_stack_snapshot& snapshot);

  // Re-reads the maps (libraries loaded since).  After the process exited, keeps what it
  // had and returns ok.
  Result<void> refresh();

  // The frames of a stack id returned by unwind(), or nullptr.
  const StackEntry* stack(uint32_t stack_id) const;
  UnwindStats stats() const;
  int pid() const;

  struct Impl;

 private:
  explicit DwarfUnwinder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace leakwatch::unwind
