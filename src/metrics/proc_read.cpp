#include "metrics/proc_read.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/fd.h"

namespace leakwatch::metrics {

bool is_gone(const Error& e) { return e.errnum == ENOENT || e.errnum == ESRCH; }

}  // namespace leakwatch::metrics
