// skyloft/spinlock.hpp - a test-and-test-and-set spinlock for short critical sections: the runtime's own,
// and the one a policy (skyloft/policy.hpp) should use for its queues.
//
// Held only for a few instructions, never across a context switch or a blocking call. But the kernel may
// still preempt a holder: an outside thread that spawns or wakes tasks (a load generator, a thread calling
// block_on) shares the cores with the pinned workers, and a worker spinning on a lock whose holder the
// kernel descheduled on the same core would spin out its whole kernel slice (milliseconds) before the
// holder runs again. So after kSpinsBeforeYield failed polls (tens of microseconds, far beyond any
// critical section that is running) a waiter gives its core away with os_yield() between polls.
#pragma once

#include <sched.h>

#include <atomic>
#include <cstdint>

namespace skyloft {

inline void cpu_relax() noexcept { __builtin_ia32_pause(); }

// The kernel's sched_yield, never a wrapper of it. Under skyloft-run the preload library interposes
// sched_yield (it yields the calling task), and a runtime lock's waiter may be on a task's stack while not
// holding its processor (a blocking section reacquiring it): the interposed call re-entered the scheduler
// there and spun forever (CI: ~BlockingSection -> reacquire_processor -> wakeup -> the timer mechanism's
// lock -> sched_yield -> this_task::yield -> reacquire_processor). x86-64 system call ABI.
inline void os_yield() noexcept {
  long ret;
  asm volatile("syscall" : "=a"(ret) : "a"(24L /* __NR_sched_yield */) : "rcx", "r11", "memory");
  (void)ret;
}

class SpinLock {
 public:
  void lock() noexcept {
    for (std::uint32_t spins = 0;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins < kSpinsBeforeYield) cpu_relax();
        else os_yield();  // the holder is not running: let it (see the header)
      }
    }
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }
  bool is_locked() const noexcept { return locked_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::uint32_t kSpinsBeforeYield = 1u << 12;  // ~4096 pauses: tens of microseconds
  std::atomic<bool> locked_{false};
};

}  // namespace skyloft
