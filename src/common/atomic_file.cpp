#include "common/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <climits>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <utility>

#include "common/fd.h"

namespace leakwatch {
namespace {

constexpr std::string_view kTempTag = ".lwtmp.";
constexpr int kMaxLinkHops = 40;  // the kernel's own limit (MAXSYMLINKS)
// NAME_MAX is 255: the target's name is cut so that the tag, a pid and 16 hex digits fit.
constexpr size_t kMaxNameInTemp = 200;
constexpr time_t kStaleAfterS = 86400;
constexpr int kNameAttempts = 16;

enum class Kind {
  kReplace,     // a regular file, or a name that does not exist yet: temporary + rename
  kDirect,      // a FIFO, character device or socket: opened and written in place
  kDescriptor,  // one of this process's descriptors (/dev/stdout, /dev/fd/N, ...)
};

struct Target {
  Kind kind = Kind::kReplace;
  std::string path;     // where the chain of links ended (kReplace, kDirect)
  int fd = -1;          // kDescriptor
  bool exists = false;  // kReplace: an existing file, whose permission bits are kept
  mode_t mode = 0644;
};

std::pair<std::string, std::string> split_dir(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  if (slash == 0) return {"/", path.substr(1)};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

// "/dev/stdout" -> 1, "/dev/fd/3" -> 3, ...; -1 when `path` names no descriptor of ours.
int descriptor_of(const std::string& path) {
  if (path == "/dev/stdout") return STDOUT_FILENO;
  if (path == "/dev/stderr") return STDERR_FILENO;
  const std::string own = "/proc/" + std::to_string(::getpid()) + "/fd/";
  std::string_view rest;
  for (std::string_view prefix : {std::string_view("/dev/fd/"),
                                  std::string_view("/proc/self/fd/"), std::string_view(own)}) {
    if (path.starts_with(prefix)) {
      rest = std::string_view(path).substr(prefix.size());
      break;
    }
  }
  int fd = -1;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), fd);
  if (rest.empty() || ec != std::errc() || end != rest.data() + rest.size()) return -1;
  return fd;
}

Result<std::string> read_link(const std::string& path) {
  std::string buf(PATH_MAX, '\0');
  ssize_t n = ::readlink(path.c_str(), buf.data(), buf.size());
  if (n < 0) return fail_errno("cannot read the link " + path);
  buf.resize(static_cast<size_t>(n));
  return buf;
}

// Follows `path` to what will be written (see the header for the rules).
Result<Target> resolve(const std::string& path) {
  if (path.empty()) return fail("empty file name");
  std::string cur = path;
  for (int hop = 0;; ++hop) {
    if (int fd = descriptor_of(cur); fd >= 0) {
      int flags = ::fcntl(fd, F_GETFL);
      if (flags < 0) return fail("{}: descriptor {} is not open", path, fd);
      if ((flags & O_ACCMODE) == O_RDONLY)
        return fail("{}: descriptor {} is not open for writing", path, fd);
      Target t;
      t.kind = Kind::kDescriptor;
      t.path = cur;
      t.fd = fd;
      return t;
    }
    struct stat st;
    if (::lstat(cur.c_str(), &st) != 0) {
      if (errno == ENOTDIR) return fail("{}: {} is not a directory", path, split_dir(cur).first);
      if (errno != ENOENT) return fail_errno(cur);
      Target t;
      t.path = cur;
      return t;
    }
    if (S_ISLNK(st.st_mode)) {
      if (hop >= kMaxLinkHops) return fail("{}: too many levels of symbolic links", path);
      if (st.st_uid != 0 && st.st_uid != ::geteuid())
        return fail("{}: {} is a symbolic link owned by uid {}: not followed (leakwatch "
                    "follows links owned by root or by the user running it; give the file it "
                    "points to)",
                    path, cur, st.st_uid);
      auto target = read_link(cur);
      if (!target) return std::unexpected(target.error());
      if (target->empty()) return fail("{}: empty symbolic link", cur);
      cur = target->front() == '/' ? *target : split_dir(cur).first + "/" + *target;
      continue;
    }
    Target t;
    t.path = cur;
    if (S_ISREG(st.st_mode)) {
      t.exists = true;
      t.mode = st.st_mode & 07777;
      return t;
    }
    if (S_ISDIR(st.st_mode)) return fail("{}: is a directory", path);
    if (S_ISBLK(st.st_mode)) return fail("{}: is a block device: not overwritten", path);
    t.kind = Kind::kDirect;
    return t;
  }
}

uint64_t random_u64() {
  uint64_t r = 0;
  if (::getrandom(&r, sizeof r, GRND_NONBLOCK) == static_cast<ssize_t>(sizeof r)) return r;
  // No entropy yet (early boot): unpredictable enough for a name, which O_EXCL protects.
  auto t = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return t * 0x9e3779b97f4a7c15ull ^ (static_cast<uint64_t>(::getpid()) << 32) ^
         reinterpret_cast<uintptr_t>(&r);
}

std::string temp_name(const std::string& base) {
  return fmt::format(".{}{}{}.{:016x}", base.substr(0, kMaxNameInTemp), kTempTag, ::getpid(),
                     random_u64());
}

// The pid in a temporary's name (is_atomic_temp_name has checked the form).
int temp_pid(std::string_view name, const std::string& base) {
  std::string_view rest = name.substr(1 + std::min(base.size(), kMaxNameInTemp) + kTempTag.size());
  int pid = 0;
  std::from_chars(rest.data(), rest.data() + rest.size(), pid);
  return pid;
}

// Temporaries of a writer that was killed before it renamed them (see the header).
void remove_stale_temps(int dirfd, const std::string& base) {
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    ::close(fd);
    return;
  }
  const time_t now = ::time(nullptr);
  while (dirent* e = ::readdir(dir)) {
    if (!is_atomic_temp_name(e->d_name, base)) continue;
    struct stat st;
    if (::fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) continue;
    int pid = temp_pid(e->d_name, base);
    bool writer_gone = pid > 0 && pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH;
    if (writer_gone || now - st.st_mtime > kStaleAfterS) ::unlinkat(dirfd, e->d_name, 0);
  }
  ::closedir(dir);
}

