#include "analysis/history.h"

#include <algorithm>
#include <cmath>

namespace leakwatch::analysis {

StackHistory::StackHistory(size_t max_points)
    : max_points_(std::max<size_t>(8, max_points + (max_points % 2))) {
  points_.reserve(max_points_);
}

bool StackHistory::add_point(double t_s, double bytes, double count) {
  if (raw_points_ > 0 && !(t_s > last_.t_s)) return false;
  if (raw_points_ > 0) interval_s_ = t_s - last_.t_s;
  last_ = SeriesPoint{t_s, bytes, count};
  ++raw_points_;
  if (bytes > 0 && std::isnan(first_nonzero_t_)) first_nonzero_t_ = t_s;

  pending_sum_.t_s += t_s;
  pending_sum_.bytes += bytes;
  pending_sum_.count += count;
  if (++pending_n_ == stride_) flush_pending();
  return true;
}

void StackHistory::flush_pending() {
  auto n = static_cast<double>(pending_n_);
  points_.push_back({pending_sum_.t_s / n, pending_sum_.bytes / n, pending_sum_.count / n});
  pending_sum_ = {};
  pending_n_ = 0;
  if (points_.size() < max_points_) return;
  // Full: halve the resolution.  max_points_ is even, so every point has a partner.
  for (size_t i = 0; i < points_.size() / 2; ++i) {
    const SeriesPoint& a = points_[2 * i];
    const SeriesPoint& b = points_[2 * i + 1];
    points_[i] = {(a.t_s + b.t_s) / 2, (a.bytes + b.bytes) / 2, (a.count + b.count) / 2};
  }
  points_.resize(points_.size() / 2);
  stride_ *= 2;
}

std::vector<SeriesPoint> StackHistory::points() const {
  std::vector<SeriesPoint> out = points_;
  if (pending_n_ > 0) {
    auto n = static_cast<double>(pending_n_);
    out.push_back({pending_sum_.t_s / n, pending_sum_.bytes / n, pending_sum_.count / n});
  }
  return out;
}

std::optional<SeriesPoint> StackHistory::latest() const {
  if (raw_points_ == 0) return std::nullopt;
  return last_;
}

}  // namespace leakwatch::analysis
