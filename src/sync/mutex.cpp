// mutex.cpp - Mutex slow paths: a three-state futex mutex (0 unlocked, 1 locked, 2 locked with waiters)
// over the address-keyed wait queue, after Drepper's "Futexes Are Tricky" (mutex 3).
#include "core/spinlock.hpp"
#include "skyloft/sync.hpp"

namespace skyloft {
namespace {
// A short spin catches a holder on another core that is about to unlock; it costs ~100 ns when it fails.
constexpr int kSpins = 64;
}  // namespace

void Mutex::lock_slow() {
  for (int i = 0; i < kSpins; ++i) {
    if (state_.load(std::memory_order_relaxed) == kUnlocked && try_lock()) return;
    cpu_relax();
  }
  std::uint32_t c = state_.exchange(kContended, std::memory_order_acquire);
  while (c != kUnlocked) {
    wait_address(state_, kContended, kNoDeadline, WaitReason::mutex);
    c = state_.exchange(kContended, std::memory_order_acquire);
  }
}

bool Mutex::try_lock_until(Deadline deadline) {
  if (try_lock()) return true;
  std::uint32_t c = state_.exchange(kContended, std::memory_order_acquire);
  while (c != kUnlocked) {
    if (wait_address(state_, kContended, deadline, WaitReason::mutex) == WaitResult::timed_out) {
      // Leaving kContended behind is safe: at worst the holder's unlock wakes nobody in particular.
      return state_.exchange(kContended, std::memory_order_acquire) == kUnlocked;
    }
    c = state_.exchange(kContended, std::memory_order_acquire);
  }
  return true;
}

void Mutex::unlock_slow() noexcept { wake_address(state_, 1); }

}  // namespace skyloft
