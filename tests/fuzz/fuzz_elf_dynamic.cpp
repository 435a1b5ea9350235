// What the dynamic linker reads, as leakwatch predicts a command's link order: the dynamic
// section (DT_NEEDED, RPATH, RUNPATH, SONAME), PT_INTERP and the GOT imports.
#include "fuzz_support.h"
#include "elf/elf_dynamic.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace leakwatch;
  fuzz::MemFile file(data, size);
  if (!file.valid()) return 0;
  (void)elf::read_dynamic_info(file.path());
  (void)elf::read_got_imports(file.path());
  return 0;
}
