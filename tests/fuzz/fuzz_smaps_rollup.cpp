// /proc/PID/smaps_rollup (PSS/USS of layer 1).
#include "fuzz_support.h"
#include "metrics/proc_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = leakwatch::metrics::parse_smaps_rollup(leakwatch::fuzz::as_text(data, size));
  if (r) (void)r->uss();
  return 0;
}
