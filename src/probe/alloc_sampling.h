// What an allocation trace records, as both memleak BPF objects (user space and kernel)
// take it in their rodata (bpf/alloc_sampling.bpf.h): a size range and a sampling mode.
#pragma once

#include <cstdint>
#include <vector>

#include "bpf/sampling_table.h"
#include "common/result.h"
#include "probe/memleak_types.h"

namespace leakwatch::probe {

struct AllocSampling {
  SampleMode mode = SampleMode::kExact;
  uint64_t rate = 1;                // N (calls) or R bytes
  uint64_t min_size = 0;
  uint64_t max_size = UINT64_MAX;
  std::vector<uint32_t> exp_table;  // byte sampling draws (LW_EXP_TABLE_SIZE entries)
};

// Writes `a` into a skeleton's rodata (any object built with bpf/alloc_sampling.bpf.h).
template <typename Rodata>
Result<void> set_alloc_sampling(Rodata* ro, const AllocSampling& a) {
  ro->min_size = a.min_size;
  ro->max_size = a.max_size;
  ro->sample_mode = static_cast<uint32_t>(a.mode);
  ro->sample_rate = a.rate ? a.rate : 1;
  if (a.mode == SampleMode::kBytes) {
    if (a.exp_table.size() != LW_EXP_TABLE_SIZE)
      return fail("internal: byte sampling table has {} entries, want {}", a.exp_table.size(),
                  LW_EXP_TABLE_SIZE);
    for (size_t i = 0; i < LW_EXP_TABLE_SIZE; i++) ro->exp_table[i] = a.exp_table[i];
  }
  return {};
}

}  // namespace leakwatch::probe
