#include "cli/output.h"

#include <cstdio>

#include "common/atomic_file.h"
#include "common/log.h"

namespace leakwatch::cli {

Result<void> write_output(const std::string& path, std::string_view data) {
  if (!path.empty()) {
    if (auto w = write_file_atomic(path, data); !w) return w;
    log::info("report written to {}", path);
    return {};
  }
  std::fwrite(data.data(), 1, data.size(), stdout);
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) return fail_errno("writing the report to stdout");
  return {};
}

Result<void> write_rendered(const std::string& path, const Result<std::string>& rendered) {
  if (!rendered) return std::unexpected(rendered.error());
  return write_output(path, std::string_view(*rendered));
}

}  // namespace leakwatch::cli
