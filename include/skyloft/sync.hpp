// sync.hpp - synchronization that parks tasks, never workers: Mutex, CondVar, RWLock, Semaphore, Barrier,
// WaitGroup. All of them also work from plain kernel threads (they block the thread then), so a task and an
// outside thread can share them. They are built on the address-keyed wait queue (wait.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>  // std::cv_status
#include <cstdint>
#include <mutex>

#include "skyloft/time.hpp"
#include "skyloft/wait.hpp"

namespace skyloft {

// A futex-style mutex: one CAS to lock and one atomic exchange to unlock when uncontended.
// Satisfies Lockable, so std::lock_guard / std::unique_lock / std::scoped_lock work.
class Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() {
    std::uint32_t expected = kUnlocked;
    if (!state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
      lock_slow();
    }
  }
  bool try_lock() noexcept {
    std::uint32_t expected = kUnlocked;
    return state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  bool try_lock_until(Deadline deadline);
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> d) {
    return try_lock() || try_lock_until(deadline_after(d));
  }
  void unlock() noexcept {
    // seq_cst (the same xchg on x86 as release): wake_address needs the change ordered before its check.
    if (state_.exchange(kUnlocked, std::memory_order_seq_cst) == kContended) unlock_slow();
  }

 private:
  static constexpr std::uint32_t kUnlocked = 0, kLocked = 1, kContended = 2;
  void lock_slow();
  void unlock_slow() noexcept;
  std::atomic<std::uint32_t> state_{kUnlocked};
};

// Condition variable for Mutex. Wake-ups may be spurious; use the predicate forms.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void wait(std::unique_lock<Mutex>& lock);
  template <class Pred>
  void wait(std::unique_lock<Mutex>& lock, Pred pred) {
    while (!pred()) wait(lock);
  }
  std::cv_status wait_until(std::unique_lock<Mutex>& lock, Deadline deadline);
  template <class Pred>
  bool wait_until(std::unique_lock<Mutex>& lock, Deadline deadline, Pred pred) {
    while (!pred()) {
      if (wait_until(lock, deadline) == std::cv_status::timeout) return pred();
    }
    return true;
  }
  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<Mutex>& lock, std::chrono::duration<Rep, Period> d) {
    return wait_until(lock, deadline_after(d));
  }
  template <class Rep, class Period, class Pred>
  bool wait_for(std::unique_lock<Mutex>& lock, std::chrono::duration<Rep, Period> d, Pred pred) {
    return wait_until(lock, deadline_after(d), std::move(pred));
  }
  void notify_one() noexcept;
  void notify_all() noexcept;

 private:
  friend class RWLock;
  std::cv_status wait_until(std::unique_lock<Mutex>& lock, Deadline deadline, WaitReason reason);
  std::atomic<std::uint32_t> seq_{0};
};

// Reader-writer lock; writers are preferred (new readers wait while a writer waits), so writers do not
// starve. Satisfies SharedLockable (std::shared_lock works).
class RWLock {
 public:
  RWLock() = default;
  RWLock(const RWLock&) = delete;
  RWLock& operator=(const RWLock&) = delete;

  void lock();
  bool try_lock();
  bool try_lock_until(Deadline deadline);  // false when the deadline passed first
  void unlock();
  void lock_shared();
  bool try_lock_shared();
  bool try_lock_shared_until(Deadline deadline);
  void unlock_shared();

 private:
  Mutex mutex_;
  CondVar readers_cv_;
  CondVar writers_cv_;
  std::uint32_t readers_ = 0;          // protected by mutex_
  std::uint32_t writers_waiting_ = 0;  // protected by mutex_
  bool writer_ = false;                // protected by mutex_
};

// Counting semaphore.
class Semaphore {
 public:
  explicit Semaphore(std::uint32_t initial = 0) : count_(initial) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  void acquire();
  bool try_acquire() noexcept;
  bool try_acquire_until(Deadline deadline);
  template <class Rep, class Period>
  bool try_acquire_for(std::chrono::duration<Rep, Period> d) {
    return try_acquire_until(deadline_after(d));
  }
  void release(std::uint32_t n = 1) noexcept;
  std::uint32_t value() const noexcept { return count_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint32_t> count_;
};

// Reusable barrier for a fixed number of participants.
class Barrier {
 public:
  explicit Barrier(std::uint32_t participants);
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;
  // Returns true in exactly one participant per phase (the last to arrive).
  bool arrive_and_wait();

 private:
  const std::uint32_t participants_;
  std::atomic<std::uint32_t> arrived_{0};
  std::atomic<std::uint32_t> phase_{0};
};

// Waits for a group of tasks: add() before starting work, done() when each finishes, wait() for zero.
class WaitGroup {
 public:
  explicit WaitGroup(std::uint32_t initial = 0) : count_(initial) {}
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;
  void add(std::uint32_t n = 1) noexcept { count_.fetch_add(n, std::memory_order_relaxed); }
  void done() noexcept;
  void wait();
  bool wait_until(Deadline deadline);
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) {
    return wait_until(deadline_after(d));
  }
  std::uint32_t count() const noexcept { return count_.load(std::memory_order_acquire); }

 private:
  std::atomic<std::uint32_t> count_;
};

}  // namespace skyloft
