// histogram.cpp - the log-linear histogram (histogram.hpp).
#include "histogram.hpp"

#include <algorithm>
#include <cmath>

namespace skyloft::loadgen {
namespace {

constexpr std::uint64_t kSub = std::uint64_t{1} << Histogram::kSubBits;
// Group 0 holds [0, kSub) exactly; group g >= 1 holds [kSub << (g - 1), kSub << g) in kSub buckets.
constexpr std::size_t kGroups = 64 - Histogram::kSubBits + 1;

}  // namespace

Histogram::Histogram() : buckets_(kGroups * kSub) {}

std::size_t Histogram::bucket_of(std::uint64_t v) noexcept {
  if (v < kSub) return static_cast<std::size_t>(v);
  const int msb = 63 - __builtin_clzll(v);
  const int shift = msb - kSubBits;  // >= 0
  const std::uint64_t group = static_cast<std::uint64_t>(shift) + 1;
  return static_cast<std::size_t>(group * kSub + ((v >> shift) & (kSub - 1)));
}

std::uint64_t Histogram::bucket_low(std::size_t b) noexcept {
  if (b < kSub) return b;
  const std::uint64_t group = b / kSub, sub = b % kSub;
  return (kSub + sub) << (group - 1);
}

std::uint64_t Histogram::bucket_width(std::size_t b) noexcept { return b < kSub ? 1 : std::uint64_t{1} << (b / kSub - 1); }

void Histogram::record(std::uint64_t v) noexcept {
  ++buckets_[bucket_of(v)];
  ++count_;
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
  sum_ += static_cast<double>(v);
}

void Histogram::merge(const Histogram& o) noexcept {
  for (std::size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += o.buckets_[i];
  count_ += o.count_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
  sum_ += o.sum_;
}

void Histogram::clear() noexcept {
  std::fill(buckets_.begin(), buckets_.end(), 0);
  count_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

std::uint64_t Histogram::quantile(double q) const noexcept {
  if (count_ == 0) return 0;
  const auto rank = std::clamp<std::uint64_t>(
      static_cast<std::uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(count_))), 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    seen += buckets_[b];
    if (seen >= rank) {
      const std::uint64_t mid = bucket_low(b) + (bucket_width(b) - 1) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

}  // namespace skyloft::loadgen
