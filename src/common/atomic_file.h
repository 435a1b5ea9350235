// Writing report files safely, also as root in directories other users can write to.
//
// write_file_atomic(PATH, data) writes PATH completely or not at all:
//   - a regular file (or a name that does not exist yet) is replaced by rename: the data goes
//     to a temporary file in PATH's directory, is fsync'ed, then renamed over PATH.  The
//     temporary is an O_TMPFILE (no name until it is complete) where the file system has
//     them, else created with O_CREAT|O_EXCL|O_NOFOLLOW under an unpredictable name; a
//     symbolic link planted at any name leakwatch uses is never written through.  An
//     existing file keeps its permission bits.
//   - a FIFO, a character device or a terminal is written directly (a rename would replace
//     the node itself); /dev/stdout, /dev/stderr, /dev/fd/N and /proc/self/fd/N write to
//     that descriptor of this process, whatever it is (pipe, terminal, redirected file).
//   - a symbolic link given as PATH is followed only when it is owned by root or by the
//     user running leakwatch (the rule the kernel's fs.protected_symlinks applies in sticky
//     directories); the file it leads to is then written as above.  A link owned by another
//     user is an error, as are directories and block devices.
//
// Temporaries are named ".NAME.lwtmp.PID.RANDOM" (NAME the target's file name, PID the
// writer's process id, RANDOM 16 hex digits) in the target's directory.  One left behind by
// a writer that was killed (SIGKILL between naming and renaming it, or on a file system
// without O_TMPFILE) is removed by the next write of the same NAME when it is a regular
// file owned by this user and its PID no longer runs (or it is over a day old).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/result.h"

namespace leakwatch {

[[nodiscard]] Result<void> write_file_atomic(const std::string& path, std::string_view data);

// Writes `name` in the open directory `dirfd` by the same temporary-and-rename rule, with
// exactly the permission bits `mode`.  For a directory leakwatch has opened and checked
// itself, whose path must not be looked up again (one in another process's mount namespace,
// reached through /proc/PID/root, where absolute links would lead back into leakwatch's
// own).  `what` names the file in messages.
[[nodiscard]] Result<void> write_file_atomic_at(int dirfd, const std::string& name,
                                                std::string_view data, mode_t mode,
                                                const std::string& what);

// Checks, before any work is done, that write_file_atomic(path, ...) can succeed: the same
// link rules, the directory exists and a file can be created in it (it creates and removes
// an unnamed temporary there), or the device/descriptor is writable.  Writes nothing.
[[nodiscard]] Result<void> check_output_path(const std::string& path);

[[nodiscard]] Result<std::string> read_file(const std::string& path);

// The temporary-name rule above, for tests and for tools that look at a directory:
// whether `name` is a temporary of leakwatch's for target file name `target_name`.
bool is_atomic_temp_name(std::string_view name, std::string_view target_name);

}  // namespace leakwatch
