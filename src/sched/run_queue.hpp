// run_queue.hpp - run-queue building blocks shared by policies: a stealable per-worker ring and a locked
// FIFO list. Policies are assembled from these instead of each writing its own queue.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "core/fatal.hpp"
#include "core/spinlock.hpp"
#include "skyloft/policy.hpp"

namespace skyloft {

// A bounded ring with one producer (its owner) and many consumers (the owner pops, thieves steal half),
// after Go's runq: the owner pushes with plain release stores; every consumer claims with a CAS on head.
template <std::uint32_t N>
class StealableRing {
  static_assert((N & (N - 1)) == 0, "capacity must be a power of two");

 public:
  static constexpr std::uint32_t kCapacity = N;

  // Owner only. Returns false when full (the caller spills elsewhere).
  bool push(Task* t) noexcept {
    SKY_DEBUG_ASSERT(t != nullptr);
    std::uint32_t h = head_.load(std::memory_order_acquire);
    std::uint32_t tl = tail_.load(std::memory_order_relaxed);
    if (tl - h >= N) return false;
    slots_[tl & (N - 1)].store(t, std::memory_order_relaxed);
    tail_.store(tl + 1, std::memory_order_release);  // pairs with the acquire loads of consumers
    return true;
  }
  // Owner only.
  Task* pop() noexcept {
    std::uint32_t h = head_.load(std::memory_order_acquire);
    for (;;) {
      std::uint32_t tl = tail_.load(std::memory_order_relaxed);
      if (h == tl) return nullptr;
      Task* t = slots_[h & (N - 1)].load(std::memory_order_relaxed);
      if (head_.compare_exchange_weak(h, h + 1, std::memory_order_release, std::memory_order_acquire)) return t;
    }
  }
  // Any thread, on a victim ring: moves about half of the victim's tasks into `dst` (owned by the caller).
  // Returns how many moved.
  std::uint32_t steal_into(StealableRing& dst) noexcept {
    std::uint32_t dst_tail = dst.tail_.load(std::memory_order_relaxed);
    std::uint32_t dst_head = dst.head_.load(std::memory_order_acquire);
    for (;;) {
      std::uint32_t h = head_.load(std::memory_order_acquire);
      std::uint32_t tl = tail_.load(std::memory_order_acquire);
      std::uint32_t n = tl - h;
      if (n == 0 || n > N) return 0;  // empty, or a torn read of a moving ring: give up
      n -= n / 2;
      if (n > N - (dst_tail - dst_head)) n = N - (dst_tail - dst_head);
      if (n == 0) return 0;
      for (std::uint32_t i = 0; i < n; ++i) {
        Task* t = slots_[(h + i) & (N - 1)].load(std::memory_order_relaxed);
        dst.slots_[(dst_tail + i) & (N - 1)].store(t, std::memory_order_relaxed);
      }
      if (head_.compare_exchange_strong(h, h + n, std::memory_order_acq_rel, std::memory_order_relaxed)) {
        dst.tail_.store(dst_tail + n, std::memory_order_release);
        return n;
      }
    }
  }
  std::uint32_t size() const noexcept {
    return tail_.load(std::memory_order_relaxed) - head_.load(std::memory_order_relaxed);
  }

 private:
  alignas(64) std::atomic<std::uint32_t> head_{0};  // consumers CAS
  alignas(64) std::atomic<std::uint32_t> tail_{0};  // owner stores
  std::atomic<Task*> slots_[N] = {};
};

// A FIFO of tasks linked through SchedInfo::next, under a spinlock; any thread may push or pop.
class LockedTaskList {
 public:
  void push(Task* t) noexcept {
    SKY_DEBUG_ASSERT(t != nullptr);
    sched_of(t).next = nullptr;
    std::lock_guard<SpinLock> guard(lock_);
    (tail_ ? sched_of(tail_).next : head_) = t;
    tail_ = t;
    size_.store(size_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  Task* pop() noexcept {
    if (empty()) return nullptr;
    std::lock_guard<SpinLock> guard(lock_);
    Task* t = head_;
    if (t == nullptr) return nullptr;
    head_ = sched_of(t).next;
    if (head_ == nullptr) tail_ = nullptr;
    size_.store(size_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    return t;
  }
  bool empty() const noexcept { return size_.load(std::memory_order_acquire) == 0; }
  std::uint32_t size() const noexcept { return size_.load(std::memory_order_relaxed); }

 private:
  SpinLock lock_;
  Task* head_ = nullptr;  // protected by lock_
  Task* tail_ = nullptr;  // protected by lock_
  std::atomic<std::uint32_t> size_{0};  // written under lock_; read without it as a hint
};

}  // namespace skyloft
