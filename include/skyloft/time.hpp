// time.hpp - the runtime's clock: CLOCK_MONOTONIC nanoseconds, read through the TSC where it is invariant.
#pragma once

#include <chrono>
#include <cstdint>

namespace skyloft {

// Deadlines are std::chrono::steady_clock time points (CLOCK_MONOTONIC); max() means "no deadline".
using Deadline = std::chrono::steady_clock::time_point;
inline constexpr Deadline kNoDeadline = Deadline::max();

// Monotonic nanoseconds on the steady_clock epoch. Uses the TSC when the CPU has an invariant TSC (its rate
// calibrated over the clock's first 4 ms of use, clock_gettime meanwhile), else clock_gettime(CLOCK_MONOTONIC).
std::uint64_t now_ns() noexcept;

inline Deadline deadline_after(std::chrono::nanoseconds d) noexcept {
  auto now = std::chrono::steady_clock::now();
  if (d.count() <= 0) return now;
  if (d > kNoDeadline - now) return kNoDeadline;
  return now + d;
}

}  // namespace skyloft
