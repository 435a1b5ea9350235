// The pieces of the unwinder that need no process: DWARF expression evaluation, applying
// a CFI row to registers, merging stacks, snapshot records.  Rows and expressions are
// written by hand in the shapes compilers and glibc emit (the real ones are exercised in
// unwind_test.cpp).
#include <dwarf.h>

#include <cstring>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "support/process.h"
#include "unwind/cfi_rules.h"
#include "unwind/snapshot_file.h"
#include "unwind/stack_table.h"

namespace leakwatch::unwind {
namespace {

// 8-byte words at chosen addresses.
class FakeMemory final : public MemoryReader {
 public:
  std::map<uint64_t, uint64_t> words;
  bool read(uint64_t address, void* out, size_t size) override {
    auto it = words.find(address);
    if (it == words.end() || size > 8) return false;
    std::memcpy(out, &it->second, size);
    return true;
  }
};

ExprOp op(uint8_t atom, uint64_t number = 0, uint64_t offset = 0) {
  return ExprOp{atom, number, 0, offset};
}

uint64_t eval_ok(const Expr& e, const RegisterSet& regs, MemoryReader& mem,
                 const uint64_t* cfa = nullptr, bool* is_value = nullptr) {
  bool v = false;
  auto r = evaluate(e, regs, cfa, mem, &v);
  EXPECT_TRUE(r.has_value()) << (r ? "" : describe(r.error()));
  if (is_value != nullptr) *is_value = v;
  return r.value_or(0xdead);
}

TEST(UnwindCfi, PltCfaExpression) {
  // The CFA rule of a .plt section (binutils): rsp + 8, plus 8 more once the entry has
  // pushed its relocation index, i.e. when (rip & 15) >= 11.
  const Expr plt = {op(DW_OP_breg7, 8), op(DW_OP_breg16, 0), op(DW_OP_lit15), op(DW_OP_and),
                    op(DW_OP_lit11),    op(DW_OP_ge),        op(DW_OP_lit3),  op(DW_OP_shl),
                    op(DW_OP_plus)};
  FakeMemory mem;
  RegisterSet regs;
  regs.set(kRegRsp, 0x7ffd0000);
  regs.set(kRegRip, 0x401025);  // & 15 = 5
  EXPECT_EQ(eval_ok(plt, regs, mem), 0x7ffd0008u);
  regs.set(kRegRip, 0x40102c);  // & 15 = 12
  EXPECT_EQ(eval_ok(plt, regs, mem), 0x7ffd0010u);
}

TEST(UnwindCfi, BranchesStackOperationsAndDeref) {
  FakeMemory mem;
  RegisterSet regs;
  // "x ? 7 : 5" with byte offsets as libdw reports them:
  //   @0 lit_x  @1 bra(+4 -> @8)  @4 lit5  @5 skip(+1 -> @9 = end)  @8 lit7
  for (uint8_t x : {0, 1}) {
    const Expr e = {op(static_cast<uint8_t>(DW_OP_lit0 + x), 0, 0), op(DW_OP_bra, 4, 1),
                    op(DW_OP_lit5, 0, 4), op(DW_OP_skip, 1, 5), op(DW_OP_lit7, 0, 8)};
    EXPECT_EQ(eval_ok(e, regs, mem), x ? 7u : 5u);
  }
  // rot: (1 2 3 -- 3 1 2); pick 2 copies the third entry; over, swap, minus.
  EXPECT_EQ(eval_ok({op(DW_OP_lit1), op(DW_OP_lit2), op(DW_OP_lit3), op(DW_OP_rot)}, regs, mem),
            2u);
  EXPECT_EQ(eval_ok({op(DW_OP_lit1), op(DW_OP_lit2), op(DW_OP_lit3), op(DW_OP_rot),
                     op(DW_OP_drop), op(DW_OP_drop)},
                    regs, mem),
            3u);
  EXPECT_EQ(eval_ok({op(DW_OP_lit4), op(DW_OP_lit5), op(DW_OP_lit6), op(DW_OP_pick, 2)}, regs, mem),
            4u);
  EXPECT_EQ(eval_ok({op(DW_OP_lit9), op(DW_OP_lit2), op(DW_OP_swap), op(DW_OP_minus)}, regs, mem),
            static_cast<uint64_t>(2 - 9));
  EXPECT_EQ(eval_ok({op(DW_OP_lit9), op(DW_OP_lit2), op(DW_OP_over), op(DW_OP_plus)}, regs, mem),
            11u);
  EXPECT_EQ(eval_ok({op(DW_OP_consts, static_cast<uint64_t>(-16)), op(DW_OP_lit4), op(DW_OP_shra)},
                    regs, mem),
            static_cast<uint64_t>(-1));

  // Signal-frame style: a register saved in a structure found through the stack pointer.
  regs.set(kRegRsp, 0x1000);
  mem.words[0x1000 + 0xa0] = 0x5555;
  bool is_value = true;
  EXPECT_EQ(eval_ok({op(DW_OP_breg7, 0xa0), op(DW_OP_deref)}, regs, mem, nullptr, &is_value),
            0x5555u);
  EXPECT_FALSE(is_value);
  const uint64_t cfa = 0x2000;
  EXPECT_EQ(eval_ok({op(DW_OP_call_frame_cfa), op(DW_OP_plus_uconst, 8), op(DW_OP_stack_value)},
                    regs, mem, &cfa, &is_value),
            0x2008u);
  EXPECT_TRUE(is_value);
}

TEST(UnwindCfi, EvaluationErrorsNameTheirCause) {
  FakeMemory mem;
  RegisterSet regs;
  bool v = false;
  auto r = evaluate({op(DW_OP_breg3, 0)}, regs, nullptr, mem, &v);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, StepError::kUnknownRegister);
  EXPECT_EQ(r.error().value, 3u);

