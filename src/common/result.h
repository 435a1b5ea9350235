// Result type used across leakwatch: a value or an Error naming what failed.
// Exceptions are used only at the CLI edge (STYLE.md).
#pragma once

#include <cerrno>
#include <cstring>
#include <expected>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace leakwatch {

struct Error {
  std::string message;  // one line: "what failed: why"
  int errnum = 0;       // errno when a system call failed, else 0

  static Error from_errno(std::string what, int e = errno) {
    return Error{fmt::format("{}: {}", what, std::strerror(e)), e};
  }
};

template <typename T>
using Result = std::expected<T, Error>;

// Shorthand for returning an error: `return fail("no such pid {}", pid);`
template <typename... Args>
[[nodiscard]] std::unexpected<Error> fail(fmt::format_string<Args...> f, Args&&... args) {
  return std::unexpected(Error{fmt::format(f, std::forward<Args>(args)...), 0});
}

[[nodiscard]] inline std::unexpected<Error> fail_errno(std::string what, int e = errno) {
  return std::unexpected(Error::from_errno(std::move(what), e));
}

}  // namespace leakwatch
