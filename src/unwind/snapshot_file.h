// Snapshot records on disk: the bytes a BPF ring buffer record carries, i.e. the
// lw_stack_snapshot header followed by exactly stack_size stack bytes.  Used for test data,
// benchmarks and debugging dumps.
//
// Thread-safety: free functions without shared state.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "bpf/unwind.h"
#include "common/result.h"

namespace leakwatch::unwind {

// Parses one record (header + stack_size bytes; trailing bytes are an error).
[[nodiscard]] Result<std::unique_ptr<lw_stack_snapshot>> parse_snapshot(std::string_view bytes);
[[nodiscard]] Result<std::unique_ptr<lw_stack_snapshot>> read_snapshot_file(
    const std::string& path);
// Writes header + stack_size bytes (to a temporary name, then renamed).
[[nodiscard]] Result<void> write_snapshot_file(const std::string& path,
                                               const lw_stack_snapshot& snapshot);

}  // namespace leakwatch::unwind
