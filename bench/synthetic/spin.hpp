// spin.hpp - the synthetic request's work: spinning for its service time of CPU actually received.
#pragma once

#include <cstdint>

namespace skyloft::synthetic {

// Spins until the caller has run for `service_ns` on a core. Time off the core does not count: a gap of
// more than kOffCoreGapNs between two clock reads (a preemption, the kernel descheduling the thread, a
// hypervisor pause) is left out, so a request preempted halfway still gets all its service when it
// resumes (as the original's calibrated work loop does). Calls skyloft::preempt_point() on every turn,
// so the flag and hybrid mechanisms preempt it as fast as the signal ones; outside tasks that is a no-op.
void spin_for_service(std::uint64_t service_ns) noexcept;

inline constexpr std::uint64_t kOffCoreGapNs = 2000;

}  // namespace skyloft::synthetic

#include "synthetic_wire.hpp"

namespace skyloft::synthetic {

// The request code both servers (skyloft and the Linux pool) run: spin, then echo the request.
inline wire::Response serve_request(const wire::Request& r) noexcept {
  spin_for_service(r.service_ns);
  return {wire::Status::ok, r.id, r.service_ns, r.send_ns};
}

}  // namespace skyloft::synthetic
