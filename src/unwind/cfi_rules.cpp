#include "unwind/cfi_rules.h"

#include <dwarf.h>
#include <elfutils/libdw.h>

#include <algorithm>

namespace leakwatch::unwind {
namespace {

bool callee_saved(int r) {
  return r == kRegRbx || r == kRegRbp || (r >= 12 && r <= 15);
}

Expr to_expr(const Dwarf_Op* ops, size_t nops) {
  Expr e(nops);
  for (size_t i = 0; i < nops; ++i) {
    e[i] = ExprOp{ops[i].atom, ops[i].number, ops[i].number2, ops[i].offset};
  }
  return e;
}

// DW_OP_bregN / DW_OP_bregx: register + offset.
bool as_breg(const Dwarf_Op& op, int& reg, int64_t& offset) {
  if (op.atom >= DW_OP_breg0 && op.atom <= DW_OP_breg31) {
    reg = op.atom - DW_OP_breg0;
    offset = static_cast<int64_t>(op.number);
    return true;
  }
  if (op.atom == DW_OP_bregx) {
    reg = static_cast<int>(op.number);
    offset = static_cast<int64_t>(op.number2);
    return true;
  }
  return false;
}

Result<RegRule> rule_from_ops(UnwindRow& row, int regno, Dwarf_Op* ops_mem, Dwarf_Op* ops,
                              size_t nops) {
  RegRule rule;
  if (nops == 0) {
    // libdw: no ops and a null pointer means same_value; ops_mem means undefined.
    rule.kind = ops == nullptr ? RuleKind::kSameValue : RuleKind::kUndefined;
    return rule;
  }
  (void)ops_mem;
  const bool value = ops[nops - 1].atom == DW_OP_stack_value;
  const size_t body = value ? nops - 1 : nops;
  // CFA + n: [call_frame_cfa] or [call_frame_cfa, plus_uconst n] (n may be "negative").
  if (body >= 1 && body <= 2 && ops[0].atom == DW_OP_call_frame_cfa &&
      (body == 1 || ops[1].atom == DW_OP_plus_uconst)) {
    rule.kind = value ? RuleKind::kValOffset : RuleKind::kOffset;
    rule.offset = body == 2 ? static_cast<int64_t>(ops[1].number) : 0;
    return rule;
  }
  // In register R: [regN] / [regx R] (a location), or [bregR 0, stack_value] (a value).
  int reg = -1;
  int64_t off = 0;
  if (!value && body == 1 && ops[0].atom >= DW_OP_reg0 && ops[0].atom <= DW_OP_reg31) {
    reg = ops[0].atom - DW_OP_reg0;
  } else if (!value && body == 1 && ops[0].atom == DW_OP_regx) {
    reg = static_cast<int>(ops[0].number);
  } else if (value && body == 1 && as_breg(ops[0], reg, off) && off == 0) {
    // reg already set
  } else {
    reg = -1;
  }
  if (reg >= 0) {
    if (reg >= kNumRegs) return fail("CFI rule of register {} uses register {}", regno, reg);
    rule.kind = RuleKind::kRegister;
    rule.reg = static_cast<uint8_t>(reg);
    return rule;
  }
  rule.kind = value ? RuleKind::kValExpression : RuleKind::kExpression;
  rule.expr = static_cast<int32_t>(row.exprs.size());
  row.exprs.push_back(to_expr(ops, body));
  return rule;
}

}  // namespace

Result<UnwindRow> row_from_frame(Dwarf_Frame* frame) {
  UnwindRow row;
  Dwarf_Addr start = 0, end = 0;
  bool signalp = false;
  int ra = dwarf_frame_info(frame, &start, &end, &signalp);
  if (ra < 0) return fail("dwarf_frame_info: {}", dwarf_errmsg(-1));
  if (ra >= kNumRegs) return fail("return address in DWARF register {}", ra);
  row.start = start;
  row.end = end;
  row.signal_frame = signalp;
  row.return_address_reg = static_cast<uint8_t>(ra);

  Dwarf_Op* ops = nullptr;
  size_t nops = 0;
  if (dwarf_frame_cfa(frame, &ops, &nops) != 0) {
    return fail("dwarf_frame_cfa: {}", dwarf_errmsg(-1));
  }
  if (nops == 0) return fail("CFI does not define the CFA at {:#x}", start);
  int reg = -1;
  int64_t off = 0;
  if (nops == 1 && as_breg(ops[0], reg, off)) {
    if (reg >= kNumRegs) return fail("CFA based on DWARF register {}", reg);
    row.cfa.reg = static_cast<uint8_t>(reg);
    row.cfa.offset = off;
  } else {
    row.cfa.expression = true;
    row.cfa.expr = static_cast<int32_t>(row.exprs.size());
    row.exprs.push_back(to_expr(ops, nops));
  }

  for (int r = 0; r < kNumRegs; ++r) {
    Dwarf_Op ops_mem[3];
    Dwarf_Op* rops = nullptr;
    size_t rnops = 0;
    if (dwarf_frame_register(frame, r, ops_mem, &rops, &rnops) != 0) {
      return fail("dwarf_frame_register {}: {}", r, dwarf_errmsg(-1));
    }
    auto rule = rule_from_ops(row, r, ops_mem, rops, rnops);
    if (!rule) return std::unexpected(rule.error());
    row.regs[r] = *rule;
  }
  return row;
}

std::expected<uint64_t, StepError> evaluate(const Expr& expr, const RegisterSet& regs,
                                            const uint64_t* cfa, MemoryReader& mem,
                                            bool* is_value) {
  // CFI expressions are short (PLT entries, signal frames); a small fixed stack suffices.
  constexpr size_t kMaxStack = 64;
  uint64_t stack[kMaxStack];
  size_t depth = 0;
  auto bad = [](uint64_t atom) {
    return std::unexpected(StepError{StepError::kBadExpression, atom});
  };
  auto unknown = [](int reg) {
    return std::unexpected(StepError{StepError::kUnknownRegister, static_cast<uint64_t>(reg)});
  };
  *is_value = false;
  // Guards against DW_OP_skip/bra loops.
  size_t budget = 10000;
  for (size_t i = 0; i < expr.size(); ++i) {
    if (budget-- == 0) return bad(0);
    const ExprOp& op = expr[i];
    const uint8_t a = op.atom;
    auto push = [&](uint64_t v) -> bool {
      if (depth == kMaxStack) return false;
      stack[depth++] = v;
      return true;
    };
    if (a >= DW_OP_lit0 && a <= DW_OP_lit31) {
      if (!push(a - DW_OP_lit0)) return bad(a);
      continue;
    }
    if (a >= DW_OP_breg0 && a <= DW_OP_breg31) {
      int r = a - DW_OP_breg0;
      if (r >= kNumRegs) return bad(a);
      if (!regs.has(r)) return unknown(r);
      if (!push(regs.value[r] + op.number)) return bad(a);
      continue;
    }
    switch (a) {
      case DW_OP_addr:
      case DW_OP_const1u: case DW_OP_const1s: case DW_OP_const2u: case DW_OP_const2s:
      case DW_OP_const4u: case DW_OP_const4s: case DW_OP_const8u: case DW_OP_const8s:
      case DW_OP_constu: case DW_OP_consts:
        // libdw stores signed constants sign-extended in `number`.
        if (!push(op.number)) return bad(a);
        break;
      case DW_OP_bregx: {
        if (op.number >= kNumRegs) return bad(a);
        int r = static_cast<int>(op.number);
        if (!regs.has(r)) return unknown(r);
        if (!push(regs.value[r] + op.number2)) return bad(a);
        break;
      }
      case DW_OP_call_frame_cfa:
        if (cfa == nullptr || !push(*cfa)) return bad(a);
        break;
      case DW_OP_dup:
        if (depth < 1 || !push(stack[depth - 1])) return bad(a);
        break;
      case DW_OP_drop:
        if (depth < 1) return bad(a);
        --depth;
        break;
      case DW_OP_over:
        if (depth < 2 || !push(stack[depth - 2])) return bad(a);
        break;
      case DW_OP_pick:
        if (op.number >= depth || !push(stack[depth - 1 - op.number])) return bad(a);
        break;
      case DW_OP_swap:
        if (depth < 2) return bad(a);
        std::swap(stack[depth - 1], stack[depth - 2]);
        break;
      case DW_OP_rot:
        if (depth < 3) return bad(a);
        // top -> third, second -> top, third -> second
        std::rotate(stack + depth - 3, stack + depth - 1, stack + depth);
        break;
      case DW_OP_deref:
      case DW_OP_deref_size: {
        if (depth < 1) return bad(a);
        size_t size = a == DW_OP_deref ? 8 : op.number;
        if (size == 0 || size > 8) return bad(a);
        uint64_t v = 0;  // little-endian: a short read zero-extends
        if (!mem.read(stack[depth - 1], &v, size)) {
          return std::unexpected(StepError{StepError::kMemory, stack[depth - 1]});
        }
        stack[depth - 1] = v;
        break;
      }
      case DW_OP_plus_uconst:
        if (depth < 1) return bad(a);
        stack[depth - 1] += op.number;
        break;
      case DW_OP_neg:
      case DW_OP_not:
      case DW_OP_abs: {
        if (depth < 1) return bad(a);
        uint64_t& v = stack[depth - 1];
        if (a == DW_OP_neg) v = 0 - v;
        if (a == DW_OP_not) v = ~v;
        if (a == DW_OP_abs && static_cast<int64_t>(v) < 0) v = 0 - v;
        break;
      }
      case DW_OP_and: case DW_OP_or: case DW_OP_xor: case DW_OP_plus: case DW_OP_minus:
      case DW_OP_mul: case DW_OP_div: case DW_OP_mod: case DW_OP_shl: case DW_OP_shr:
      case DW_OP_shra: case DW_OP_eq: case DW_OP_ne: case DW_OP_lt: case DW_OP_le:
      case DW_OP_gt: case DW_OP_ge: {
        if (depth < 2) return bad(a);
        uint64_t b = stack[--depth];   // top
        uint64_t x = stack[depth - 1];  // second
        int64_t sx = static_cast<int64_t>(x), sb = static_cast<int64_t>(b);
        uint64_t r = 0;
        switch (a) {
          case DW_OP_and: r = x & b; break;
          case DW_OP_or: r = x | b; break;
          case DW_OP_xor: r = x ^ b; break;
          case DW_OP_plus: r = x + b; break;
          case DW_OP_minus: r = x - b; break;
          case DW_OP_mul: r = x * b; break;
          case DW_OP_div:
            if (b == 0) return bad(a);
            // INT64_MIN / -1 overflows; two's complement wraps it to itself.
            r = sb == -1 ? 0 - x : static_cast<uint64_t>(sx / sb);
            break;
          case DW_OP_mod:
            if (b == 0) return bad(a);
            r = x % b;
            break;
          case DW_OP_shl: r = b >= 64 ? 0 : x << b; break;
          case DW_OP_shr: r = b >= 64 ? 0 : x >> b; break;
          case DW_OP_shra: r = static_cast<uint64_t>(sx >> std::min<uint64_t>(b, 63)); break;
          // Comparisons are signed (DWARF: generic type).
          case DW_OP_eq: r = sx == sb; break;
          case DW_OP_ne: r = sx != sb; break;
          case DW_OP_lt: r = sx < sb; break;
          case DW_OP_le: r = sx <= sb; break;
          case DW_OP_gt: r = sx > sb; break;
          case DW_OP_ge: r = sx >= sb; break;
        }
        stack[depth - 1] = r;
        break;
      }
      case DW_OP_skip:
      case DW_OP_bra: {
        if (a == DW_OP_bra) {
          if (depth < 1) return bad(a);
          if (stack[--depth] == 0) break;
        }
        // The target is relative to the end of this 3-byte operation.
        uint64_t target = op.offset + 3 + static_cast<uint64_t>(static_cast<int64_t>(
                                              static_cast<int16_t>(op.number)));
        auto it = std::find_if(expr.begin(), expr.end(),
                               [&](const ExprOp& o) { return o.offset == target; });
        if (it == expr.end()) {
          // A jump to the very end finishes the expression.
          if (!expr.empty() && target > expr.back().offset) {
            i = expr.size();
            break;
          }
          return bad(a);
        }
        i = static_cast<size_t>(it - expr.begin()) - 1;  // the loop's ++i lands on it
        break;
      }
      case DW_OP_nop:
        break;
      case DW_OP_stack_value:
        if (i + 1 != expr.size()) return bad(a);
        *is_value = true;
        break;
      default:
        return bad(a);
    }
  }
  if (depth == 0) return bad(0);
  return stack[depth - 1];
}

std::expected<StepResult, StepError> step(const UnwindRow& row, const RegisterSet& regs,
                                          MemoryReader& mem) {
  StepResult out;
  // The CFA: almost always rsp or rbp plus a constant.
  if (!row.cfa.expression) {
    if (!regs.has(row.cfa.reg)) {
      return std::unexpected(StepError{StepError::kUnknownRegister, row.cfa.reg});
    }
    out.cfa = regs.value[row.cfa.reg] + static_cast<uint64_t>(row.cfa.offset);
  } else {
    bool is_value = false;
    auto v = evaluate(row.exprs[row.cfa.expr], regs, nullptr, mem, &is_value);
    if (!v) return std::unexpected(v.error());
    out.cfa = *v;
  }

  for (int r = 0; r < kNumRegs; ++r) {
    const RegRule& rule = row.regs[r];
    switch (rule.kind) {
      case RuleKind::kUndefined:
        if (r == kRegRsp) {
          out.caller.set(r, out.cfa);
        } else if (callee_saved(r) && regs.has(r)) {
          out.caller.set(r, regs.value[r]);
        }
        break;
      case RuleKind::kSameValue:
        if (r == kRegRsp) {
          out.caller.set(r, out.cfa);
        } else if (regs.has(r)) {
          out.caller.set(r, regs.value[r]);
        }
        break;
      case RuleKind::kOffset: {
        uint64_t v = 0;
        uint64_t address = out.cfa + static_cast<uint64_t>(rule.offset);
        if (!mem.read(address, &v, sizeof v)) {
          // A register we need (rip) is fatal; others just become unknown, since a frame
          // further out may never need them.
          if (r == row.return_address_reg) {
            return std::unexpected(StepError{StepError::kMemory, address});
          }
          break;
        }
        out.caller.set(r, v);
        break;
      }
      case RuleKind::kValOffset:
        out.caller.set(r, out.cfa + static_cast<uint64_t>(rule.offset));
        break;
      case RuleKind::kRegister:
        if (regs.has(rule.reg)) out.caller.set(r, regs.value[rule.reg]);
        break;
      case RuleKind::kExpression:
      case RuleKind::kValExpression: {
        bool is_value = false;
        auto v = evaluate(row.exprs[rule.expr], regs, &out.cfa, mem, &is_value);
        if (v && rule.kind == RuleKind::kExpression && !is_value) {
          uint64_t loaded = 0;
          if (!mem.read(*v, &loaded, sizeof loaded)) {
            v = std::unexpected(StepError{StepError::kMemory, *v});
          } else {
            v = loaded;
          }
        }
        if (!v) {
          if (r == row.return_address_reg) return std::unexpected(v.error());
          break;
        }
        out.caller.set(r, *v);
        break;
      }
    }
  }
  // A caller-saved register is unknown after a call unless the row restored it; the
  // callee's value is of no use to the caller (rules above only copy callee-saved ones).
  const RegRule& ra = row.regs[row.return_address_reg];
  if (ra.kind == RuleKind::kUndefined) {
    out.outermost = true;
    return out;
  }
  if (!out.caller.has(row.return_address_reg)) {
    return std::unexpected(StepError{StepError::kUnknownRegister, row.return_address_reg});
  }
  out.caller.set(kRegRip, out.caller.value[row.return_address_reg]);
  return out;
}

std::string describe(const StepError& error) {
  switch (error.kind) {
    case StepError::kUnknownRegister:
      return fmt::format("value of DWARF register {} unknown", error.value);
    case StepError::kMemory:
      return fmt::format("memory at {:#x} not available", error.value);
    case StepError::kBadExpression:
      return fmt::format("unsupported CFI expression (DW_OP {:#x})", error.value);
  }
  return "unknown";
}

}  // namespace leakwatch::unwind
