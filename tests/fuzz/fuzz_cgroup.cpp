// cgroup v2 files and the files that locate them: the first byte picks the parser
// (memory.stat, memory.events, memory.max, memory.current, /proc/PID/cgroup, mountinfo).
#include "fuzz_support.h"
#include "metrics/proc_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace leakwatch::metrics;
  if (size == 0) return 0;
  auto text = leakwatch::fuzz::as_text(data + 1, size - 1);
  switch (data[0] % 6) {
    case 0: (void)parse_cgroup_memory_stat(text); break;
    case 1: (void)parse_cgroup_memory_events(text); break;
    case 2: (void)parse_cgroup_limit(text); break;
    case 3: (void)parse_u64_file(text); break;
    case 4: (void)parse_cgroup_v2_path(text); break;
    case 5: (void)find_cgroup2_mount(text); break;
  }
  return 0;
}
