/* The exponential table of the byte sampler, built in C for the preload library.
 *
 * Must equal leakwatch::analysis::exponential_table() (the BPF program's rodata) entry for
 * entry, so that in-process sampling and attach-mode sampling make the same decision from
 * the same random number (tests/unit/preload_test.cpp checks it):
 *
 *   table[i] = lround(2^LW_EXP_TABLE_SHIFT * -log1p(-(i + 0.5) / n))
 *
 * Header-only and C/C++-compatible so that the test can compare the two without loading the
 * library.  Needs libm.
 */
#ifndef LEAKWATCH_PRELOAD_EXP_TABLE_H
#define LEAKWATCH_PRELOAD_EXP_TABLE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/sampling_table.h"

static inline void lw_preload_build_exp_table(uint32_t* table, size_t n) {
  const double scale = (double)(1u << LW_EXP_TABLE_SHIFT);
  for (size_t i = 0; i < n; ++i) {
    double u = ((double)i + 0.5) / (double)n;
    table[i] = (uint32_t)lround(-log1p(-u) * scale);
  }
}

#endif /* LEAKWATCH_PRELOAD_EXP_TABLE_H */
