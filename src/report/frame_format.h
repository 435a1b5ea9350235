// Small helpers shared by the writers: how a frame is named in each output, and how an
// estimated figure is rounded for printing.  Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "report/model.h"

namespace leakwatch::report {

// True for frames of the kernel: module "[kernel]" (the model's spelling) or "kernel".
bool is_kernel_frame(const Frame& f);

// BCC's symbol text: "function+0xoff [module]".  An unknown function prints "[unknown]"
// (followed by " [module]" when the module is known).  Kernel frames print
// "function+0xoff [kernel]", as BCC's ksym(show_module=True) does.  When kernel_mode is set,
// a frame without a module is taken to be a kernel frame.
std::string bcc_symbol(const Frame& f, bool kernel_mode);

// A short, stable name for a frame, used where one token per frame is wanted (folded
// stacks, alerts, diff keys): the function; else "[module]"; else "0x<address>".
std::string frame_label(const Frame& f);

// Basename of a path ("/usr/lib/libc.so.6" -> "libc.so.6").
std::string path_basename(const std::string& path);

// Rounds to the nearest integer, saturating instead of overflowing (NaN -> 0).
int64_t round_to_i64(double v);

}  // namespace leakwatch::report