Result<void> write_all(int fd, std::string_view data, const std::string& what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("cannot write " + what);
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

// A temporary file in the target's directory, removed unless commit() renamed it.
class TempFile {
 public:
  TempFile(TempFile&& o) noexcept
      : dirfd_(o.dirfd_), fd_(std::move(o.fd_)), name_(std::exchange(o.name_, {})),
        committed_(o.committed_) {}
  TempFile& operator=(TempFile&&) = delete;
  ~TempFile() {
    if (!committed_ && !name_.empty()) ::unlinkat(dirfd_, name_.c_str(), 0);
  }

  static Result<TempFile> create(int dirfd, const std::string& dir, const std::string& base,
                                 const Target& target) {
    TempFile t(dirfd);
    // O_TMPFILE: nothing has a name until the data is complete, so a SIGKILL during the
    // write leaves nothing behind.
    t.fd_.reset(::openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, target.mode));
    if (!t.fd_.valid()) {
      if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
        return fail_errno("cannot create a file in " + dir);
      // No O_TMPFILE on this file system: a fresh name nobody can have planted a link at.
      for (int i = 0; i < kNameAttempts && !t.fd_.valid(); ++i) {
        std::string name = temp_name(base);
        t.fd_.reset(::openat(dirfd, name.c_str(),
                             O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, target.mode));
        if (t.fd_.valid()) t.name_ = std::move(name);
        else if (errno != EEXIST) return fail_errno("cannot create a file in " + dir);
      }
      if (!t.fd_.valid()) return fail("cannot create a file in {}: no free temporary name", dir);
    }
    // The creation mode went through the umask; an existing file's bits are kept exactly.
    if (target.exists) (void)::fchmod(t.fd_.get(), target.mode);
    return t;
  }

  int fd() const { return fd_.get(); }

  Result<void> commit(const std::string& base, const std::string& path) {
    if (::fsync(fd_.get()) != 0) return fail_errno("cannot fsync " + path);
    if (name_.empty()) {
      const std::string self = fmt::format("/proc/self/fd/{}", fd_.get());
      for (int i = 0; i < kNameAttempts && name_.empty(); ++i) {
        std::string name = temp_name(base);
        if (::linkat(AT_FDCWD, self.c_str(), dirfd_, name.c_str(), AT_SYMLINK_FOLLOW) == 0)
          name_ = std::move(name);
        else if (errno != EEXIST)
          return fail_errno("cannot name the temporary file for " + path);
      }
      if (name_.empty()) return fail("cannot name the temporary file for {}", path);
    }
    fd_.reset();
    if (::renameat(dirfd_, name_.c_str(), dirfd_, base.c_str()) != 0)
      return fail_errno("cannot rename the temporary file to " + path);
    committed_ = true;
    (void)::fsync(dirfd_);  // the rename itself survives a crash (best effort)
    return {};
  }

 private:
  explicit TempFile(int dirfd) : dirfd_(dirfd) {}
  int dirfd_;
  UniqueFd fd_;
  std::string name_;  // "" while it is an unnamed O_TMPFILE
  bool committed_ = false;
};

