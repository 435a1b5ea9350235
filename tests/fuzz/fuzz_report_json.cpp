// The JSON report reader (`leakwatch report FILE.json`, --diff): any text, then the
// documented round trip read_json(write_json(r)) on whatever it accepted.
#include "fuzz_support.h"
#include "report/json_writer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace leakwatch;
  auto r = report::read_json(fuzz::as_text(data, size));
  if (!r) return 0;
  std::string text = report::write_json(*r);
  auto back = report::read_json(text);
  if (!back) __builtin_trap();  // our own output must read back
  if (report::write_json(*back) != text) __builtin_trap();
  return 0;
}
