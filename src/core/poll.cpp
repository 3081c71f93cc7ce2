// poll.cpp - the slow path of the poll point (scheduler.hpp: sched_poll): what a set bit asks for.
//
// Order: timers first (a sleeper whose deadline passed competes for this very pick), then I/O
// completions (their tasks too), then revocation, which may take the core away from this application
// after the others have been made runnable (so they are not stranded on a core about to be lent out).
#include "core/processor.hpp"
#include "core/scheduler.hpp"

namespace skyloft {

void sched_poll_slow(Processor* p, std::uint32_t bits) noexcept {
  std::uint64_t now = 0;
  if (bits & kPollTimers) {
    const std::uint64_t due = p->timers.earliest();
    if (due != UINT64_MAX && due <= (now = now_ns())) p->timers.run_due(now);
  }
  if ((bits & kPollIo) && p->io != nullptr) p->io->poll(*p, now != 0 ? now : now_ns());
  if ((bits & kPollRevoke) && p->revoke != nullptr) p->revoke->poll(*p, now != 0 ? now : now_ns());
}

}  // namespace skyloft
