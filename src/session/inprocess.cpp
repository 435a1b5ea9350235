#include "session/inprocess.h"

#include <fmt/format.h>

#include <cstdlib>

#include "common/units.h"
#include "elf/elf_dynamic.h"

namespace leakwatch::session {

report::Sampling preload_sampling(const leakwatch_preload_stats& st) {
  if (st.flags & LW_PRELOAD_F_EXACT) return {report::SamplingMode::kExact, 1};
  if (st.flags & LW_PRELOAD_F_CALLS) return {report::SamplingMode::kCalls, st.sample_bytes};
  return {report::SamplingMode::kBytes, st.sample_bytes};
}

probe::SampleMode probe_sample_mode(report::SamplingMode mode) {
  switch (mode) {
    case report::SamplingMode::kBytes: return probe::SampleMode::kBytes;
    case report::SamplingMode::kCalls: return probe::SampleMode::kCalls;
    default: return probe::SampleMode::kExact;
  }
}

std::string describe_sampling(const report::Sampling& s) {
  switch (s.mode) {
    case report::SamplingMode::kCalls: return fmt::format("1 in {} calls", s.rate);
    case report::SamplingMode::kBytes: return fmt::format("R = {} bytes", s.rate);
    default: return "every allocation";
  }
}

Result<uint64_t> parse_sample_bytes(const std::string& text) {
  auto r = parse_size(text);
  if (!r) return fail("--sample-bytes: {}", r.error().message);
  if (*r == 0 || *r > (1ull << 40)) return fail("--sample-bytes: must be between 1 and 1T");
  return *r;
}

Result<void> check_preloadable(const std::string& executable) {
  auto dyn = elf::read_dynamic_info(executable);
  if (dyn && !dyn->has_interp)
    return fail("{} is statically linked, so it cannot load the sampling library; trace it "
                "without --inprocess", executable);
  // The library is built against glibc: another C library's loader cannot bind it.
  if (dyn && dyn->interp.find("/ld-linux") == std::string::npos)
    return fail("{} is not a glibc program (its loader is {}), and the sampling library needs "
                "glibc; trace it without --inprocess", executable, dyn->interp);
  return {};
}

std::vector<std::string> preload_environment(const std::string& library,
                                              const report::Sampling& sampling) {
  // First in the search order, so that it wraps whatever allocator the program binds to
  // (a preloaded or linked jemalloc/tcmalloc too).
  std::string preload = library;
  if (const char* cur = std::getenv("LD_PRELOAD"); cur && *cur) preload += std::string(":") + cur;
  std::vector<std::string> env = {"LD_PRELOAD=" + preload};
  switch (sampling.mode) {
    case report::SamplingMode::kBytes:
      env.push_back(fmt::format("LEAKWATCH_SAMPLE_BYTES={}", sampling.rate));
      break;
    case report::SamplingMode::kCalls:
      env.push_back(fmt::format("LEAKWATCH_SAMPLE_CALLS={}", sampling.rate));
      break;
    case report::SamplingMode::kExact:
      env.push_back("LEAKWATCH_SAMPLE_BYTES=1");
      break;
  }
  return env;
}

}  // namespace leakwatch::session