  regs.set(kRegRsp, 0x1000);
  r = evaluate({op(DW_OP_breg7, 8), op(DW_OP_deref)}, regs, nullptr, mem, &v);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, StepError::kMemory);
  EXPECT_EQ(r.error().value, 0x1008u);
  EXPECT_EQ(describe(r.error()), "memory at 0x1008 not available");

  r = evaluate({op(DW_OP_lit1), op(DW_OP_piece, 8)}, regs, nullptr, mem, &v);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, StepError::kBadExpression);
  EXPECT_EQ(r.error().value, uint64_t{DW_OP_piece});
  EXPECT_FALSE(evaluate({op(DW_OP_plus)}, regs, nullptr, mem, &v).has_value());  // underflow
  EXPECT_FALSE(evaluate({}, regs, nullptr, mem, &v).has_value());
  // call_frame_cfa outside a register rule (no CFA yet)
  EXPECT_FALSE(evaluate({op(DW_OP_call_frame_cfa)}, regs, nullptr, mem, &v).has_value());
  // A branch to itself loops: the evaluation gives up instead of hanging.
  EXPECT_FALSE(evaluate({op(DW_OP_skip, static_cast<uint64_t>(-3), 0)}, regs, nullptr, mem, &v)
                   .has_value());
}

// A hostile object's arithmetic at the edges of 64 bits (found by the unwind_rules fuzzer):
// INT64_MIN / -1 wraps as two's complement does instead of trapping.
TEST(UnwindCfi, DivisionOverflowWraps) {
  FakeMemory mem;
  RegisterSet regs;
  const uint64_t min = uint64_t{1} << 63;
  EXPECT_EQ(eval_ok({op(DW_OP_const8u, min), op(DW_OP_const1s, static_cast<uint64_t>(-1)),
                     op(DW_OP_div), op(DW_OP_stack_value)}, regs, mem),
            min);
  EXPECT_EQ(eval_ok({op(DW_OP_lit8), op(DW_OP_const1s, static_cast<uint64_t>(-1)), op(DW_OP_div),
                     op(DW_OP_stack_value)}, regs, mem),
            static_cast<uint64_t>(-8));
  bool v = false;
  EXPECT_FALSE(evaluate({op(DW_OP_lit8), op(DW_OP_lit0), op(DW_OP_div)}, regs, nullptr, mem, &v)
                   .has_value());  // by zero
}