Result<UniqueFd> open_dir(const std::string& path, const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.valid()) return fd;
  if (errno == ENOENT) return fail("{}: no such directory {}", path, dir);
  if (errno == ENOTDIR) return fail("{}: {} is not a directory", path, dir);
  return fail_errno(path + ": cannot open the directory " + dir);
}

Result<void> replace_file(const std::string& path, const Target& t, std::string_view data) {
  auto [dir, base] = split_dir(t.path);
  if (base.empty() || base == "." || base == "..") return fail("{}: is a directory", path);
  auto dirfd = open_dir(path, dir);
  if (!dirfd) return std::unexpected(dirfd.error());
  remove_stale_temps(dirfd->get(), base);
  auto tmp = TempFile::create(dirfd->get(), dir, base, t);
  if (!tmp) return std::unexpected(tmp.error());
  if (auto w = write_all(tmp->fd(), data, path); !w) return w;
  return tmp->commit(base, path);
}

}  // namespace

bool is_atomic_temp_name(std::string_view name, std::string_view target_name) {
  target_name = target_name.substr(0, std::min(target_name.size(), kMaxNameInTemp));
  if (name.size() < 1 + target_name.size() + kTempTag.size() || name[0] != '.') return false;
  name.remove_prefix(1);
  if (!name.starts_with(target_name)) return false;
  name.remove_prefix(target_name.size());
  if (!name.starts_with(kTempTag)) return false;
  name.remove_prefix(kTempTag.size());
  size_t dot = name.find('.');
  if (dot == 0 || dot == std::string_view::npos) return false;
  for (char c : name.substr(0, dot))
    if (c < '0' || c > '9') return false;
  std::string_view random = name.substr(dot + 1);
  if (random.size() != 16) return false;
  for (char c : random)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Result<void> write_file_atomic(const std::string& path, std::string_view data) {
  auto t = resolve(path);
  if (!t) return std::unexpected(t.error());
  switch (t->kind) {
    case Kind::kDescriptor: {
      // stdio may hold earlier output for the same descriptor: keep the order.
      if (t->fd == STDOUT_FILENO) std::fflush(stdout);
      if (t->fd == STDERR_FILENO) std::fflush(stderr);
      return write_all(t->fd, data, path);
    }
    case Kind::kDirect: {
      UniqueFd fd(::open(t->path.c_str(), O_WRONLY | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) return fail_errno("cannot open " + path);
      return write_all(fd.get(), data, path);
    }
    case Kind::kReplace:
      return replace_file(path, *t, data);
  }
  return fail("{}: internal: unknown target kind", path);
}

Result<void> write_file_atomic_at(int dirfd, const std::string& name, std::string_view data,
                                  mode_t mode, const std::string& what) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
    return fail("{}: not a file name", what);
  Target t;
  t.path = what;
  t.exists = true;  // the bits are set exactly, whatever the umask
  t.mode = mode;
  remove_stale_temps(dirfd, name);
  auto tmp = TempFile::create(dirfd, what, name, t);
  if (!tmp) return std::unexpected(tmp.error());
  if (auto w = write_all(tmp->fd(), data, what); !w) return w;
  return tmp->commit(name, what);
}

Result<void> check_output_path(const std::string& path) {
  auto t = resolve(path);
  if (!t) return std::unexpected(t.error());
  switch (t->kind) {
    case Kind::kDescriptor:
      return {};
    case Kind::kDirect:
      if (::access(t->path.c_str(), W_OK) != 0) return fail_errno("cannot write " + path);
      return {};
    case Kind::kReplace: {
      auto [dir, base] = split_dir(t->path);
      if (base.empty() || base == "." || base == "..") return fail("{}: is a directory", path);
      auto dirfd = open_dir(path, dir);
      if (!dirfd) return std::unexpected(dirfd.error());
      // A file that can be created there now (then dropped): catches read-only file
      // systems and permissions, which the directory's mode bits alone do not tell root.
      auto tmp = TempFile::create(dirfd->get(), dir, base, *t);
      if (!tmp) return fail("{}: {}", path, tmp.error().message);
      return {};
    }
  }
  return {};
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail_errno("cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace leakwatch
