// semaphore.cpp - counting semaphore: a CAS fast path, waiters sleep while the count is zero.
#include "skyloft/sync.hpp"

namespace skyloft {

bool Semaphore::try_acquire() noexcept {
  std::uint32_t c = count_.load(std::memory_order_relaxed);
  while (c > 0) {
    if (count_.compare_exchange_weak(c, c - 1, std::memory_order_acquire, std::memory_order_relaxed)) return true;
  }
  return false;
}

void Semaphore::acquire() { try_acquire_until(kNoDeadline); }

bool Semaphore::try_acquire_until(Deadline deadline) {
  for (;;) {
    if (try_acquire()) return true;
    WaitResult r = wait_address(count_, 0, deadline, WaitReason::semaphore);
    if (r == WaitResult::timed_out) return try_acquire();
  }
}

void Semaphore::release(std::uint32_t n) noexcept {
  count_.fetch_add(n, std::memory_order_seq_cst);
  wake_address(count_, n);  // one load when nobody waits in the bucket
}

}  // namespace skyloft
