#include "alloc/placement.h"

#include <capstone/capstone.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "elf/elf_symbols.h"

namespace leakwatch::alloc {
namespace {

// The kernel's x86-64 nops (arch/x86/include/asm/nops.h), indexed by length.  The kernel
// emulates exactly these byte sequences (and a bare 0x90).
constexpr std::array<std::array<uint8_t, 8>, 9> kKernelNops = {{
    {},
    {0x90},
    {0x66, 0x90},
    {0x0f, 0x1f, 0x00},
    {0x0f, 0x1f, 0x40, 0x00},
    {0x0f, 0x1f, 0x44, 0x00, 0x00},
    {0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00},
    {0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00},
    {0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
}};

bool is_legacy_prefix(uint8_t b) {
  switch (b) {
    case 0x26: case 0x2e: case 0x36: case 0x3e: case 0x64: case 0x65:
    case 0x66: case 0x67: case 0xf0: case 0xf2: case 0xf3:
      return true;
    default:
      return false;
  }
}

// Owns a Capstone handle configured for x86-64 with operand details.
class Disassembler {
 public:
  Disassembler() {
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &handle_) != CS_ERR_OK) {
      handle_ = 0;
      return;
    }
    cs_option(handle_, CS_OPT_DETAIL, CS_OPT_ON);
  }
  ~Disassembler() {
    if (handle_ != 0) cs_close(&handle_);
  }
  Disassembler(const Disassembler&) = delete;
  Disassembler& operator=(const Disassembler&) = delete;
  bool ok() const { return handle_ != 0; }
  csh get() const { return handle_; }

