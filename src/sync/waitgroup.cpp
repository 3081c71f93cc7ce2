// waitgroup.cpp - WaitGroup: waiters sleep on the counter until it reaches zero.
#include "core/fatal.hpp"
#include "skyloft/sync.hpp"

namespace skyloft {

void WaitGroup::done() noexcept {
  std::uint32_t before = count_.fetch_sub(1, std::memory_order_seq_cst);
  if (before == 0) sky_fatal("WaitGroup::done() called more often than add()");
  if (before == 1) wake_address_all(count_);
}

void WaitGroup::wait() { wait_until(kNoDeadline); }

bool WaitGroup::wait_until(Deadline deadline) {
  for (;;) {
    std::uint32_t c = count_.load(std::memory_order_acquire);
    if (c == 0) return true;
    if (wait_address(count_, c, deadline, WaitReason::waitgroup) == WaitResult::timed_out) {
      return count_.load(std::memory_order_acquire) == 0;
    }
  }
}

}  // namespace skyloft
