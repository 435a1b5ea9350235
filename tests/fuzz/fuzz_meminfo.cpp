// /proc/meminfo (the host's memory and swap for the OOM-risk figure).
#include "fuzz_support.h"
#include "metrics/proc_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)leakwatch::metrics::parse_meminfo(leakwatch::fuzz::as_text(data, size));
  return 0;
}
