// The unwinder's rule interpreter without libdw in front of it: any row (CFA rule, register
// rules, DWARF expressions of any operations and operands) applied to any registers and
// memory.  row_from_frame() only produces a subset of these; the interpreter must still
// fail cleanly on the rest (a corrupt or hostile object's CFI reaches it through libdw).
#include <dwarf.h>

#include <cstring>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz_support.h"
#include "unwind/cfi_rules.h"

namespace {

using namespace leakwatch::unwind;

class FuzzMemory : public MemoryReader {
 public:
  explicit FuzzMemory(std::vector<uint8_t> bytes, uint64_t base)
      : bytes_(std::move(bytes)), base_(base) {}
  bool read(uint64_t address, void* out, size_t n) override {
    if (address < base_ || address - base_ > bytes_.size() || n > bytes_.size() - (address - base_))
      return false;
    std::memcpy(out, bytes_.data() + (address - base_), n);
    return true;
  }

 private:
  std::vector<uint8_t> bytes_;
  uint64_t base_;
};

// Operations the interpreter knows, so that most generated ones are meaningful.
constexpr uint8_t kAtoms[] = {
    DW_OP_lit0, DW_OP_lit1, DW_OP_lit8, DW_OP_lit31, DW_OP_breg0, DW_OP_breg6, DW_OP_breg7,
    DW_OP_breg16, DW_OP_breg31, DW_OP_addr, DW_OP_const1u, DW_OP_const1s, DW_OP_const2u,
    DW_OP_const4s, DW_OP_const8u, DW_OP_constu, DW_OP_consts, DW_OP_bregx,
    DW_OP_call_frame_cfa, DW_OP_dup, DW_OP_drop, DW_OP_over, DW_OP_pick, DW_OP_swap,
    DW_OP_rot, DW_OP_deref, DW_OP_deref_size, DW_OP_plus_uconst, DW_OP_neg, DW_OP_not,
    DW_OP_abs, DW_OP_and, DW_OP_or, DW_OP_xor, DW_OP_plus, DW_OP_minus, DW_OP_mul,
    DW_OP_div, DW_OP_mod, DW_OP_shl, DW_OP_shr, DW_OP_shra, DW_OP_eq, DW_OP_ne, DW_OP_lt,
    DW_OP_le, DW_OP_gt, DW_OP_ge, DW_OP_skip, DW_OP_bra, DW_OP_nop, DW_OP_stack_value};

Expr make_expr(FuzzedDataProvider& in) {
  Expr e;
  size_t n = in.ConsumeIntegralInRange<size_t>(0, 12);
  uint64_t offset = 0;
  for (size_t i = 0; i < n; ++i) {
    ExprOp op;
    op.atom = in.ConsumeBool() ? in.PickValueInArray(kAtoms) : in.ConsumeIntegral<uint8_t>();
    // Small operands mostly (register numbers, stack indexes, jump distances), the edges of
    // 64-bit arithmetic, any now and then.
    static constexpr uint64_t kEdges[] = {0, 1, UINT64_MAX, uint64_t{1} << 63,
                                          (uint64_t{1} << 63) - 1, 63, 64, 0xffffffff};
    switch (in.ConsumeIntegralInRange<int>(0, 2)) {
      case 0: op.number = in.ConsumeIntegralInRange<uint64_t>(0, 40); break;
      case 1: op.number = in.PickValueInArray(kEdges); break;
      default: op.number = in.ConsumeIntegral<uint64_t>(); break;
    }
    op.number2 = in.ConsumeIntegral<uint64_t>();
    op.offset = offset;
    offset += in.ConsumeIntegralInRange<uint64_t>(1, 9);
    e.push_back(op);
  }
  return e;
}

RegRule make_rule(FuzzedDataProvider& in, size_t exprs) {
  RegRule r;
  r.kind = static_cast<RuleKind>(in.ConsumeIntegralInRange<int>(0, 6));
  r.reg = in.ConsumeIntegralInRange<uint8_t>(0, kNumRegs - 1);
  r.offset = in.ConsumeIntegral<int64_t>();
  if (r.kind == RuleKind::kExpression || r.kind == RuleKind::kValExpression) {
    if (exprs == 0) r.kind = RuleKind::kSameValue;
    else r.expr = in.ConsumeIntegralInRange<int32_t>(0, static_cast<int32_t>(exprs) - 1);
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  UnwindRow row;
  size_t nexprs = in.ConsumeIntegralInRange<size_t>(0, 3);
  for (size_t i = 0; i < nexprs; ++i) row.exprs.push_back(make_expr(in));
  row.cfa.expression = nexprs > 0 && in.ConsumeBool();
  if (row.cfa.expression) {
    row.cfa.expr = in.ConsumeIntegralInRange<int32_t>(0, static_cast<int32_t>(nexprs) - 1);
  } else {
    row.cfa.reg = in.ConsumeIntegralInRange<uint8_t>(0, kNumRegs - 1);
    row.cfa.offset = in.ConsumeIntegral<int64_t>();
  }
  for (auto& r : row.regs) r = make_rule(in, nexprs);
  row.return_address_reg = in.ConsumeIntegralInRange<uint8_t>(0, kNumRegs - 1);

  constexpr uint64_t kBase = 0x7ffc00000000;
  RegisterSet regs;
  for (int r = 0; r < kNumRegs; ++r) {
    if (in.ConsumeBool()) {
      regs.set(r, in.ConsumeBool() ? kBase + in.ConsumeIntegralInRange<uint64_t>(0, 256)
                                   : in.ConsumeIntegral<uint64_t>());
    }
  }
  FuzzMemory mem(in.ConsumeRemainingBytes<uint8_t>(), kBase);

  auto st = step(row, regs, mem);
  if (!st) (void)describe(st.error());
  uint64_t cfa = kBase + 64;
  for (const Expr& e : row.exprs) {
    bool is_value = false;
    auto v = evaluate(e, regs, &cfa, mem, &is_value);
    if (!v) (void)describe(v.error());
  }
  return 0;
}