 private:
  csh handle_ = 0;
};

struct Insn {
  uint64_t offset = 0;
  uint16_t size = 0;
  std::string text;                     // "push r12"
  bool emulated = false;
  std::optional<uint64_t> branch_to;    // direct jump/call target (absolute), if any
  bool call = false;
  std::optional<uint64_t> rip_slot;     // call *disp32(%rip): the address it reads
  std::optional<std::string> impure;    // why it is not pure, if it is not
};

// The canonical 64-bit register for a general-purpose register of any width, or
// X86_REG_INVALID for anything else (flags, rip, vector, segment...).
x86_reg gpr64(unsigned reg) {
  switch (reg) {
    case X86_REG_AL: case X86_REG_AH: case X86_REG_AX: case X86_REG_EAX: case X86_REG_RAX:
      return X86_REG_RAX;
    case X86_REG_BL: case X86_REG_BH: case X86_REG_BX: case X86_REG_EBX: case X86_REG_RBX:
      return X86_REG_RBX;
    case X86_REG_CL: case X86_REG_CH: case X86_REG_CX: case X86_REG_ECX: case X86_REG_RCX:
      return X86_REG_RCX;
    case X86_REG_DL: case X86_REG_DH: case X86_REG_DX: case X86_REG_EDX: case X86_REG_RDX:
      return X86_REG_RDX;
    case X86_REG_SIL: case X86_REG_SI: case X86_REG_ESI: case X86_REG_RSI: return X86_REG_RSI;
    case X86_REG_DIL: case X86_REG_DI: case X86_REG_EDI: case X86_REG_RDI: return X86_REG_RDI;
    case X86_REG_SPL: case X86_REG_SP: case X86_REG_ESP: case X86_REG_RSP: return X86_REG_RSP;
    case X86_REG_BPL: case X86_REG_BP: case X86_REG_EBP: case X86_REG_RBP: return X86_REG_RBP;
    case X86_REG_R8B: case X86_REG_R8W: case X86_REG_R8D: case X86_REG_R8: return X86_REG_R8;
    case X86_REG_R9B: case X86_REG_R9W: case X86_REG_R9D: case X86_REG_R9: return X86_REG_R9;
    case X86_REG_R10B: case X86_REG_R10W: case X86_REG_R10D: case X86_REG_R10: return X86_REG_R10;
    case X86_REG_R11B: case X86_REG_R11W: case X86_REG_R11D: case X86_REG_R11: return X86_REG_R11;
    case X86_REG_R12B: case X86_REG_R12W: case X86_REG_R12D: case X86_REG_R12: return X86_REG_R12;
    case X86_REG_R13B: case X86_REG_R13W: case X86_REG_R13D: case X86_REG_R13: return X86_REG_R13;
    case X86_REG_R14B: case X86_REG_R14W: case X86_REG_R14D: case X86_REG_R14: return X86_REG_R14;
    case X86_REG_R15B: case X86_REG_R15W: case X86_REG_R15D: case X86_REG_R15: return X86_REG_R15;
    default:
      return X86_REG_INVALID;
  }
}

// Registers a pure instruction may write: scratch or callee-saved registers that carry no
// argument and are not the stack or frame pointer.
bool writable_register(unsigned reg) {
  if (reg == X86_REG_EFLAGS || reg == X86_REG_RIP || reg == X86_REG_EIP || reg == X86_REG_IP)
    return true;
  switch (gpr64(reg)) {
    case X86_REG_RAX: case X86_REG_RBX: case X86_REG_R10: case X86_REG_R11:
    case X86_REG_R12: case X86_REG_R13: case X86_REG_R14: case X86_REG_R15:
      return true;
    default:
      return false;
  }
}

// Instructions known to have no effect beyond their register and flag results (and, for
// the memory-destination forms, the memory write that is rejected separately).
bool side_effect_free(unsigned id) {
  switch (id) {
    case X86_INS_TEST: case X86_INS_CMP: case X86_INS_BT:
    case X86_INS_MOV: case X86_INS_MOVABS: case X86_INS_MOVZX: case X86_INS_MOVSX:
    case X86_INS_MOVSXD: case X86_INS_LEA:
    case X86_INS_XOR: case X86_INS_AND: case X86_INS_OR: case X86_INS_ADD: case X86_INS_SUB:
    case X86_INS_ADC: case X86_INS_SBB: case X86_INS_NOT: case X86_INS_NEG:
    case X86_INS_INC: case X86_INS_DEC:
    case X86_INS_SHL: case X86_INS_SHR: case X86_INS_SAR: case X86_INS_ROL: case X86_INS_ROR:
    case X86_INS_IMUL: case X86_INS_MUL: case X86_INS_BSWAP:
    case X86_INS_CDQE: case X86_INS_CWDE: case X86_INS_CQO: case X86_INS_CDQ:
    case X86_INS_ENDBR64: case X86_INS_ENDBR32: case X86_INS_NOP:
    case X86_INS_CMOVA: case X86_INS_CMOVAE: case X86_INS_CMOVB: case X86_INS_CMOVBE:
    case X86_INS_CMOVE: case X86_INS_CMOVG: case X86_INS_CMOVGE: case X86_INS_CMOVL:
    case X86_INS_CMOVLE: case X86_INS_CMOVNE: case X86_INS_CMOVNO: case X86_INS_CMOVNP:
    case X86_INS_CMOVNS: case X86_INS_CMOVO: case X86_INS_CMOVP: case X86_INS_CMOVS:
    case X86_INS_SETAE: case X86_INS_SETA: case X86_INS_SETBE: case X86_INS_SETB:
    case X86_INS_SETE: case X86_INS_SETGE: case X86_INS_SETG: case X86_INS_SETLE:
    case X86_INS_SETL: case X86_INS_SETNE: case X86_INS_SETNO: case X86_INS_SETNP:
    case X86_INS_SETNS: case X86_INS_SETO: case X86_INS_SETP: case X86_INS_SETS:
      return true;
    default:
      return false;
  }
}

// Instructions whose first operand is only read (no destination).
bool reads_only(unsigned id) {
  return id == X86_INS_TEST || id == X86_INS_CMP || id == X86_INS_BT || id == X86_INS_NOP ||
         id == X86_INS_LEA || id == X86_INS_ENDBR64 || id == X86_INS_ENDBR32;
}

bool in_group(const cs_insn* in, uint8_t group) {
  const cs_detail* d = in->detail;
  return std::find(d->groups, d->groups + d->groups_count, group) != d->groups + d->groups_count;
}

// nullopt when the instruction is pure (see placement.h), else why not.
std::optional<std::string> why_impure(csh h, const cs_insn* in) {
  for (uint8_t g : {CS_GRP_JUMP, CS_GRP_CALL, CS_GRP_RET, CS_GRP_INT, CS_GRP_IRET,
                    CS_GRP_PRIVILEGE}) {
    if (in_group(in, g)) return std::string("transfers control");
  }
  if (!side_effect_free(in->id)) return std::string("is not known to be side-effect free");
  const cs_x86& x = in->detail->x86;
  if (x.prefix[0] == X86_PREFIX_LOCK) return std::string("is locked");
  for (uint8_t i = 0; i < x.op_count; ++i) {
    const cs_x86_op& op = x.operands[i];
    if (op.type != X86_OP_MEM) continue;
    if ((op.access & CS_AC_WRITE) != 0 || (i == 0 && !reads_only(in->id)))
      return std::string("writes memory");
  }
  cs_regs reads, writes;
  uint8_t nreads = 0, nwrites = 0;
  if (cs_regs_access(h, in, reads, &nreads, writes, &nwrites) != CS_ERR_OK)
    return std::string("has unknown register effects");
  for (uint8_t i = 0; i < nwrites; ++i) {
    if (!writable_register(writes[i])) {
      const x86_reg full = gpr64(writes[i]);
      const char* name = cs_reg_name(h, full != X86_REG_INVALID ? static_cast<unsigned>(full) : writes[i]);
      const bool arg = full == X86_REG_RDI || full == X86_REG_RSI || full == X86_REG_RDX ||
                       full == X86_REG_RCX || full == X86_REG_R8 || full == X86_REG_R9;
      return fmt::format("writes {}{}", name ? name : "a register",
                         arg ? " (an argument register)" : "");
    }
  }
  return std::nullopt;
}

// Linear sweep over the whole body.  Bytes that do not decode are skipped one at a time so
// that branches after them are still seen; the gap shows as a jump in `offset`.
std::vector<Insn> decode_all(const Disassembler& dis, std::span<const uint8_t> code,
                             uint64_t vaddr) {
  std::vector<Insn> out;
  if (!dis.ok()) return out;
  cs_insn* in = cs_malloc(dis.get());
  if (in == nullptr) return out;
  const uint8_t* p = code.data();
  size_t left = code.size();
  uint64_t addr = vaddr;
  while (left > 0) {
    const uint8_t* start = p;
    if (!cs_disasm_iter(dis.get(), &p, &left, &addr, in)) {
      ++p;
      --left;
      ++addr;
      continue;
    }
    Insn d;
    d.offset = in->address - vaddr;
    d.size = in->size;
    d.text = in->op_str[0] != '\0' ? fmt::format("{} {}", in->mnemonic, in->op_str)
                                   : std::string(in->mnemonic);
    d.emulated = is_uprobe_emulated(std::span<const uint8_t>(start, in->size));
    const cs_x86& x = in->detail->x86;
    if ((in_group(in, CS_GRP_JUMP) || in_group(in, CS_GRP_CALL)) && x.op_count >= 1 &&
        x.operands[0].type == X86_OP_IMM) {
      d.branch_to = static_cast<uint64_t>(x.operands[0].imm);
    }
    d.call = in_group(in, CS_GRP_CALL);
    if (d.call && x.op_count >= 1 && x.operands[0].type == X86_OP_MEM &&
        x.operands[0].mem.base == X86_REG_RIP && x.operands[0].mem.index == X86_REG_INVALID) {
      d.rip_slot = in->address + in->size + static_cast<uint64_t>(x.operands[0].mem.disp);
    }
    d.impure = why_impure(dis.get(), in);
    out.push_back(std::move(d));
  }
  cs_free(in, 1);
  return out;
}

Placement at_entry(const std::vector<Insn>& insns, std::string why) {
  Placement p;
  p.offset = 0;
  if (!insns.empty() && insns[0].offset == 0) {
    p.emulated = insns[0].emulated;
    p.insn = insns[0].text;
  }
  p.reason = fmt::format("{}; probing the entry{}", why,
                         p.emulated ? " (emulated)" : " (single-stepped)");
  return p;
}

}  // namespace

