// timer_heap.cpp - per-processor deadline heap; see timer_heap.hpp.
#include "core/timer_heap.hpp"

#include <mutex>
#include <utility>

namespace skyloft {

void TimerHeap::arm(TimerEntry* t, std::uint64_t deadline, void (*fn)(TimerEntry*)) {
  std::lock_guard<SpinLock> guard(lock_);
  t->deadline = deadline;
  t->fn = fn;
  t->heap = this;
  t->state.store(TimerEntry::kArmed, std::memory_order_relaxed);
  t->index = static_cast<std::int32_t>(heap_.size());
  heap_.push_back(t);
  sift_up(heap_.size() - 1);
  update_earliest();
}

void TimerHeap::cancel(TimerEntry* t) noexcept {
  {
    std::lock_guard<SpinLock> guard(lock_);
    if (t->state.load(std::memory_order_relaxed) == TimerEntry::kArmed) {
      remove_at(static_cast<std::size_t>(t->index));
      t->state.store(TimerEntry::kIdle, std::memory_order_relaxed);
      update_earliest();
      return;
    }
  }
  // Fired or firing: wait until its callback has finished with `t` (callbacks are a few lock operations).
  while (t->state.load(std::memory_order_acquire) == TimerEntry::kFiring) cpu_relax();
}

std::size_t TimerHeap::run_due(std::uint64_t now) {
  std::size_t fired = 0;
  for (;;) {
    TimerEntry* batch[16];
    std::size_t n = 0;
    {
      std::lock_guard<SpinLock> guard(lock_);
      while (n < 16 && !heap_.empty() && heap_.front()->deadline <= now) {
        TimerEntry* t = heap_.front();
        remove_at(0);
        t->state.store(TimerEntry::kFiring, std::memory_order_relaxed);
        batch[n++] = t;
      }
      update_earliest();
    }
    for (std::size_t i = 0; i < n; ++i) {
      TimerEntry* t = batch[i];
      t->fn(t);
      t->state.store(TimerEntry::kDone, std::memory_order_release);  // last touch of t
    }
    fired += n;
    if (n < 16) return fired;
  }
}

std::size_t TimerHeap::size() const noexcept {
  std::lock_guard<SpinLock> guard(lock_);
  return heap_.size();
}

void TimerHeap::sift_up(std::size_t i) noexcept {
  while (i > 0) {
    std::size_t parent = (i - 1) / 2;
    if (heap_[parent]->deadline <= heap_[i]->deadline) break;
    std::swap(heap_[parent], heap_[i]);
    heap_[parent]->index = static_cast<std::int32_t>(parent);
    heap_[i]->index = static_cast<std::int32_t>(i);
    i = parent;
  }
}

void TimerHeap::sift_down(std::size_t i) noexcept {
  for (;;) {
    std::size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < heap_.size() && heap_[l]->deadline < heap_[m]->deadline) m = l;
    if (r < heap_.size() && heap_[r]->deadline < heap_[m]->deadline) m = r;
    if (m == i) return;
    std::swap(heap_[m], heap_[i]);
    heap_[m]->index = static_cast<std::int32_t>(m);
    heap_[i]->index = static_cast<std::int32_t>(i);
    i = m;
  }
}

void TimerHeap::remove_at(std::size_t i) noexcept {
  TimerEntry* removed = heap_[i];
  removed->index = -1;
  TimerEntry* last = heap_.back();
  heap_.pop_back();
  if (i == heap_.size()) return;
  heap_[i] = last;
  last->index = static_cast<std::int32_t>(i);
  sift_up(i);
  sift_down(static_cast<std::size_t>(last->index));
}

void TimerHeap::update_earliest() noexcept {
  const std::uint64_t before = earliest_.load(std::memory_order_relaxed);
  const std::uint64_t after = heap_.empty() ? UINT64_MAX : heap_.front()->deadline;
  earliest_.store(after, std::memory_order_relaxed);
  if (poll_word_ != nullptr && (before == UINT64_MAX) != (after == UINT64_MAX)) {
    if (after == UINT64_MAX) {
      poll_word_->fetch_and(~poll_bit_, std::memory_order_relaxed);
    } else {
      poll_word_->fetch_or(poll_bit_, std::memory_order_relaxed);
    }
  }
}

}  // namespace skyloft