// A typical -O2 frame after "push rbx; sub $16, rsp": CFA = rsp + 32, rip at CFA - 8,
// rbx at CFA - 16.
UnwindRow typical_row() {
  UnwindRow row;
  row.cfa.reg = kRegRsp;
  row.cfa.offset = 32;
  row.regs[kRegRip] = RegRule{RuleKind::kOffset, 0, -1, -8};
  row.regs[kRegRbx] = RegRule{RuleKind::kOffset, 0, -1, -16};
  row.regs[kRegRbp] = RegRule{RuleKind::kSameValue, 0, -1, 0};
  return row;  // every other register: kUndefined, as libdw reports "unspecified"
}

TEST(UnwindCfi, StepRestoresSavedAndPreservedRegisters) {
  FakeMemory mem;
  RegisterSet regs;
  regs.set(kRegRsp, 0x7000);
  regs.set(kRegRip, 0x401234);
  regs.set(kRegRbp, 0xbbbb);
  regs.set(12, 0x1212);  // r12: callee-saved, no rule
  regs.set(0, 0xaaaa);   // rax: call-clobbered
  mem.words[0x7000 + 32 - 8] = 0x402000;
  mem.words[0x7000 + 32 - 16] = 0x3333;
  auto r = step(typical_row(), regs, mem);
  ASSERT_TRUE(r.has_value()) << describe(r.error());
  EXPECT_FALSE(r->outermost);
  EXPECT_EQ(r->cfa, 0x7020u);
  EXPECT_EQ(r->caller.value[kRegRip], 0x402000u);
  EXPECT_EQ(r->caller.value[kRegRsp], 0x7020u);  // the CFA
  EXPECT_EQ(r->caller.value[kRegRbx], 0x3333u);
  EXPECT_EQ(r->caller.value[kRegRbp], 0xbbbbu);
  EXPECT_TRUE(r->caller.has(12));
  EXPECT_EQ(r->caller.value[12], 0x1212u);
  EXPECT_FALSE(r->caller.has(0));
  EXPECT_FALSE(r->caller.has(13));  // never known
}

TEST(UnwindCfi, StepStopsAtUndefinedReturnAddressAndReportsMissingData) {
  FakeMemory mem;
  RegisterSet regs;
  regs.set(kRegRsp, 0x7000);
  regs.set(kRegRip, 0x401000);
  // _start: .cfi_undefined rip -> the outermost frame.
  UnwindRow start = typical_row();
  start.regs[kRegRip] = RegRule{};
  auto r = step(start, regs, mem);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->outermost);

  // The return address slot is not in memory (beyond the snapshot).
  r = step(typical_row(), regs, mem);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, StepError::kMemory);
  EXPECT_EQ(r.error().value, 0x7018u);

  // A saved rbx that cannot be read only makes rbx unknown.
  mem.words[0x7018] = 0x402000;
  r = step(typical_row(), regs, mem);
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->caller.has(kRegRbx));

  // CFA from rbp, which is not known.
  UnwindRow fp = typical_row();
  fp.cfa.reg = kRegRbp;
  fp.cfa.offset = 16;
  r = step(fp, regs, mem);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, StepError::kUnknownRegister);
  EXPECT_EQ(r.error().value, uint64_t{kRegRbp});
}

