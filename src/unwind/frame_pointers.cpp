#include "unwind/frame_pointers.h"

#include <fcntl.h>

#include "common/fd.h"
#include "elf/elf_symbols.h"
#include "unwind/object_cfi.h"

namespace leakwatch::unwind {
namespace {

// Rows looked at per function: prologue, body and a few epilogues are well under this.
constexpr int kMaxRowsPerFunction = 64;

enum class FrameUse { kFramePointer, kNoFramePointer, kNoCfi };

FrameUse cfi_frame_use(unwind::ObjectCfi& cfi, const elf::ElfSymbol& sym) {
  uint64_t addr = sym.value;
  const uint64_t end = sym.value + sym.size;
  bool any = false;
  for (int i = 0; i < kMaxRowsPerFunction && addr < end; i++) {
    std::string error;
    const unwind::UnwindRow* row = cfi.row_for(addr, &error);
    if (row == nullptr || row->end <= addr) break;
    any = true;
    if (!row->cfa.expression && row->cfa.reg == unwind::kRegRbp) return FrameUse::kFramePointer;
    addr = row->end;
  }
  return any ? FrameUse::kNoFramePointer : FrameUse::kNoCfi;
}

bool starts_with_frame_setup(const elf::ElfObject& elf, const elf::ElfSymbol& sym) {
  auto code = elf.read_code(sym.value, 8);
  if (!code || code->size() < 4) return false;
  const auto& b = *code;
  size_t i = 0;
  if (b.size() >= 8 && b[0] == 0xf3 && b[1] == 0x0f && b[2] == 0x1e && b[3] == 0xfa) i = 4;  // endbr64
  // push %rbp (55); mov %rsp,%rbp (48 89 e5)
  return i + 4 <= b.size() && b[i] == 0x55 && b[i + 1] == 0x48 && b[i + 2] == 0x89 &&
         b[i + 3] == 0xe5;
}

}  // namespace

Result<FramePointerCheck> check_frame_pointers(const std::string& path, size_t max_functions) {
  auto elf = elf::ElfObject::Open(path);
  if (!elf) return std::unexpected(elf.error());
  std::unique_ptr<unwind::ObjectCfi> cfi;
  if (UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)); fd.valid()) {
    auto opened = unwind::ObjectCfi::Open(std::move(fd), path, "", /*use_debug_frame=*/false);
    if (opened) cfi = std::move(*opened);
  }
  FramePointerCheck c;
  for (const auto& sym : elf->symbols()) {
    if (c.functions >= max_functions) break;
    // Tiny functions (thunks, leaf accessors) often have no frame even with -fno-omit-frame-pointer.
    if (sym.size < 48 || sym.value == 0 || sym.ifunc) continue;
    FrameUse use = cfi ? cfi_frame_use(*cfi, sym) : FrameUse::kNoCfi;
    if (use == FrameUse::kNoCfi) {
      if (!elf->read_code(sym.value, 1)) continue;  // not code of this file
      use = starts_with_frame_setup(*elf, sym) ? FrameUse::kFramePointer
                                               : FrameUse::kNoFramePointer;
    } else {
      c.judged_by_cfi++;
    }
    c.functions++;
    if (use == FrameUse::kFramePointer) c.with_frame++;
  }
  return c;
}

}  // namespace leakwatch::unwind
