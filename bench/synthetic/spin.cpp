// spin.cpp - spinning for a service time of received CPU (spin.hpp).
#include "spin.hpp"

#include "skyloft/preempt.hpp"
#include "skyloft/time.hpp"

namespace skyloft::synthetic {

void spin_for_service(std::uint64_t service_ns) noexcept {
  std::uint64_t served = 0;
  std::uint64_t last = skyloft::now_ns();
  while (served < service_ns) {
    skyloft::preempt_point();
    const std::uint64_t t = skyloft::now_ns();
    const std::uint64_t d = t - last;  // now_ns is monotonic on one thread, and a task resumes later
    if (d < kOffCoreGapNs) served += d;
    last = t;
  }
}

}  // namespace skyloft::synthetic
