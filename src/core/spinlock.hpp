// spinlock.hpp - a test-and-test-and-set spinlock for short runtime critical sections.
#pragma once

#include <atomic>
#include <cstdint>

namespace skyloft {

inline void cpu_relax() noexcept { __builtin_ia32_pause(); }

// Held only for a few instructions, never across a context switch or a blocking call.
class SpinLock {
 public:
  void lock() noexcept {
    for (;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) cpu_relax();
    }
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }
  bool is_locked() const noexcept { return locked_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace skyloft
