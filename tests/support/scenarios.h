// Fault and load scenarios shared by the short slices in tests/e2e (make test) and their
// long versions in tests/stress (make stress): the same code, different sizes.  Each one
// asserts with gtest and records its figures for RELIABILITY.md (support/reliability.h).
#pragma once

#include <string>
#include <vector>

namespace leakwatch::testing {

// `leakwatch memleak -p` attached and detached `cycles` times against a busy target: the
// target's memory, descriptors and mappings do not grow, and it keeps running.
void memleak_attach_detach_cycles(int cycles);

// The agent investigating a growing target `investigations` times in a row: the agent's
// memory and descriptors do not grow, and it holds no BPF object between investigations.
void agent_investigation_cycles(int investigations);

// A target that forks and execs itself `cycles` times while traced: every child exits 0 and
// the parent's leak (one block per cycle) is counted exactly.
void fork_exec_loop(int cycles);

// dlopen + allocate + dlclose `cycles` times while traced: the leak is counted exactly and
// never misattributed, and the library's own paired allocations leave nothing behind.
void dlopen_dlclose_loop(int cycles);

// 16 threads freeing each other's blocks at full speed, `pairs_per_thread` each, traced
// exactly: outstanding allocations at the end are the known leak only, every
// discrepancy accounted for by a loss counter.
void cross_thread_frees(int threads, int pairs_per_thread);

// The agent watching `targets` growing processes that all trigger at once, for `seconds`.
void agent_many_targets(int targets, double seconds);

}  // namespace leakwatch::testing
