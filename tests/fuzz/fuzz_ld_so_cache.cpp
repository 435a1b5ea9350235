// /etc/ld.so.cache (glibc-ld.so.cache1.1), read to predict where a command's libraries are.
#include <span>

#include "fuzz_support.h"
#include "elf/elf_dynamic.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto m = leakwatch::elf::parse_ld_so_cache(std::span<const uint8_t>(data, size));
  (void)m.size();
  return 0;
}
