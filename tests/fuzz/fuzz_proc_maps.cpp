// /proc/PID/maps: both readers (growth tracking's, and the symbolizer's and unwinder's),
// and the path helpers used on what they return.
#include "common/proc_maps.h"
#include "fuzz_support.h"
#include "symbolize/proc_maps.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace leakwatch;
  auto text = fuzz::as_text(data, size);
  for (const MapEntry& e : parse_proc_maps(text)) {
    (void)e.executable();
    (void)e.file_backed();
  }
  auto entries = symbolize::parse_proc_maps(text);
  if (!entries) return 0;
  for (const auto& e : *entries) {
    (void)e.file_path();
    (void)e.deleted();
    (void)e.file_backed();
  }
  return 0;
}
