// Deciding where in a function to put a uprobe.
//
// Why: the x86-64 kernel emulates a few instructions at a probe site; any other instruction
// is single-stepped out of line, ~10x slower (KERNEL-FACTS.md: free at +0 ~7 us per hit,
// after its null check ~0.7 us).  So the probe goes on the first emulated instruction that
// every call reaches with the state the BPF program reads still as it was at entry.
//
// What the kernel emulates (arch/x86/kernel/uprobes.c, branch_/push_setup_xol_ops):
//   - push r64: 0x50-0x57, or 0x41 0x50-0x57 for r8-r15 (no other prefix);
//   - jmp rel8/rel32 (0xeb, 0xe9), call rel32 (0xe8), jcc rel8/rel32 (0x70-0x7f,
//     0x0f 0x80-0x8f), none of them with a 0x66 operand-size prefix;
//   - nop: 0x90, 0x66 0x90 and the kernel's own multi-byte nops, byte for byte
//     (0f 1f 00 / 0f 1f 40 00 / 0f 1f 44 00 00 / 66 0f 1f 44 00 00 / 0f 1f 80 00000000 /
//     0f 1f 84 00 00000000).  Recent kernels may accept more 0f 1f forms; we count only
//     these, which every kernel with uprobes on x86-64 emulates.
//
// The rule, walking instructions from the function's start (at most kMaxWalk of them):
//   1. The first emulated instruction is the site, provided every instruction before it is
//      "pure":
//        - writes no register except rax, rbx, r10-r15 (any width) and the flags: the
//          argument registers rdi, rsi, rdx, rcx, r8, r9 keep their entry values, and so do
//          rsp (so [rsp] is still the return address, which a uretprobe hijacks, and the
//          frame-pointer walk starts where it would at entry) and rbp;
//        - writes no memory, has no lock prefix;
//        - is not a branch, call, ret, int or syscall, and is one of a known list of
//          side-effect-free instructions (test, cmp, mov, movzx, lea, xor, add, endbr64,
//          a nop the kernel does not emulate, ...).  Anything unknown is impure.
//      Because pure instructions do not branch, the site is reached on every call.
//   2. A branch in the prefix ends the walk by itself: if it is emulated it IS the first
//      emulated instruction, so it becomes the site (free: `test rdi,rdi; je` -> the je at
//      +3: taken or not, the probe has already fired with rdi intact); if it is not
//      emulated (jmp *reg, ret, loop...) it is impure and we fall back to offset 0.
//   3. The site must not be reachable other than by falling through the prefix: no direct
//      branch or call inside the function (the whole of `code` is decoded) may target any
//      offset in (0, site], or the probe would fire on paths that never passed the entry.
//      A branch to offset 0 is harmless: a probe at 0 would fire on it just the same.
//      Indirect branches and jumps into the function from elsewhere cannot be seen here.
//   4. Otherwise the site is offset 0, emulated or not.
//
// Thread-safety: plan_probe is a pure function of its inputs; call it from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace leakwatch::elf {
class ElfObject;
struct ElfSymbol;
}  // namespace leakwatch::elf

namespace leakwatch::alloc {


struct Placement {
  uint64_t offset = 0;     // from the function's start
  bool emulated = false;   // the instruction at offset is one the kernel emulates
  std::string insn;        // mnemonic + operands at the chosen offset, for -v output
  std::string reason;      // why this offset (one line)
};

// How many instructions from the start are considered before falling back to offset 0.
inline constexpr int kMaxWalk = 8;

// `code` holds the whole function body (st_size bytes) starting at `func_vaddr`.
Placement plan_probe(std::span<const uint8_t> code, uint64_t func_vaddr);

// True when `insn` (the bytes of exactly one decoded instruction) is one the x86-64 kernel
// emulates at a uprobe site (see above).
bool is_uprobe_emulated(std::span<const uint8_t> insn);

// The calls a function body makes, found by a linear sweep: `call rel32` gives the target
// address, `call *disp32(%rip)` the address of the slot it reads; calls through a register
// give neither.
struct CallSite {
  uint64_t offset = 0;          // of the call instruction, from the function's start
  std::optional<uint64_t> target;
  std::optional<uint64_t> slot;
};
std::vector<CallSite> call_sites(std::span<const uint8_t> code, uint64_t func_vaddr);

// Reads the symbol's code from `obj` and plans it.  A symbol without a size (hand-written
// assembly) cannot be checked for branch targets: it gets offset 0.
[[nodiscard]] Result<Placement> plan_symbol_probe(const elf::ElfObject& obj, const elf::ElfSymbol& sym);

}  // namespace leakwatch::alloc
