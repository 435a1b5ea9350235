// The error of a BPF object that did not load, with the likely cause: a map the kernel
// refused for its size (E2BIG, ENOMEM: --max-allocs, --max-stacks), permissions, or the
// kernel BTF (the --btf file when one was given, else /sys/kernel/btf/vmlinux).
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace leakwatch::probe {

// `err` is what the skeleton's load returned (a negative errno or libbpf error code).
Error load_error(std::string_view what, int err, const std::string& btf_path);

}  // namespace leakwatch::probe
