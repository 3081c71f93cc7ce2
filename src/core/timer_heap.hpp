// timer_heap.hpp - a per-worker binary heap of deadlines (sleeps and timed waits).
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "core/spinlock.hpp"

namespace skyloft {

class TimerHeap;

struct TimerEntry {
  enum State : std::uint8_t { kIdle, kArmed, kFiring, kDone };
  std::uint64_t deadline = 0;            // now_ns() time
  void (*fn)(TimerEntry*) = nullptr;     // runs on a polling thread, outside the heap lock; must not block
  std::int32_t index = -1;               // position in the heap; protected by the heap lock
  std::atomic<std::uint8_t> state{kIdle};
  TimerHeap* heap = nullptr;
};

// Armed by tasks on their current processor's heap; cancelled from any thread; fired by whoever polls it:
// the processor's own poll point, or an idle processor helping a busy one (run_due is safe concurrently:
// entries are taken out under the lock before their callbacks run).
class TimerHeap {
 public:
  TimerHeap() { heap_.reserve(64); }
  void arm(TimerEntry* t, std::uint64_t deadline, void (*fn)(TimerEntry*));
  // After cancel() returns, t->fn is not running and will not run, so `t` may be destroyed.
  void cancel(TimerEntry* t) noexcept;
  // Fires every entry whose deadline is <= now; returns how many fired.
  std::size_t run_due(std::uint64_t now);
  // Earliest armed deadline, UINT64_MAX when none. Racy read, used as a hint by the owner.
  std::uint64_t earliest() const noexcept { return earliest_.load(std::memory_order_relaxed); }
  std::size_t size() const noexcept;
  // `bit` is set in *word while the heap is not empty (the poll point's cheap test); before first use.
  void set_poll_word(std::atomic<std::uint32_t>* word, std::uint32_t bit) noexcept {
    poll_word_ = word;
    poll_bit_ = bit;
  }

 private:
  void sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;
  void remove_at(std::size_t i) noexcept;
  void update_earliest() noexcept;

  mutable SpinLock lock_;
  std::vector<TimerEntry*> heap_;  // protected by lock_
  std::atomic<std::uint64_t> earliest_{UINT64_MAX};
  std::atomic<std::uint32_t>* poll_word_ = nullptr;  // set/cleared under lock_ on empty <-> non-empty
  std::uint32_t poll_bit_ = 0;
};

}  // namespace skyloft
