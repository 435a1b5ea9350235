// /proc/kallsyms (kernel stacks of `leakwatch memleak` without -p): parse, then resolve
// addresses around every symbol read and a few arbitrary ones.
#include <cstring>

#include "fuzz_support.h"
#include "symbolize/kallsyms.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace leakwatch;
  auto k = symbolize::Kallsyms::Parse(fuzz::as_text(data, size));
  for (uint64_t a : {uint64_t{0}, uint64_t{1}, UINT64_MAX, uint64_t{0xffffffff81000000}}) {
    if (auto s = k.resolve(a)) (void)s->function.size();
  }
  // Addresses taken from the input itself land near the symbols it defines.
  for (size_t i = 0; i + 8 <= size && i < 64 * 8; i += 8) {
    uint64_t a;
    std::memcpy(&a, data + i, 8);
    if (auto s = k.resolve(a)) (void)s->module.size();
  }
  return 0;
}
