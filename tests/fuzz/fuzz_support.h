// Helpers shared by the libFuzzer targets (tests/fuzz/README.md).
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/fd.h"

namespace leakwatch::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The fuzz input as a file: an anonymous memory file, opened by the parsers that take a
// path through /proc/self/fd/N (nothing touches the disk).  Empty (invalid fd) when
// memfd_create fails, which a target treats as "nothing to do".
class MemFile {
 public:
  MemFile(const uint8_t* data, size_t size)
      : fd_(::memfd_create("leakwatch-fuzz", MFD_CLOEXEC)) {
    if (!fd_.valid()) return;
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::write(fd_.get(), data + done, size - done);
      if (n <= 0) {
        fd_.reset();
        return;
      }
      done += static_cast<size_t>(n);
    }
  }
  bool valid() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_.get()); }
  // A second descriptor for the same file (for APIs that take ownership of one).
  UniqueFd dup() const { return UniqueFd(::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0)); }

 private:
  UniqueFd fd_;
};

}  // namespace leakwatch::fuzz
