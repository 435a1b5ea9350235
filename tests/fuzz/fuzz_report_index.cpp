// The agent's reports_dir/index.json, read back when the agent starts (a file another
// process, a crash or a full disk may have left in any state).
#include "agent/report_store.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto entries = leakwatch::agent::parse_index(leakwatch::fuzz::as_text(data, size));
  if (entries)
    for (const auto& e : *entries) (void)e.id.size();
  return 0;
}
