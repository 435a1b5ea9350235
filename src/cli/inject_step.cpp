#include "cli/inject_step.h"

#include <fmt/format.h>

#include "session/inprocess.h"
#include "common/log.h"
#include "common/procfs.h"
#include "inject/injector.h"
#include "inject/target_checks.h"
#include "alloc/preload_plan.h"

namespace leakwatch::cli {

Result<InjectStep> ensure_injected(int pid, const report::Sampling& wanted, bool sampling_given,
                                   bool verbose) {
  InjectStep step;
  auto loaded = alloc::find_loaded_preload(pid);
  if (!loaded) return fail("--inject: {}", loaded.error().message);
  if (*loaded) {
    const auto& lib = **loaded;
    if (!lib.active())
      return fail("--inject: pid {} has {} loaded but it is not sampling (flags 0x{:x}): trace "
                  "it without --inject",
                  pid, lib.mapped_path, lib.stats.flags);
    report::Sampling theirs = session::preload_sampling(lib.stats);
    step.sampling = theirs;
    bool earlier = (lib.stats.flags & LW_PRELOAD_F_INJECTED) != 0;
    const char* how = earlier ? "injected earlier" : "preloaded at start";
    if (sampling_given && !(theirs == wanted))
      log::warn("pid {} already runs with the sampling library ({}, {}): reusing it; the "
                "sampling asked for ({}) is not applied",
                pid, session::describe_sampling(theirs), how, session::describe_sampling(wanted));
    else
      log::info("pid {} already runs with the sampling library ({}, {}): reusing it", pid,
                session::describe_sampling(theirs), how);
    step.notes.push_back(fmt::format("traced in-process: the sampling library was already in pid "
                                     "{} ({}), reused",
                                     pid, how));
    return step;
  }
  auto library = alloc::find_preload_library();
  if (!library) return fail("--inject: {}", library.error().message);
  inject::InjectOptions o;
  o.library = *library;
  switch (wanted.mode) {
    case report::SamplingMode::kBytes: o.sample_bytes = wanted.rate; break;
    case report::SamplingMode::kCalls: o.sample_calls = wanted.rate; break;
    default: o.sample_bytes = 1; break;
  }
  step.sampling = wanted;
  auto out = inject::inject_library(pid, o);
  if (!out) return fail("--inject: {}", out.error().message);
  step.injected = true;
  const auto& r = out->result;
  log::info("injected {} into pid {} ({}): thread {} at a safe point after {} attempt(s); {} "
            "threads paused {:.1f} ms, the loading thread {:.1f} ms, loading took {:.1f} ms; {} "
            "GOT slots rewritten in {} objects",
            LEAKWATCH_PRELOAD_LIBRARY, pid, session::describe_sampling(wanted), out->tid, out->attempts,
            out->threads, out->pause_ms, out->thread_pause_ms, out->load_ms, r.slots_rewritten,
            r.objects);
  if (verbose) {
    log::info("  library: {} ({})", out->path, out->placement);
    log::info("  pause: {:.1f} ms until every thread had stopped, {:.1f} ms judging stacks",
              out->stop_ms, out->judge_ms);
    for (const auto& s : out->skipped) log::info("  passed over: {}", s);
    log::info("  GOT: {} slots rewritten ({} read-only pages made writable for the write), {} "
              "bound to another definition and left alone, {} objects not rewritten (the "
              "library, the loader, the allocator's own library)",
              r.slots_rewritten, r.relro_pages, r.slots_bound_elsewhere, r.skipped_objects);
    if (r.summary[0]) log::info("  left alone: {}", r.summary);
    if (auto maps = read_proc_maps(pid))
      for (const auto& line : inject::direct_allocator_calls(pid, *maps))
        log::info("  not seen: {}", line);
  }
  step.notes.push_back(fmt::format(
      "traced in-process: the sampling library was injected into the running pid {} (all {} "
      "threads paused {:.1f} ms; {} GOT slots rewritten): figures are allocations since "
      "injection",
      pid, out->threads, out->pause_ms, r.slots_rewritten));
  return step;
}

}  // namespace leakwatch::cli
