// /proc/PID/stat: both readers (layer 1's, and the symbolizer's pid-reuse check).
#include "fuzz_support.h"
#include "metrics/proc_parse.h"
#include "symbolize/proc_maps.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = leakwatch::fuzz::as_text(data, size);
  (void)leakwatch::metrics::parse_proc_stat(text);
  (void)leakwatch::symbolize::parse_proc_stat(text);
  return 0;
}
