// /proc/PID/stat: the one parser (common/procfs), used by layer 1, the symbolizer's
// pid-reuse check and the agent's target watch.
#include "common/procfs.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)leakwatch::parse_proc_stat(leakwatch::fuzz::as_text(data, size));
  return 0;
}