bool is_uprobe_emulated(std::span<const uint8_t> insn) {
  const size_t n = insn.size();
  if (n == 0) return false;
  // push r64: the kernel takes one byte, or two with exactly the REX.B prefix.
  if (n == 1 && insn[0] >= 0x50 && insn[0] <= 0x57) return true;
  if (n == 2 && insn[0] == 0x41 && insn[1] >= 0x50 && insn[1] <= 0x57) return true;
  // nops: the kernel compares with its own table byte for byte.
  if (n < kKernelNops.size() && std::memcmp(insn.data(), kKernelNops[n].data(), n) == 0)
    return true;
  // Relative branches: skip prefixes; any 0x66 makes the kernel refuse.
  size_t i = 0;
  bool opsize = false;
  while (i < n && is_legacy_prefix(insn[i])) opsize |= insn[i++] == 0x66;
  if (i < n && insn[i] >= 0x40 && insn[i] <= 0x4f) ++i;  // REX
  if (i >= n || opsize) return false;
  const uint8_t op = insn[i];
  if (op == 0xeb || op == 0xe9 || op == 0xe8 || (op >= 0x70 && op <= 0x7f)) return true;
  return op == 0x0f && i + 1 < n && insn[i + 1] >= 0x80 && insn[i + 1] <= 0x8f;
}

