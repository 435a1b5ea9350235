#include "unwind/snapshot_file.h"

#include <cstring>

#include "common/atomic_file.h"

namespace leakwatch::unwind {

Result<std::unique_ptr<lw_stack_snapshot>> parse_snapshot(std::string_view bytes) {
  if (bytes.size() < LW_SNAPSHOT_HEADER_SIZE) {
    return fail("snapshot record of {} bytes is shorter than its header ({})", bytes.size(),
                LW_SNAPSHOT_HEADER_SIZE);
  }
  auto snap = std::make_unique<lw_stack_snapshot>();
  std::memcpy(snap.get(), bytes.data(), LW_SNAPSHOT_HEADER_SIZE);
  if (snap->stack_size > LW_SNAPSHOT_MAX) {
    return fail("snapshot stack_size {} exceeds LW_SNAPSHOT_MAX {}", snap->stack_size,
                LW_SNAPSHOT_MAX);
  }
  if (bytes.size() != LW_SNAPSHOT_HEADER_SIZE + snap->stack_size) {
    return fail("snapshot record has {} bytes, header says {}", bytes.size(),
                LW_SNAPSHOT_HEADER_SIZE + snap->stack_size);
  }
  std::memcpy(snap->stack, bytes.data() + LW_SNAPSHOT_HEADER_SIZE, snap->stack_size);
  return snap;
}

Result<std::unique_ptr<lw_stack_snapshot>> read_snapshot_file(const std::string& path) {
  auto bytes = read_file(path);
  if (!bytes) return std::unexpected(bytes.error());
  auto snap = parse_snapshot(*bytes);
  if (!snap) return fail("{}: {}", path, snap.error().message);
  return snap;
}

Result<void> write_snapshot_file(const std::string& path, const lw_stack_snapshot& snapshot) {
  if (snapshot.stack_size > LW_SNAPSHOT_MAX) {
    return fail("snapshot stack_size {} exceeds LW_SNAPSHOT_MAX", snapshot.stack_size);
  }
  const char* p = reinterpret_cast<const char*>(&snapshot);
  return write_file_atomic(path,
                           std::string_view(p, LW_SNAPSHOT_HEADER_SIZE + snapshot.stack_size));
}

}  // namespace leakwatch::unwind
