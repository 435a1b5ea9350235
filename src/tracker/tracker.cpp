#include "tracker/tracker.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "analysis/sampling.h"
#include "common/clock.h"
#include "analysis/verdict.h"

namespace leakwatch::tracker {

std::map<std::string, uint64_t> loss_counters(const probe::Counters& c, size_t failed_attaches) {
  return {
      {"allocs_map_full", c[LW_CNT_ALLOCS_FULL]},
      {"stack_lost", c[LW_CNT_STACK_LOST]},
      {"combined_map_full", c[LW_CNT_COMBINED_FULL]},
      {"thread_state_full", c[LW_CNT_STATE_FULL]},
      {"trace_events_lost", c[LW_CNT_EVENTS_LOST]},
      {"attach_failed", failed_attaches},
  };
}

Tracker::Tracker(TrackerConfig cfg, FrameResolver& resolver)
    : cfg_(std::move(cfg)), resolver_(resolver) {}

namespace {

// A C++ runtime's operator new is not probed when it only calls malloc (alloc/allocator_plan):
// the allocation is recorded at malloc's return, inside operator new.  Its frames go, so
// that the stack starts, as in every other mode, at the code that called new.
void drop_operator_new_frames(std::vector<report::Frame>& frames) {
  size_t n = 0;
  while (n + 1 < frames.size() && frames[n].function.starts_with("operator new")) n++;
  frames.erase(frames.begin(), frames.begin() + static_cast<std::ptrdiff_t>(n));
}

}  // namespace

const Tracker::StackState& Tracker::frames_for(const StackKey& key, const Snapshot& snap) {
  StackState& st = stacks_[key];
  if (!st.resolved) {
    st.resolved = true;
    if (key.stack_id >= 0 && (static_cast<uint32_t>(key.stack_id) & kUserStackBit)) {
      auto [ips, truncated] = snap.read_user_stack(
          key.tgid, static_cast<uint32_t>(key.stack_id) & ~kUserStackBit);
      st.frames = resolver_.resolve(key.tgid, ips);
      st.truncated = truncated;
    } else if (key.stack_id < 0) {
      report::Frame f;
      f.function = "[lost stack]";
      st.frames.push_back(f);
    } else if (snap.read_stack) {
      st.frames = resolver_.resolve(key.tgid, snap.read_stack(key.stack_id));
    }
    drop_operator_new_frames(st.frames);
  }
  return st;
}

report::Report Tracker::update(const Snapshot& snap, uint64_t now_ns, double session_s) {
  struct Group {
    analysis::EstimateAccumulator acc;
    double oldest_age_s = 0;
    std::vector<double> ages_s;
    std::vector<report::Allocation> allocations;
  };
  std::map<StackKey, Group> groups;

  if (cfg_.combined_only) {
    // Per-stack totals kept in BPF: no ages, no per-allocation sizes.  For byte sampling
    // the inclusion probability is taken at the stack's mean size (stated in the notes).
    for (const auto& c : snap.combined) {
      Group& g = groups[{c.tgid, c.stack_id}];
      double mean = c.count ? static_cast<double>(c.total_size) / static_cast<double>(c.count) : 0;
      double p = analysis::inclusion_probability(cfg_.sampling, static_cast<uint64_t>(mean));
      g.acc.add(mean, p, static_cast<double>(c.count));
    }
  } else {
    for (const auto& a : snap.allocs) {
      uint64_t age_ns = now_ns > a.timestamp_ns ? now_ns - a.timestamp_ns : 0;
      if (age_ns < cfg_.min_age_ns) continue;
      int32_t stack_id = a.stack_id;
      if (snap.dwarf_stack_of) {
        if (uint32_t d = snap.dwarf_stack_of(a.tgid, a.address); d != 0 && d < kUserStackBit)
          stack_id = static_cast<int32_t>(d | kUserStackBit);
      }
      Group& g = groups[{a.tgid, stack_id}];
      g.acc.add(static_cast<double>(a.size),
                analysis::inclusion_probability(cfg_.sampling, a.size));
      double age_s = static_cast<double>(age_ns) / 1e9;
      g.oldest_age_s = std::max(g.oldest_age_s, age_s);
      g.ages_s.push_back(age_s);
      if (cfg_.show_allocs) g.allocations.push_back({a.address, a.size, age_s});
    }
  }

  report::Report rep;
  rep.target = cfg_.target;
  rep.sampling = cfg_.sampling;
  rep.duration_s = session_s;
  rep.timestamp_unix_ms = unix_ms_now();
  rep.lost = loss_counters(snap.counters, snap.failed_attaches);

  // Every stack seen so far gets a point, zero when nothing of it is outstanding now.
  double total_bytes = 0, total_count = 0;
  for (auto& [key, g] : groups) stacks_[key];
  for (auto& [key, st] : stacks_) {
    auto it = groups.find(key);
    if (it == groups.end()) {
      st.history.add_point(session_s, 0, 0);
      continue;
    }
    Group& g = it->second;
    report::StackReport sr;
    sr.stack_id = (static_cast<uint64_t>(key.tgid) << 32) | static_cast<uint32_t>(key.stack_id);
    sr.bytes = g.acc.bytes();
    sr.count = g.acc.count();
    sr.oldest_age_s = g.oldest_age_s;
    std::sort(g.allocations.begin(), g.allocations.end(),
              [](const auto& a, const auto& b) { return a.size > b.size; });
    sr.allocations = std::move(g.allocations);
    st.history.add_point(session_s, sr.bytes.estimate, sr.count.estimate);
    total_bytes += sr.bytes.estimate;
    total_count += sr.count.estimate;
    analysis::VerdictResult v =
        analysis::classify(st.history, analysis::SurvivorAges::from_ages(g.ages_s), session_s);
    sr.verdict = v.verdict;
    sr.score = v.score;
    sr.reason = v.reason;
    sr.growth_bytes_per_s = v.growth_bytes_per_s;
    const StackState& resolved = frames_for(key, snap);
    sr.frames = resolved.frames;
    sr.truncated = resolved.truncated;
    rep.stacks.push_back(std::move(sr));
  }

  auto by_size = [](const report::StackReport& a, const report::StackReport& b) {
    if (a.bytes.estimate != b.bytes.estimate) return a.bytes.estimate > b.bytes.estimate;
    return a.stack_id < b.stack_id;
  };
  auto by_count = [](const report::StackReport& a, const report::StackReport& b) {
    if (a.count.estimate != b.count.estimate) return a.count.estimate > b.count.estimate;
    return a.stack_id < b.stack_id;
  };
  if (cfg_.sort_by == SortBy::kCount)
    std::sort(rep.stacks.begin(), rep.stacks.end(), by_count);
  else
    std::sort(rep.stacks.begin(), rep.stacks.end(), by_size);
  if (cfg_.combined_only && cfg_.sampling.mode == report::SamplingMode::kBytes)
    rep.notes.push_back("--combined-only with byte sampling: estimates use each stack's mean size");
  if (total_.add_point(session_s, total_bytes, total_count)) {
    rss_seen_ |= snap.rss_bytes.has_value();
    rss_.add_point(session_s, snap.rss_bytes.value_or(std::numeric_limits<double>::quiet_NaN()), 0);
  }
  rep.timeline = timeline(rep);
  return rep;
}

namespace {

// A stack's history on the timeline's axis: linear between its points, 0 before its first
// one (nothing of it was outstanding: it had not been seen).  Stacks first seen after the
// session's first report are compacted at other times than the axis, hence the
// interpolation.
std::vector<double> on_axis(const std::vector<analysis::SeriesPoint>& points,
                            const std::vector<double>& axis) {
  std::vector<double> out(axis.size(), 0);
  if (points.empty()) return out;
  size_t j = 0;
  for (size_t i = 0; i < axis.size(); ++i) {
    const double t = axis[i];
    if (t < points.front().t_s - 1e-9) continue;
    while (j + 1 < points.size() && points[j + 1].t_s <= t) ++j;
    const analysis::SeriesPoint& a = points[j];
    if (j + 1 >= points.size() || t <= a.t_s) {
      out[i] = a.bytes;
      continue;
    }
    const analysis::SeriesPoint& b = points[j + 1];
    const double f = (t - a.t_s) / (b.t_s - a.t_s);
    out[i] = a.bytes + f * (b.bytes - a.bytes);
  }
  return out;
}

}  // namespace

report::Timeline Tracker::timeline(const report::Report& rep) const {
  report::Timeline tl;
  for (const analysis::SeriesPoint& p : total_.points()) {
    tl.t_s.push_back(p.t_s);
    tl.total_bytes.push_back(p.bytes);
  }
  if (rss_seen_)
    for (const analysis::SeriesPoint& p : rss_.points()) tl.rss_bytes.push_back(p.bytes);
  for (const report::StackReport& s : rep.stacks) {
    if (tl.stacks.size() >= kTimelineStacks) break;
    const StackKey key{static_cast<uint32_t>(s.stack_id >> 32),
                       static_cast<int32_t>(static_cast<uint32_t>(s.stack_id))};
    auto it = stacks_.find(key);
    if (it == stacks_.end()) continue;
    tl.stacks.push_back({s.stack_id, on_axis(it->second.history.points(), tl.t_s)});
  }
  return tl;
}

}  // namespace leakwatch::tracker
