// /proc/PID/maps: the one parser (common/procfs), and the path helpers used on what it
// returns.
#include "common/procfs.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace leakwatch;
  auto entries = parse_proc_maps(fuzz::as_text(data, size));
  if (!entries) return 0;
  for (const MapEntry& e : *entries) {
    (void)e.file_path();
    (void)e.deleted();
    (void)e.file_backed();
  }
  return 0;
}
