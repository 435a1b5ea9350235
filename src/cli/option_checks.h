// Checks CLI11 runs on the text of an option before converting it, for what its conversion
// lets through: "-3" given to an unsigned option wraps to 18446744073709551613, and "nan",
// "inf" or "1e999" parse into a double.  Every unsigned and every floating-point option of
// every subcommand takes the matching check (ranges are the commands' validate()).
#pragma once

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "common/result.h"

namespace leakwatch::cli {

// For unsigned integer options: a leading '-' is an error ("must not be negative").
const CLI::Validator& not_negative();
// For floating-point options: NaN and infinities are errors ("expected a finite number").
const CLI::Validator& finite_number();

// --output FILE, checked before anything is traced or read (a missing or read-only
// directory, a directory given as FILE, a link that is not followed): "--output X: why".
[[nodiscard]] Result<void> check_output_option(const std::string& path);

// BPF hash maps sized by --max-allocs/--max-stacks must fit the kernel's limit for a hash
// map (2^28 entries) and half of this host's memory when full; the error states the figure
// ("--max-allocs 4000000000: ... about 388.0 GiB ...") instead of a failed load later.
[[nodiscard]] Result<void> check_map_memory(uint64_t max_allocs, uint64_t alloc_entry_bytes,
                                            uint64_t max_stacks, uint64_t stack_entry_bytes);

}  // namespace leakwatch::cli
