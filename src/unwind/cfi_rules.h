// One row of a CFI table, in a form that is cheap to apply many times, and the step that
// applies it: from the registers of a frame to the registers of its caller.
//
// libdw answers "what are the rules at address A" with a Dwarf_Frame whose rules are DWARF
// expressions (dwarf_frame_cfa, dwarf_frame_register).  row_from_frame() turns the common
// shapes (CFA = reg + offset; register saved at CFA + n) into plain fields and keeps the
// rest as decoded expressions, so step() runs without libdw and without allocating.
//
// x86-64 only: DWARF registers 0-15 are the general registers, 16 is the return address.
//
// Thread-safety: plain data and pure functions; UnwindRow is immutable once built.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <vector>

#include "common/result.h"

struct Dwarf_Frame_s;  // elfutils: Dwarf_Frame

namespace leakwatch::unwind {

inline constexpr int kNumRegs = 17;
inline constexpr int kRegRbx = 3, kRegRbp = 6, kRegRsp = 7, kRegRip = 16;

// A decoded DWARF expression operation (the fields of libdw's Dwarf_Op).
struct ExprOp {
  uint8_t atom = 0;
  uint64_t number = 0, number2 = 0;
  uint64_t offset = 0;  // byte offset of the operation in its expression (DW_OP_skip/bra)
};
using Expr = std::vector<ExprOp>;

enum class RuleKind : uint8_t {
  kUndefined,      // not recoverable (call-clobbered); for rip: this is the outermost frame
  kSameValue,      // this frame did not change it
  kOffset,         // saved in memory at CFA + offset
  kValOffset,      // the value is CFA + offset
  kRegister,       // the value is in register `reg` of this frame
  kExpression,     // saved in memory at the address expression `expr` computes
  kValExpression,  // the value is what expression `expr` computes
};

struct RegRule {
  RuleKind kind = RuleKind::kUndefined;
  uint8_t reg = 0;
  int32_t expr = -1;  // index into UnwindRow::exprs
  int64_t offset = 0;
};

struct CfaRule {
  bool expression = false;  // true: CFA = value of exprs[expr]; false: reg + offset
  uint8_t reg = kRegRsp;
  int32_t expr = -1;
  int64_t offset = 0;
};

// The rules for every address in [start, end) (ELF virtual addresses of one object).
struct UnwindRow {
  uint64_t start = 0, end = 0;
  CfaRule cfa;
  RegRule regs[kNumRegs];
  uint8_t return_address_reg = kRegRip;
  bool signal_frame = false;  // the caller's pc is exact (interrupted), not a return address
  std::vector<Expr> exprs;
};

// Converts libdw's frame state for one address.  Fails on a register number or an
// expression this unwinder does not handle.
[[nodiscard]] Result<UnwindRow> row_from_frame(Dwarf_Frame_s* frame);

// A frame's registers: which are known, and their values.
struct RegisterSet {
  uint64_t value[kNumRegs] = {};
  uint32_t known = 0;  // bit r set: value[r] is valid

  bool has(int r) const { return (known >> r) & 1u; }
  void set(int r, uint64_t v) {
    value[r] = v;
    known |= 1u << r;
  }
  void forget(int r) { known &= ~(1u << r); }
};

// Memory of the unwound process as far as the unwinder has it (the stack snapshot, mapped
// read-only files).  Returns false when [address, address + size) is not available.
class MemoryReader {
 public:
  virtual ~MemoryReader() = default;
  virtual bool read(uint64_t address, void* out, size_t size) = 0;
};

struct StepError {
  enum Kind : uint8_t {
    kUnknownRegister,  // `value` = the DWARF register whose value is not known
    kMemory,           // `value` = the address that could not be read
    kBadExpression,    // `value` = the offending DW_OP (or 0)
  };
  Kind kind;
  uint64_t value = 0;
};

// Evaluates `expr` (CFA available to DW_OP_call_frame_cfa when `cfa` is non-null).  The
// result is the top of the stack; `*is_value` is set when the expression ends with
// DW_OP_stack_value (a value rather than an address).
[[nodiscard]] std::expected<uint64_t, StepError> evaluate(const Expr& expr,
                                                          const RegisterSet& regs,
                                                          const uint64_t* cfa, MemoryReader& mem,
                                                          bool* is_value);

struct StepResult {
  RegisterSet caller;  // the caller's registers; caller.value[kRegRip] is its pc
  uint64_t cfa = 0;
  bool outermost = false;  // the return address is undefined: no caller
};

// Applies `row` to the registers of a frame.  The caller's rsp is the CFA unless the row
// says otherwise.  Callee-saved registers (rbx, rbp, r12-r15) without a rule keep their
// value: libdw reports "unspecified" as undefined, but the ABI makes them preserved.
[[nodiscard]] std::expected<StepResult, StepError> step(const UnwindRow& row,
                                                        const RegisterSet& regs,
                                                        MemoryReader& mem);

std::string describe(const StepError& error);

}  // namespace leakwatch::unwind
