// histogram.hpp - a log-linear histogram of non-negative integers (latencies in ns, slowdowns in 1/1000).
//
// Values below 2^kSubBits are counted exactly; above, each power of two is split into 2^kSubBits equal
// buckets, so a reported quantile is within 1/128 (0.8%) of the true sample. Fixed size (~60 KiB), no
// allocation while recording, mergeable: one per generator thread, merged for the report. Not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

namespace skyloft::loadgen {

class Histogram {
 public:
  static constexpr int kSubBits = 7;

  Histogram();
  void record(std::uint64_t v) noexcept;
  void merge(const Histogram& other) noexcept;
  void clear() noexcept;

  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept { return count_ ? sum_ / static_cast<double>(count_) : 0; }
  // The nearest-rank q-quantile (q in [0, 1]) as the middle of its bucket, clamped to [min, max]; 0 when empty.
  std::uint64_t quantile(double q) const noexcept;

  // Bucket arithmetic, exposed for the tests.
  static std::size_t bucket_of(std::uint64_t v) noexcept;
  static std::uint64_t bucket_low(std::size_t b) noexcept;
  static std::uint64_t bucket_width(std::size_t b) noexcept;

 private:
  std::vector<std::uint64_t> buckets_;
  std::uint64_t count_ = 0, min_ = UINT64_MAX, max_ = 0;
  double sum_ = 0;
};

}  // namespace skyloft::loadgen
