// The agent's YAML configuration (`leakwatch agent --config FILE`).
#include "agent/config.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace leakwatch;
  auto c = agent::parse_config(fuzz::as_text(data, size), "fuzz.yaml");
  if (!c) return 0;
  // The accepted configuration's derived figures are computed without trouble.
  (void)c->investigation_duration_s();
  (void)c->growth_step_s();
  if (!c->listen.empty() && c->listen != "off") (void)agent::parse_listen(c->listen);
  return 0;
}
