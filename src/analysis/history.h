// Per-stack time series of outstanding bytes and allocations, one point per report
// interval, kept at bounded size for sessions of any length.
//
// Up to max_points points are kept.  When full, neighbours are averaged in pairs and each
// later point becomes the average of twice as many raw points, so the spacing stays uniform
// and the series always covers the whole session:
//
//   raw points:    a b c d e f g h            (max_points = 8, stride 1)
//   compacted:     ab cd ef gh                (stride 2: i j -> ij, k l -> kl, ...)
//   later:         ab cd ef gh ij kl mn op    (full again -> abcd efgh ijkl mnop, stride 4)
//
// A partly filled bucket is reported as one more point (the average so far).
// Thread-safety: none; the tracker owns one per stack.
#pragma once

#include <cstddef>
#include <limits>
#include <optional>
#include <vector>

namespace leakwatch::analysis {

struct SeriesPoint {
  double t_s = 0;    // seconds since the session started
  double bytes = 0;  // outstanding bytes at t (estimated when sampling)
  double count = 0;  // outstanding allocations at t (estimated when sampling)
};

class StackHistory {
 public:
  // Enough resolution for the verdict statistics and a Theil-Sen over 128 points is ~8k
  // pairs, cheap for thousands of stacks per interval.
  static constexpr size_t kDefaultMaxPoints = 128;

  // max_points is rounded up to an even number of at least 8.
  explicit StackHistory(size_t max_points = kDefaultMaxPoints);

  // Appends the state at time t.  Times must increase; a point at or before the previous
  // one is rejected (returns false) rather than reordering the series.
  bool add_point(double t_s, double bytes, double count);

  // The series, oldest first (compacted buckets and the partial bucket, if any).
  [[nodiscard]] std::vector<SeriesPoint> points() const;
  // Number of points points() returns.
  [[nodiscard]] size_t size() const { return points_.size() + (pending_n_ > 0 ? 1 : 0); }
  // Raw points ever added.
  [[nodiscard]] size_t raw_points() const { return raw_points_; }
  // Spacing of the last two raw points: the report interval.  0 before the second point.
  [[nodiscard]] double interval_s() const { return interval_s_; }
  // The last raw point, uncompacted.
  [[nodiscard]] std::optional<SeriesPoint> latest() const;
  // Time of the first raw point with bytes > 0; NaN when there has been none.
  [[nodiscard]] double first_nonzero_t() const { return first_nonzero_t_; }

 private:
  void flush_pending();

  size_t max_points_;
  size_t stride_ = 1;          // raw points per stored point
  std::vector<SeriesPoint> points_;
  SeriesPoint pending_sum_;    // sums over the bucket being filled
  size_t pending_n_ = 0;
  size_t raw_points_ = 0;
  SeriesPoint last_;
  double interval_s_ = 0;
  double first_nonzero_t_ = std::numeric_limits<double>::quiet_NaN();
};

}  // namespace leakwatch::analysis