TEST(UnwindCfi, StepWithExpressionRules) {
  // A signal frame: CFA and registers found through rsp with expressions.
  FakeMemory mem;
  RegisterSet regs;
  regs.set(kRegRsp, 0x5000);
  regs.set(kRegRip, 0x401000);
  mem.words[0x5000 + 0xa0] = 0x9000;    // saved rsp
  mem.words[0x5000 + 0xa8] = 0x401777;  // saved rip
  mem.words[0x5000 + 0x78] = 0x6666;    // saved rbp
  UnwindRow row;
  row.signal_frame = true;
  row.cfa.expression = true;
  row.cfa.expr = 0;
  row.exprs.push_back({op(DW_OP_breg7, 0xa0), op(DW_OP_deref)});
  // DW_CFA_expression: libdw prepends the CFA push; these ignore it and use rsp.
  row.exprs.push_back({op(DW_OP_call_frame_cfa), op(DW_OP_drop), op(DW_OP_breg7, 0xa8)});
  row.exprs.push_back({op(DW_OP_breg7, 0x78)});
  row.exprs.push_back({op(DW_OP_breg7, 0xa0)});
  row.regs[kRegRip] = RegRule{RuleKind::kExpression, 0, 1, 0};
  row.regs[kRegRbp] = RegRule{RuleKind::kExpression, 0, 2, 0};
  row.regs[kRegRsp] = RegRule{RuleKind::kExpression, 0, 3, 0};
  row.regs[1] = RegRule{RuleKind::kValOffset, 0, -1, 16};
  row.regs[2] = RegRule{RuleKind::kRegister, kRegRbp, -1, 0};
  auto r = step(row, regs, mem);
  ASSERT_TRUE(r.has_value()) << describe(r.error());
  EXPECT_EQ(r->cfa, 0x9000u);
  EXPECT_EQ(r->caller.value[kRegRip], 0x401777u);
  EXPECT_EQ(r->caller.value[kRegRbp], 0x6666u);
  EXPECT_EQ(r->caller.value[kRegRsp], 0x9000u);
  EXPECT_EQ(r->caller.value[1], 0x9010u);
  EXPECT_FALSE(r->caller.has(2));  // rbp of this frame is not known
}

TEST(UnwindStackTable, EqualStacksGetEqualIds) {
  StackTable t;
  uint32_t a = t.intern({1, 2, 3}, false);
  EXPECT_EQ(a, 1u);
  EXPECT_EQ(t.intern({1, 2, 3}, false), a);
  uint32_t b = t.intern({1, 2, 3}, true);  // the same frames, but known to be incomplete
  uint32_t c = t.intern({1, 2}, false);
  uint32_t d = t.intern({}, true);
  EXPECT_NE(b, a);
  EXPECT_NE(c, a);
  EXPECT_NE(d, c);
  EXPECT_EQ(t.size(), 4u);
  ASSERT_NE(t.get(b), nullptr);
  EXPECT_EQ(t.get(b)->frames, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_TRUE(t.get(b)->truncated);
  EXPECT_EQ(t.get(0), nullptr);
  EXPECT_EQ(t.get(5), nullptr);
}

TEST(UnwindSnapshotFile, RecordRoundTripAndValidation) {
  auto snap = std::make_unique<lw_stack_snapshot>();
  snap->ip = 0x401000;
  snap->sp = 0x7ffe0000;
  snap->bp = 0x7ffe0100;
  snap->alloc_addr = 0x5000;
  snap->tgid = 42;
  snap->tid = 43;
  snap->flags = LW_SNAPSHOT_IP_EXACT;
  snap->stack_size = 24;
  for (int i = 0; i < 24; ++i) snap->stack[i] = static_cast<uint8_t>(i * 7);
  const std::string path = leakwatch::testing::temp_path("snap");
  ASSERT_TRUE(write_snapshot_file(path, *snap).has_value());
  auto back = read_snapshot_file(path);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(std::memcmp(back->get(), snap.get(), LW_SNAPSHOT_HEADER_SIZE + 24), 0);

  std::string bytes(reinterpret_cast<const char*>(snap.get()), LW_SNAPSHOT_HEADER_SIZE + 24);
  EXPECT_TRUE(parse_snapshot(bytes).has_value());
  EXPECT_FALSE(parse_snapshot(bytes + "x").has_value());
  EXPECT_FALSE(parse_snapshot(bytes.substr(0, bytes.size() - 1)).has_value());
  snap->stack_size = LW_SNAPSHOT_MAX + 1;
  EXPECT_FALSE(write_snapshot_file(path, *snap).has_value());
}

}  // namespace
}  // namespace leakwatch::unwind
