// arrivals.hpp - open-loop arrival processes: the gaps between the intended send times of requests.
//
// Open loop: the schedule never waits for responses. A generator that falls behind sends the overdue
// requests at once, and their latency still counts from the intended time (no coordinated omission).
#pragma once

#include <cstdint>
#include <random>
#include <string_view>

namespace skyloft::loadgen {

enum class ArrivalKind { poisson, constant };

// "poisson" or "constant"; anything else throws std::invalid_argument.
ArrivalKind parse_arrival_kind(std::string_view text);
const char* arrival_kind_name(ArrivalKind kind);

// Intended send times at `rate` requests per second: exponential gaps of mean 1/rate (Poisson) or exactly
// 1/rate (constant). Times are kept in double nanoseconds, so a constant 3 us gap does not drift.
class ArrivalProcess {
 public:
  ArrivalProcess(ArrivalKind kind, double rate_rps);
  // The next intended send time (first call: start_ns + one gap).
  std::uint64_t next(std::mt19937_64& rng);
  void start_at(std::uint64_t start_ns) { t_ = static_cast<double>(start_ns); }

 private:
  ArrivalKind kind_;
  double mean_gap_ns_;
  std::exponential_distribution<double> exp_;
  double t_ = 0;
};

}  // namespace skyloft::loadgen