Placement plan_probe(std::span<const uint8_t> code, uint64_t func_vaddr) {
  Disassembler dis;
  if (!dis.ok()) return Placement{0, false, "", "capstone unavailable; probing the entry"};
  if (code.empty()) return Placement{0, false, "", "no code; probing the entry"};
  const std::vector<Insn> insns = decode_all(dis, code, func_vaddr);
  if (insns.empty() || insns[0].offset != 0)
    return at_entry(insns, "the first instruction does not decode");
  if (insns[0].emulated) {
    return Placement{0, true, insns[0].text,
                     fmt::format("the first instruction '{}' is emulated", insns[0].text)};
  }

  uint64_t expected = 0;
  for (size_t i = 0; i < insns.size() && i < static_cast<size_t>(kMaxWalk); ++i) {
    const Insn& in = insns[i];
    if (in.offset != expected)
      return at_entry(insns, fmt::format("bytes at +{} do not decode", expected));
    if (in.emulated) {
      // Rule 3: nothing may jump into (0, site].
      for (const Insn& other : insns) {
        if (!other.branch_to || *other.branch_to <= func_vaddr) continue;
        const uint64_t target = *other.branch_to - func_vaddr;
        if (target <= in.offset) {
          return at_entry(insns, fmt::format("'{}' at +{} would be the site but '{}' at +{} "
                                             "branches to +{}",
                                             in.text, in.offset, other.text, other.offset,
                                             target));
        }
      }
      return Placement{in.offset, true, in.text,
                       fmt::format("'{}' at +{} is emulated and the {} instruction{} before it "
                                   "leave{} arguments, rsp and rbp untouched",
                                   in.text, in.offset, i, i == 1 ? "" : "s",
                                   i == 1 ? "s" : "")};
    }
    if (in.impure) {
      return at_entry(insns, fmt::format("'{}' at +{} {} before any emulated instruction",
                                         in.text, in.offset, *in.impure));
    }
    expected += in.size;
  }
  return at_entry(insns, fmt::format("no emulated instruction after a pure prefix in the "
                                     "first {} instructions",
                                     std::min<size_t>(insns.size(), kMaxWalk)));
}

std::vector<CallSite> call_sites(std::span<const uint8_t> code, uint64_t func_vaddr) {
  Disassembler dis;
  std::vector<CallSite> out;
  for (const Insn& in : decode_all(dis, code, func_vaddr)) {
    if (in.call) out.push_back({in.offset, in.branch_to, in.rip_slot});
  }
  return out;
}

Result<Placement> plan_symbol_probe(const elf::ElfObject& obj, const elf::ElfSymbol& sym) {
  if (sym.size == 0) {
    // At most one instruction (15 bytes), but not past the end of the file-backed segment.
    auto code = obj.read_code(sym.value, 15);
    for (uint64_t len = 14; !code && len > 0; --len) code = obj.read_code(sym.value, len);
    if (!code) return std::unexpected(code.error());
    Disassembler dis;
    const auto insns = decode_all(dis, *code, sym.value);
    Placement p = at_entry(insns, fmt::format("{} has no size, so branches into it cannot be "
                                              "checked", sym.name));
    return p;
  }
  auto code = obj.read_code(sym.value, sym.size);
  if (!code) return std::unexpected(code.error());
  return plan_probe(*code, sym.value);
}

}  // namespace leakwatch::alloc
