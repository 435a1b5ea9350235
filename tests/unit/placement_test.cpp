// plan_probe on hand-assembled functions (one per rule of placement.h; each listed with its
// disassembly as GNU as/objdump print it), then on this machine's real libc and libstdc++.
#include "alloc/placement.h"

#include <capstone/capstone.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "elf/elf_symbols.h"

namespace leakwatch::alloc {
namespace {

using namespace leakwatch::elf;

constexpr uint64_t kBase = 0x401000;

Placement plan(const std::vector<uint8_t>& code) { return plan_probe(code, kBase); }

// ---- the kernel's emulation set --------------------------------------------------------

TEST(UprobeEmulated, MatchesTheKernelsList) {
  using V = std::vector<uint8_t>;
  EXPECT_TRUE(is_uprobe_emulated(V{0x55}));              // push rbp
  EXPECT_TRUE(is_uprobe_emulated(V{0x41, 0x54}));        // push r12
  EXPECT_FALSE(is_uprobe_emulated(V{0x66, 0x55}));       // push bp: 16-bit, not emulated
  EXPECT_TRUE(is_uprobe_emulated(V{0xeb, 0x02}));        // jmp rel8
  EXPECT_TRUE(is_uprobe_emulated(V{0xe9, 0, 0, 0, 0}));  // jmp rel32
  EXPECT_TRUE(is_uprobe_emulated(V{0xe8, 0, 0, 0, 0}));  // call rel32
  EXPECT_TRUE(is_uprobe_emulated(V{0x74, 0x05}));        // je rel8
  EXPECT_TRUE(is_uprobe_emulated(V{0x0f, 0x85, 0, 0, 0, 0}));   // jne rel32
  EXPECT_TRUE(is_uprobe_emulated(V{0xf2, 0xe9, 0, 0, 0, 0}));   // bnd jmp rel32
  EXPECT_FALSE(is_uprobe_emulated(V{0x66, 0xe9, 0, 0}));        // jmp rel16: refused
  EXPECT_TRUE(is_uprobe_emulated(V{0x90}));                     // nop
  EXPECT_TRUE(is_uprobe_emulated(V{0x66, 0x90}));               // xchg ax,ax
  EXPECT_TRUE(is_uprobe_emulated(V{0x0f, 0x1f, 0x44, 0x00, 0x00}));  // nopl 0(rax,rax,1)
  EXPECT_TRUE(is_uprobe_emulated(V{0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0}));
  EXPECT_FALSE(is_uprobe_emulated(V{0x0f, 0x1f, 0x04, 0x00}));  // a nop, not the kernel's
  EXPECT_FALSE(is_uprobe_emulated(V{0x48, 0x85, 0xff}));        // test rdi,rdi
  EXPECT_FALSE(is_uprobe_emulated(V{0xf3, 0x0f, 0x1e, 0xfa}));  // endbr64
  EXPECT_FALSE(is_uprobe_emulated(V{0xc3}));                    // ret
  EXPECT_FALSE(is_uprobe_emulated(V{0xff, 0x25, 0, 1, 0, 0}));  // jmp *0x100(rip)
  EXPECT_FALSE(is_uprobe_emulated(V{}));
}

// ---- rule 1: the first instruction is emulated -> offset 0 ------------------------------

TEST(PlanProbe, EmulatedFirstInstruction) {
  // 0: 55        push rbp
  // 1: 48 89 e5  mov rbp,rsp
  // 4: 5d        pop rbp
  // 5: c3        ret
  auto p = plan({0x55, 0x48, 0x89, 0xe5, 0x5d, 0xc3});
  EXPECT_EQ(p.offset, 0u);
  EXPECT_TRUE(p.emulated);
  EXPECT_EQ(p.insn, "push rbp");
  EXPECT_FALSE(p.reason.empty());
}

TEST(PlanProbe, EmulatedNopFirst) {
  // 0: 0f 1f 44 00 00  nop dword ptr [rax+rax*1+0x0]   (the kernel's 5-byte nop)
  // 5: 55              push rbp
  // 6: c3              ret
  auto p = plan({0x0f, 0x1f, 0x44, 0x00, 0x00, 0x55, 0xc3});
  EXPECT_EQ(p.offset, 0u);
  EXPECT_TRUE(p.emulated);
}

TEST(PlanProbe, CallFirstIsEmulated) {
  // 0: e8 52 ff ff ff  call -0xa9 (outside the function)
  // 5: c3              ret
  auto p = plan({0xe8, 0x52, 0xff, 0xff, 0xff, 0xc3});
  EXPECT_EQ(p.offset, 0u);
  EXPECT_TRUE(p.emulated);
}

// ---- rule 1: a pure prefix, then the emulated site ---------------------------------------

TEST(PlanProbe, PurePrefixThenPush) {
  // posix_memalign-like.
  //  0: 80 3d 10 00 00 00 00  cmp byte ptr [rip+0x10],0x0
  //  7: 41 54                 push r12
  //  9: 49 89 d4              mov r12,rdx
  //  c: 41 5c                 pop r12
  //  e: c3                    ret
  auto p = plan({0x80, 0x3d, 0x10, 0, 0, 0, 0, 0x41, 0x54, 0x49, 0x89, 0xd4, 0x41, 0x5c, 0xc3});
  EXPECT_EQ(p.offset, 7u);
  EXPECT_TRUE(p.emulated);
  EXPECT_EQ(p.insn, "push r12");
}

TEST(PlanProbe, Endbr64ThenPush) {
  // 0: f3 0f 1e fa  endbr64
  // 4: 55           push rbp
  // 5: 5d           pop rbp
  // 6: c3           ret
  auto p = plan({0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x5d, 0xc3});
  EXPECT_EQ(p.offset, 4u);
  EXPECT_TRUE(p.emulated);
  EXPECT_EQ(p.insn, "push rbp");
}

TEST(PlanProbe, NonArgumentRegisterWritesArePure) {
  // mmap-like: r10 and flags only.
  //  0: 41 89 ca              mov r10d,ecx
  //  3: 41 f7 c1 ff 0f 00 00  test r9d,0xfff
  //  a: 75 01                 jne 0xd
  //  c: c3                    ret
  //  d: c3                    ret
  auto p = plan({0x41, 0x89, 0xca, 0x41, 0xf7, 0xc1, 0xff, 0x0f, 0, 0, 0x75, 0x01, 0xc3, 0xc3});
  EXPECT_EQ(p.offset, 10u);
  EXPECT_TRUE(p.emulated);

  // 0: 45 31 db  xor r11d,r11d
  // 3: 53        push rbx
  // 4: c3        ret
  p = plan({0x45, 0x31, 0xdb, 0x53, 0xc3});
  EXPECT_EQ(p.offset, 3u);
  EXPECT_TRUE(p.emulated);
}

TEST(PlanProbe, KernelUnknownNopIsPureNotASite) {
  // 0: 0f 1f 04 00  nop dword ptr [rax+rax*1]  (a valid nop, but not in the kernel's table)
  // 4: 55           push rbp
  // 5: 5d           pop rbp
  // 6: c3           ret
  auto p = plan({0x0f, 0x1f, 0x04, 0x00, 0x55, 0x5d, 0xc3});
  EXPECT_EQ(p.offset, 4u);
  EXPECT_TRUE(p.emulated);

  // 0: 66 2e 0f 1f 84 00 00 00 00 00  cs nop word ptr [rax+rax*1+0x0]
  // a: 55                             push rbp
  // b: c3                             ret
  p = plan({0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0, 0x55, 0xc3});
  EXPECT_EQ(p.offset, 10u);
  EXPECT_TRUE(p.emulated);
}

// ---- rule 1: an impure prefix -> offset 0 ------------------------------------------------

TEST(PlanProbe, PrefixWritingAnArgumentRegisterFallsBack) {
  // reallocarray-like: mul writes rdx (the third argument).
  // 0: 48 89 f0  mov rax,rsi
  // 3: 48 f7 e2  mul rdx
  // 6: 53        push rbx
  // 7: 5b        pop rbx
  // 8: c3        ret
  auto p = plan({0x48, 0x89, 0xf0, 0x48, 0xf7, 0xe2, 0x53, 0x5b, 0xc3});
  EXPECT_EQ(p.offset, 0u);
  EXPECT_FALSE(p.emulated);
  EXPECT_EQ(p.insn, "mov rax, rsi");
  EXPECT_NE(p.reason.find("rdx"), std::string::npos) << p.reason;

  // 0: 31 ff  xor edi,edi     (sub-register of rdi)
  // 2: 53     push rbx
  // 3: c3     ret
  p = plan({0x31, 0xff, 0x53, 0xc3});
  EXPECT_EQ(p.offset, 0u);
  EXPECT_FALSE(p.emulated);
  EXPECT_NE(p.reason.find("rdi"), std::string::npos) << p.reason;

  // 0: be 01 00 00 00  mov esi,0x1
  // 5: 53              push rbx
  // 6: c3              ret
  p = plan({0xbe, 0x01, 0, 0, 0, 0x53, 0xc3});
  EXPECT_EQ(p.offset, 0u);
  EXPECT_NE(p.reason.find("rsi"), std::string::npos) << p.reason;
}

TEST(PlanProbe, PrefixTouchingTheStackFallsBack) {
  // 0: 48 83 ec 08  sub rsp,0x8      (rsp must stay as at entry)
  // 4: 53           push rbx
  // 5: c3           ret
  auto p = plan({0x48, 0x83, 0xec, 0x08, 0x53, 0xc3});
  EXPECT_EQ(p.offset, 0u);
  EXPECT_FALSE(p.emulated);
  EXPECT_NE(p.reason.find("rsp"), std::string::npos) << p.reason;

  // 0: 48 89 44 24 08  mov qword ptr [rsp+0x8],rax   (writes memory)
  // 5: 53              push rbx
  // 6: 5b              pop rbx
  // 7: c3              ret
  p = plan({0x48, 0x89, 0x44, 0x24, 0x08, 0x53, 0x5b, 0xc3});
  EXPECT_EQ(p.offset, 0u);
  EXPECT_NE(p.reason.find("memory"), std::string::npos) << p.reason;

  // 0: f0 48 83 05 10 00 00 00 01  lock add qword ptr [rip+0x10],0x1
  // 9: 53                          push rbx
  // a: c3                          ret
  p = plan({0xf0, 0x48, 0x83, 0x05, 0x10, 0, 0, 0, 0x01, 0x53, 0xc3});
  EXPECT_EQ(p.offset, 0u);
  EXPECT_FALSE(p.emulated);
}

TEST(PlanProbe, SyscallPrefixFallsBack) {
  // munmap-like.
  // 0: b8 0b 00 00 00  mov eax,0xb
  // 5: 0f 05           syscall
  // 7: 53              push rbx
  // 8: c3              ret
  auto p = plan({0xb8, 0x0b, 0, 0, 0, 0x0f, 0x05, 0x53, 0xc3});
  EXPECT_EQ(p.offset, 0u);
  EXPECT_FALSE(p.emulated);
  EXPECT_EQ(p.insn, "mov eax, 0xb");
  EXPECT_NE(p.reason.find("syscall"), std::string::npos) << p.reason;
}

// ---- rule 2: branches in the prefix --------------------------------------------------------
// A branch is never pure, so the walk stops at the first one.  If the kernel emulates it,
// it is the first emulated instruction and everything before it was pure: it is the site
// (the probe fires before the branch is taken or not, with the arguments intact).  If it is
// not emulated, there is no site reached on every call: offset 0.

TEST(PlanProbe, EmulatedBranchAfterPurePrefixIsTheSite) {
  // free-like.
  // 0: 48 85 ff  test rdi,rdi
  // 3: 74 02     je 0x7
  // 5: 55        push rbp
  // 6: 5d        pop rbp
  // 7: c3        ret
  auto p = plan({0x48, 0x85, 0xff, 0x74, 0x02, 0x55, 0x5d, 0xc3});
  EXPECT_EQ(p.offset, 3u);
  EXPECT_TRUE(p.emulated);
  EXPECT_EQ(p.insn, "je 0x401007");
}

TEST(PlanProbe, NonEmulatedBranchInPrefixFallsBack) {
  // 0: 48 85 ff           test rdi,rdi
  // 3: ff 25 00 01 00 00  jmp qword ptr [rip+0x100]
  auto p = plan({0x48, 0x85, 0xff, 0xff, 0x25, 0x00, 0x01, 0x00, 0x00});
  EXPECT_EQ(p.offset, 0u);
  EXPECT_FALSE(p.emulated);

  // 0: 31 c0  xor eax,eax
  // 2: c3     ret
  p = plan({0x31, 0xc0, 0xc3});
  EXPECT_EQ(p.offset, 0u);
  EXPECT_FALSE(p.emulated);
}

// ---- rule 3: the site must not be a branch target ----------------------------------------

TEST(PlanProbe, SiteThatIsABranchTargetFallsBack) {
  //  0: 80 3d 10 00 00 00 00  cmp byte ptr [rip+0x10],0x0
  //  7: 53                    push rbx        <- would be the site
  //  8: 48 89 fb              mov rbx,rdi
  //  b: 5b                    pop rbx
  //  c: 75 f9                 jne 0x7         <- but this loops back to it
  //  e: c3                    ret
  auto p = plan({0x80, 0x3d, 0x10, 0, 0, 0, 0, 0x53, 0x48, 0x89, 0xfb, 0x5b, 0x75, 0xf9, 0xc3});
  EXPECT_EQ(p.offset, 0u);
  EXPECT_FALSE(p.emulated);
  EXPECT_NE(p.reason.find("+12"), std::string::npos) << p.reason;
}

TEST(PlanProbe, BranchIntoThePrefixFallsBack) {
  //  0: b8 01 00 00 00  mov eax,0x1
  //  5: 48 85 ff        test rdi,rdi   <- a loop comes back here
  //  8: 53              push rbx       <- would be the site
  //  9: 5b              pop rbx
  //  a: ff c8           dec eax
  //  c: 75 f7           jne 0x5
  //  e: c3              ret
  auto p = plan({0xb8, 0x01, 0, 0, 0, 0x48, 0x85, 0xff, 0x53, 0x5b, 0xff, 0xc8, 0x75, 0xf7, 0xc3});
  EXPECT_EQ(p.offset, 0u);
  EXPECT_FALSE(p.emulated);
}

TEST(PlanProbe, BranchToTheEntryIsHarmless) {
  //  0: 48 85 ff  test rdi,rdi   <- the loop returns to the entry
  //  3: 53        push rbx       <- the site
  //  4: 5b        pop rbx
  //  5: ff cf     dec edi
  //  7: 75 f7     jne 0x0
  //  9: c3        ret
  auto p = plan({0x48, 0x85, 0xff, 0x53, 0x5b, 0xff, 0xcf, 0x75, 0xf7, 0xc3});
  EXPECT_EQ(p.offset, 3u);
  EXPECT_TRUE(p.emulated);
}

// ---- walk limit and bad input ------------------------------------------------------------

TEST(PlanProbe, WalkStopsAfterKMaxWalkInstructions) {
  // 0..10: 9 x (85 c0  test eax,eax)
  // 12:    53          push rbx
  // 13:    c3          ret
  std::vector<uint8_t> code;
  for (int i = 0; i < 9; ++i) code.insert(code.end(), {0x85, 0xc0});
  code.insert(code.end(), {0x53, 0xc3});
  auto p = plan(code);
  EXPECT_EQ(p.offset, 0u);
  EXPECT_FALSE(p.emulated);
  // With kMaxWalk - 1 pure instructions the push is the kMaxWalk-th and is found.
  code.erase(code.begin(), code.begin() + 2 * (9 - (kMaxWalk - 1)));
  p = plan(code);
  EXPECT_EQ(p.offset, static_cast<uint64_t>(2 * (kMaxWalk - 1)));
  EXPECT_TRUE(p.emulated);
}

TEST(PlanProbe, EmptyAndUndecodableCode) {
  auto p = plan({});
  EXPECT_EQ(p.offset, 0u);
  EXPECT_FALSE(p.emulated);
  EXPECT_FALSE(p.reason.empty());
  // 0x06 (push es) does not exist in 64-bit mode.
  p = plan({0x06, 0x55, 0xc3});
  EXPECT_EQ(p.offset, 0u);
  EXPECT_FALSE(p.emulated);
  // A truncated instruction after a pure one.
  p = plan({0x48, 0x85, 0xff, 0x0f});
  EXPECT_EQ(p.offset, 0u);
  EXPECT_FALSE(p.emulated);
}

// ---- the real libc and libstdc++ of this machine -------------------------------------------

const std::string kLibc = "/lib/x86_64-linux-gnu/libc.so.6";
const std::string kLibstdcxx = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";
// Debian 12's libc6 2.36 as installed when these offsets were read with objdump -d.
const std::string kKnownLibcBuildId = "93ac61ec5a8eb1396f9fbd350e3169a558528a40";
const std::string kKnownLibstdcxxBuildId = "289ee39f8c07bd4fa48102dfeeb7e6f9c76158b4";

// Independent check of the placement rule on the bytes before the chosen offset: decoded
// here with Capstone, none may branch or write an argument register, rsp or rbp.
void expect_pure_prefix(const std::vector<uint8_t>& code, uint64_t vaddr, uint64_t upto) {
  static const std::set<std::string> forbidden = {
      "rdi", "edi", "di",  "dil", "rsi", "esi", "si",  "sil", "rdx", "edx", "dx",  "dl",
      "dh",  "rcx", "ecx", "cx",  "cl",  "ch",  "r8",  "r8d", "r8w", "r8b", "r9",  "r9d",
      "r9w", "r9b", "rsp", "esp", "sp",  "spl", "rbp", "ebp", "bp",  "bpl"};
  csh h;
  ASSERT_EQ(cs_open(CS_ARCH_X86, CS_MODE_64, &h), CS_ERR_OK);
  cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
  cs_insn* insn = nullptr;
  const size_t n = cs_disasm(h, code.data(), upto, vaddr, 0, &insn);
  uint64_t covered = 0;
  for (size_t i = 0; i < n; ++i) {
    covered += insn[i].size;
    for (uint8_t k = 0; k < insn[i].detail->groups_count; ++k) {
      EXPECT_GT(insn[i].detail->groups[k], CS_GRP_BRANCH_RELATIVE) << insn[i].mnemonic;
    }
    cs_regs r, w;
    uint8_t nr = 0, nw = 0;
    ASSERT_EQ(cs_regs_access(h, &insn[i], r, &nr, w, &nw), CS_ERR_OK);
    for (uint8_t k = 0; k < nw; ++k) {
      EXPECT_EQ(forbidden.count(cs_reg_name(h, w[k])), 0u)
          << insn[i].mnemonic << " " << insn[i].op_str << " writes " << cs_reg_name(h, w[k]);
    }
  }
  EXPECT_EQ(covered, upto) << "the prefix does not end on an instruction boundary";
  cs_free(insn, n);
  cs_close(&h);
}

struct Planned {
  ElfSymbol sym;
  std::vector<uint8_t> code;
  Placement p;
};

Planned plan_in(const ElfObject& obj, const std::string& name) {
  Planned out;
  auto sym = obj.find(name);
  EXPECT_TRUE(sym) << name;
  if (!sym) return out;
  out.sym = *sym;
  auto code = obj.read_code(sym->value, sym->size);
  EXPECT_TRUE(code) << name;
  if (!code) return out;
  out.code = *code;
  out.p = plan_probe(out.code, sym->value);
  auto via_symbol = plan_symbol_probe(obj, *sym);
  EXPECT_TRUE(via_symbol);
  if (via_symbol) {
    EXPECT_EQ(via_symbol->offset, out.p.offset);
  }
  return out;
}

TEST(PlanProbeLibc, RulesHoldOnTheRealAllocator) {
  auto obj = ElfObject::Open(kLibc);
  ASSERT_TRUE(obj) << obj.error().message;
  const bool known = obj->build_id() == kKnownLibcBuildId;

  // free: a null check first; the probe goes after `test`, on an emulated instruction, and
  // rdi is untouched before it.
  auto f = plan_in(*obj, "free");
  EXPECT_TRUE(f.p.emulated) << f.p.reason;
  EXPECT_GT(f.p.offset, 0u) << f.p.reason;
  expect_pure_prefix(f.code, f.sym.value, f.p.offset);
  if (known) {
    EXPECT_EQ(f.p.offset, 3u);
    EXPECT_EQ(f.p.insn.substr(0, 3), "je ");
  }

  for (const std::string name : {"malloc", "calloc", "realloc"}) {
    auto m = plan_in(*obj, name);
    EXPECT_EQ(m.p.offset, 0u) << name << ": " << m.p.reason;
    EXPECT_TRUE(m.p.emulated) << name << ": " << m.p.reason;
    EXPECT_EQ(m.p.insn.substr(0, 5), "push ") << name;
  }

  auto pm = plan_in(*obj, "posix_memalign");
  EXPECT_TRUE(pm.p.emulated) << pm.p.reason;
  EXPECT_GT(pm.p.offset, 0u) << pm.p.reason;
  expect_pure_prefix(pm.code, pm.sym.value, pm.p.offset);
  if (known) {
    EXPECT_EQ(pm.p.offset, 7u);
    EXPECT_EQ(pm.p.insn, "push r12");
  }

  for (const std::string name : {"memalign", "aligned_alloc", "valloc", "pvalloc"}) {
    auto m = plan_in(*obj, name);
    EXPECT_TRUE(m.p.emulated) << name << ": " << m.p.reason;
    expect_pure_prefix(m.code, m.sym.value, m.p.offset);
    if (known) {
      EXPECT_EQ(m.p.offset, 7u) << name << ": " << m.p.reason;
    }
  }

  auto mm = plan_in(*obj, "mmap");
  EXPECT_TRUE(mm.p.emulated) << mm.p.reason;
  expect_pure_prefix(mm.code, mm.sym.value, mm.p.offset);
  if (known) {
    EXPECT_EQ(mm.p.offset, 10u) << mm.p.reason;
  }

  // reallocarray multiplies its arguments first (mul writes rdx): no valid site but 0.
  auto ra = plan_in(*obj, "reallocarray");
  EXPECT_EQ(ra.p.offset, 0u) << ra.p.reason;
  EXPECT_FALSE(ra.p.emulated) << ra.p.reason;

  // munmap: mov eax, 11; syscall.  mremap: sub rsp first.
  for (const std::string name : {"munmap", "mremap"}) {
    auto m = plan_in(*obj, name);
    EXPECT_EQ(m.p.offset, 0u) << name << ": " << m.p.reason;
    EXPECT_FALSE(m.p.emulated) << name << ": " << m.p.reason;
  }
}

// Every function of libc: the chosen offset is inside the function, on an emulated
// instruction whenever it is not 0.  Also prints how placements are distributed.
TEST(PlanProbeLibc, EveryFunctionGetsAConsistentPlacement) {
  auto obj = ElfObject::Open(kLibc);
  ASSERT_TRUE(obj) << obj.error().message;
  size_t entry_emulated = 0, moved = 0, entry_stepped = 0;
  for (const auto& sym : obj->symbols()) {
    auto p = plan_symbol_probe(*obj, sym);
    ASSERT_TRUE(p) << sym.name << ": " << p.error().message;
    if (sym.size > 0) {
      EXPECT_LT(p->offset, sym.size) << sym.name;
    }
    if (p->offset > 0) {
      ++moved;
      EXPECT_TRUE(p->emulated) << sym.name;
    } else if (p->emulated) {
      ++entry_emulated;
    } else {
      ++entry_stepped;
    }
  }
  std::printf("libc: %zu functions: %zu emulated at entry, %zu moved to an emulated site, "
              "%zu single-stepped at entry\n",
              obj->symbols().size(), entry_emulated, moved, entry_stepped);
  EXPECT_GT(moved, 0u);
}

TEST(PlanProbeLibstdcxx, OperatorNewAndDelete) {
  auto obj = ElfObject::Open(kLibstdcxx);
  ASSERT_TRUE(obj) << obj.error().message;
  const bool known = obj->build_id() == kKnownLibstdcxxBuildId;
  for (const std::string name :
       {"_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t",
        "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t", "_ZdlPv", "_ZdlPvm", "_ZdaPv",
        "_ZdaPvm", "_ZdlPvSt11align_val_t", "_ZdlPvmSt11align_val_t"}) {
    auto m = plan_in(*obj, name);
    std::printf("%-24s +%-3llu %-8s %-28s %s\n", name.c_str(),
                static_cast<unsigned long long>(m.p.offset),
                m.p.emulated ? "emulated" : "stepped", m.p.insn.c_str(), m.p.reason.c_str());
    if (m.p.offset > 0) {
      EXPECT_TRUE(m.p.emulated) << name;
      expect_pure_prefix(m.code, m.sym.value, m.p.offset);
    }
  }
  if (known) {
    // endbr64; test rdi,rdi; mov eax,1; push rbx
    EXPECT_EQ(plan_in(*obj, "_Znwm").p.offset, 12u);
    // endbr64; jmp free@plt
    EXPECT_EQ(plan_in(*obj, "_ZdlPv").p.offset, 4u);
  }
}

}  // namespace
}  // namespace leakwatch::alloc
