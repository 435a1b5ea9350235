// PSI: /proc/pressure/memory and <cgroup>/memory.pressure.
#include "fuzz_support.h"
#include "metrics/proc_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)leakwatch::metrics::parse_psi(leakwatch::fuzz::as_text(data, size));
  return 0;
}
