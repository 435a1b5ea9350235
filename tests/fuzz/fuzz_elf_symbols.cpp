// ELF symbols as `leakwatch memleak` reads them from a target's objects: the symbol index,
// lookups, probe placement (code decoded from the file) and the whole allocator planning
// (catalog, binding, thunks through PLT/GOT) on the object as an executable and with -O.
#include <algorithm>

#include "fuzz_support.h"
#include "alloc/allocator_plan.h"
#include "alloc/placement.h"
#include "common/procfs.h"
#include "elf/elf_symbols.h"
#include "symbolize/object_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace leakwatch;
  fuzz::MemFile file(data, size);
  if (!file.valid()) return 0;
  const std::string path = file.path();

  // The symbolizer's load bias of a mapping of this file (offset 0, as the first PT_LOAD).
  MapEntry entry;
  entry.start = 0x555555554000;
  entry.end = entry.start + 0x1000;
  entry.executable = true;
  (void)symbolize::compute_load_bias(file.fd(), entry);

  auto elf = elf::ElfObject::Open(path);
  if (!elf) return 0;
  (void)elf->build_id();
  size_t n = 0;
  for (const auto& sym : elf->symbols()) {
    if (++n > 128) break;
    (void)elf->find(sym.name);
    (void)elf->names_at(sym.value);
    (void)elf->file_offset_of(sym.value);
    // The readers' own bounds: placement reads a few instructions, thunk detection 16
    // bytes, operator new's body up to 512.
    (void)elf->read_code(sym.value, std::min<uint64_t>(sym.size ? sym.size : 16, 512));
    (void)alloc::plan_symbol_probe(*elf, sym);
  }
  (void)elf->find("malloc");

  alloc::LinkOrder order;
  order.objects.push_back({"/fuzz/exe", path, "executable"});
  order.method = "fuzz";
  for (bool static_exe : {false, true}) {
    order.static_executable = static_exe;
    (void)alloc::discover_in_order(order, "", false);
  }
  (void)alloc::discover_in_order(order, "je_", true);
  return 0;
}
