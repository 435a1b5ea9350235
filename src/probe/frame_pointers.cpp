#include "probe/frame_pointers.h"

#include "probe/elf_symbols.h"

namespace leakwatch::probe {

Result<FramePointerCheck> check_frame_pointers(const std::string& path, size_t max_functions) {
  auto elf = ElfObject::Open(path);
  if (!elf) return std::unexpected(elf.error());
  FramePointerCheck c;
  for (const auto& sym : elf->symbols()) {
    if (c.functions >= max_functions) break;
    // Tiny functions (thunks, leaf accessors) often have no frame even with -fno-omit-frame-pointer.
    if (sym.size < 48 || sym.value == 0 || sym.ifunc) continue;
    auto code = elf->read_code(sym.value, 8);
    if (!code || code->size() < 4) continue;
    const auto& b = *code;
    size_t i = 0;
    if (b.size() >= 8 && b[0] == 0xf3 && b[1] == 0x0f && b[2] == 0x1e && b[3] == 0xfa) i = 4;  // endbr64
    c.functions++;
    // push %rbp (55); mov %rsp,%rbp (48 89 e5)
    if (i + 4 <= b.size() && b[i] == 0x55 && b[i + 1] == 0x48 && b[i + 2] == 0x89 && b[i + 3] == 0xe5)
      c.with_prologue++;
  }
  return c;
}

}  // namespace leakwatch::probe
