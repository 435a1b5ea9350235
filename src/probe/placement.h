// Deciding where in a function to put a uprobe.
//
// The kernel emulates a few x86 instructions at a probe site (push reg, jmp/jcc rel,
// call rel, nop); any other instruction is single-stepped out of line, ~10x slower
// (KERNEL-FACTS.md).  We decode the function's first instructions and choose the first
// emulated instruction that is reached on every call with the argument registers and the
// stack pointer still as they were at entry, i.e. every instruction before it is "pure"
// (writes only flags or non-argument registers, does not branch, has no side effect), and
// it is not the target of a branch inside the function.  Otherwise: offset 0.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace leakwatch::probe {

struct Placement {
  uint64_t offset = 0;     // from the function's start
  bool emulated = false;   // the instruction at offset is one the kernel emulates
  std::string insn;        // mnemonic + operands at the chosen offset, for -v output
  std::string reason;      // why this offset (one line)
};

// `code` holds the whole function body (st_size bytes) starting at `func_vaddr`.
Placement plan_probe(std::span<const uint8_t> code, uint64_t func_vaddr);

}  // namespace leakwatch::probe
