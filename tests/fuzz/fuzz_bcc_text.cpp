// BCC memleak text (and leakwatch's own text) as `leakwatch report` reads it.  The first
// byte picks the -s sample rate the reader scales by (1 = not sampled), the rest is text.
#include <cmath>

#include "fuzz_support.h"
#include "report/bcc_text_reader.h"
#include "report/json_writer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace leakwatch;
  if (size == 0) return 0;
  static constexpr uint64_t kRates[] = {1, 1, 1, 10, 1000, UINT64_MAX / 2};
  uint64_t rate = kRates[data[0] % std::size(kRates)];
  auto r = report::read_bcc_text(fuzz::as_text(data + 1, size - 1), rate);
  if (!r) return 0;
  // What was read is a Report like any other: it must render and read back.
  auto back = report::read_json(report::write_json(*r));
  if (!back) __builtin_trap();
  if (back->stacks.size() != r->stacks.size()) __builtin_trap();
  return 0;
}
