#include "metrics/proc_read.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/fd.h"

namespace leakwatch::metrics {

Result<std::string_view> read_proc_file(const std::string& path, std::string& buf) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return fail_errno("cannot open " + path);
  if (buf.size() < 4096) buf.resize(4096);
  size_t used = 0;
  for (;;) {
    if (used == buf.size()) buf.resize(buf.size() * 2);
    ssize_t n = ::read(fd.get(), buf.data() + used, buf.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("cannot read " + path);
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  return std::string_view(buf.data(), used);
}

bool is_gone(const Error& e) { return e.errnum == ENOENT || e.errnum == ESRCH; }

}  // namespace leakwatch::metrics
