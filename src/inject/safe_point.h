// Whether a stopped thread is at a safe point to run the loader in: judged from its whole
// stack, unwound with the objects' CFI (src/unwind) from the registers and a copy of the
// stack taken while it is stopped.
//
// Not safe, with the reason:
//   - a frame in the dynamic loader (ld-linux: dlopen, lazy binding, TLS set-up), or in a
//     libc function that holds the loader's locks (dl_iterate_phdr, dlopen, dlsym ...);
//   - a frame in the allocator: glibc's malloc family, operator new/delete, or anywhere in
//     a separate allocator library (jemalloc, tcmalloc, mimalloc) or the sampling library;
//   - a frame in fork, exit, pthread_create, setlocale, iconv_open and the like, which hold
//     locks the loader or the allocator may need;
//   - a signal handler on the stack (a return address at glibc's __restore_rt, recognised by
//     its code: mov $15,%rax; syscall);
//   - a stack that could not be unwound to its outermost frame (the unwinder's reason).
// A thread stopped for a signal it is about to receive, or by a stopping signal, is not used
// either (ThreadStop marks those).
//
// Thread-safety: not thread-safe (the unwinder is not); one judge per injection.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/procfs.h"
#include "common/result.h"
#include "inject/ptrace_thread.h"
#include "unwind/unwinder.h"

namespace leakwatch::inject {

class SafePointJudge {
 public:
  // Reads the process's maps and the symbols of its objects (before it is stopped, so that
  // the stop stays short).
  [[nodiscard]] static Result<std::unique_ptr<SafePointJudge>> Create(int pid);

  // "" when `t` may run the loader now, else why not (one phrase).
  std::string judge(const StoppedThread& t);

  // The name of an unsafe function or object (for tests): "" when `name` is safe to be in.
  static bool unsafe_function(const std::string& name);

 private:
  struct Range {
    uint64_t lo, hi;  // file offsets
    std::string name;
  };
  struct Object {
    bool whole = false;  // every frame inside is unsafe
    std::string why;     // for `whole`
    std::vector<Range> ranges;
  };
  SafePointJudge() = default;
  const Object& object(const std::string& path);
  std::string frame_problem(uint64_t pc, bool exact);

  int pid_ = 0;
  std::vector<MapEntry> maps_;
  std::map<std::string, Object> objects_;
  std::unique_ptr<unwind::DwarfUnwinder> unwinder_;
};

}  // namespace leakwatch::inject
