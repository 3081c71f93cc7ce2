// timespec.hpp - POSIX absolute and relative timeouts as runtime deadlines (steady_clock = CLOCK_MONOTONIC).
#pragma once

#include <errno.h>
#include <time.h>

#include <chrono>

#include "skyloft/time.hpp"

namespace skyloft::posix {

inline bool timespec_valid(const timespec* ts) noexcept {
  return ts != nullptr && ts->tv_nsec >= 0 && ts->tv_nsec < 1'000'000'000;
}

inline std::chrono::nanoseconds to_duration(const timespec& ts) noexcept {
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// An absolute time on `clock` as a deadline. CLOCK_REALTIME is converted once, at the call: a later step of
// the wall clock does not move the deadline (documented in the README).
inline Deadline deadline_from_abs(clockid_t clock, const timespec& abs) noexcept {
  if (clock == CLOCK_MONOTONIC) {
    if (abs.tv_sec < 0) return std::chrono::steady_clock::now();
    return Deadline(std::chrono::duration_cast<Deadline::duration>(to_duration(abs)));
  }
  timespec now{};
  clock_gettime(clock, &now);
  return deadline_after(to_duration(abs) - to_duration(now));
}

// The clocks a timed wait may name (pthread_cond_clockwait, pthread_mutex_clocklock, ...).
inline bool wait_clock_valid(clockid_t clock) noexcept { return clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC; }

}  // namespace skyloft::posix
