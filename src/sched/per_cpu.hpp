// per_cpu.hpp - the skeleton shared by the per-CPU policies (rr, cfs, eevdf): one run queue per worker under
// a spinlock, fifo-like placement, the hooks to wake and preempt workers, and load balancing.
//
// A policy supplies the queue type `Rq` (its ordering and accounting) and derives from PerCpuPolicy<Rq, P>.
// Every Rq call is made under that queue's lock; `now` is now_ns() taken by the caller. Rq provides:
//   void init(const Owner& owner, int index)   once, before any worker runs (Owner: this PerCpuPolicy)
//   void enqueue(Task*, Enqueue why, u64 now)  the task becomes queued here (spawn/wakeup/yield/migrate)
//   Task* pick(u64 now)                        removes the next task to run; it becomes the running one
//   void put_prev(Task*, Stop why, u64 now)    the running task leaves the core (a yield is re-enqueued
//                                              right after, under the same lock hold)
//   bool tick(Task* curr, u64 now)             the preemption decision for the running task
//   Task* steal(u64 now)                       removes a queued task that is not pinned (for migration)
//   std::size_t size()                         queued tasks (the running one excluded)
//   void reserve(std::size_t n)                room for n queued tasks, so enqueue never allocates
//                                              (called from task_init, the one op that may allocate)
// The running task is not in the queue (as in Linux); a queue remembers it to account its CPU time.
//
// Placement and wake-ups follow the shared rules of placement.hpp (as fifo); yield stays. A pinned task
// (SchedInfo::pinned_worker) only ever enters its worker's queue, and Rq::steal never returns it. Balance:
// an idle worker pulls half the stealable tasks of the busiest other queue (try-lock only: a contended
// victim is skipped until the next balance call).
// No allocation in the ops (policy.hpp): every queue keeps room for every live task. task_init counts the
// task and, when the count passes the room, grows every queue (doubling, so rarely) before the task can be
// queued anywhere; a queue holds only live tasks, so its enqueue never grows it.
#pragma once

#include <atomic>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string_view>

#include "core/spinlock.hpp"
#include "sched/placement.hpp"
#include "skyloft/policy.hpp"
#include "skyloft/time.hpp"

namespace skyloft {

enum class Enqueue { spawn, wakeup, yield, migrate };
enum class Stop { yield, block, exit };

// Parses a decimal microsecond count in [min_us, max_us] into nanoseconds; false for anything else.
inline bool parse_us(std::string_view s, std::uint64_t min_us, std::uint64_t max_us, std::atomic<std::uint64_t>& ns) {
  std::uint64_t us = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), us);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || us < min_us || us > max_us) return false;
  ns.store(us * 1000, std::memory_order_relaxed);
  return true;
}

// Runtime-tunable parameters are read with this (relaxed: a new value takes effect at the next decision).
inline std::int64_t param(const std::atomic<std::uint64_t>& p) noexcept {
  return static_cast<std::int64_t>(p.load(std::memory_order_relaxed));
}

inline bool is_pinned(Task* t) noexcept { return sched_of(t).pinned_worker >= 0; }

template <class Rq, class Params>
class PerCpuPolicy : public Policy {
 public:
  const Params& params() const noexcept { return params_; }
  const Rq& rq(int worker) const noexcept { return slots_[static_cast<std::size_t>(worker)].rq; }

  void init(PolicyHost& host) override {
    Policy::init(host);
    n_ = host.num_workers();
    slots_ = std::make_unique<Slot[]>(static_cast<std::size_t>(n_));
    for (int i = 0; i < n_; ++i) {
      Slot& s = slot(i);
      s.rq.init(*this, i);
      s.rq.reserve(kInitialRoom);
    }
    room_.store(kInitialRoom, std::memory_order_relaxed);
  }

  void task_init(Task* t) override {
    SKY_DEBUG_ASSERT(t != nullptr);
    (void)t;
    const std::int64_t live = live_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (live > room_.load(std::memory_order_acquire)) grow_room(live);
  }

  void spawn(Task* t, int worker, int target) override {
    enqueue(spawn_target(t, worker, target, n_, next_remote_, *host_), t, Enqueue::spawn, worker);
  }

  void wakeup(Task* t, int worker) override {
    enqueue(wakeup_target(t, worker, n_, *host_), t, Enqueue::wakeup, worker);
  }

  void yield(Task* t, int worker) override {
    check_yield(t, worker, n_);
    Slot& s = slot(worker);
    std::uint64_t now = now_ns();
    std::lock_guard<SpinLock> g(s.lock);
    s.rq.put_prev(t, Stop::yield, now);
    s.rq.enqueue(t, Enqueue::yield, now);
    queued(s, t);
  }

  void block(Task* t, int worker) override { stop(t, worker, Stop::block); }
  void task_finish(Task* t, int worker) override {
    stop(t, worker, Stop::exit);
    live_.fetch_sub(1, std::memory_order_relaxed);
  }

  Task* pick_next(int worker) override {
    Slot& s = slot(worker);
    if (s.nr.load(std::memory_order_acquire) == 0) return nullptr;
    std::lock_guard<SpinLock> g(s.lock);
    return take(s, now_ns());
  }

  bool tick(int worker, Task* current) override {
    Slot& s = slot(worker);
    std::lock_guard<SpinLock> g(s.lock);
    return s.rq.tick(current, now_ns());
  }

  std::uint32_t nr_waiting(int worker) const override {
    SKY_DEBUG_ASSERT(is_worker(worker, n_));
    return slots_[static_cast<std::size_t>(worker)].nr.load(std::memory_order_relaxed);
  }

  Task* balance(int worker) override {
    int victim = -1;
    std::uint32_t most = 0;
    for (int i = 0; i < n_; ++i) {
      const Slot& v = slots_[static_cast<std::size_t>(i)];
      std::uint32_t nr = v.nr.load(std::memory_order_relaxed), pinned = v.nr_pinned.load(std::memory_order_relaxed);
      if (i != worker && nr > pinned && nr - pinned > most) {
        most = nr - pinned;
        victim = i;
      }
    }
    if (victim < 0) return nullptr;
    Task* pulled[kMaxPull];
    std::uint32_t n = 0;
    const std::uint32_t want = std::min<std::uint32_t>((most + 1) / 2, kMaxPull);
    Slot& v = slot(victim);
    if (!v.lock.try_lock()) return nullptr;
    const std::uint64_t now = now_ns();
    while (n < want && (pulled[n] = v.rq.steal(now)) != nullptr) ++n;
    v.nr.store(static_cast<std::uint32_t>(v.rq.size()), std::memory_order_release);
    v.lock.unlock();
    if (n == 0) return nullptr;
    Slot& s = slot(worker);
    std::lock_guard<SpinLock> g(s.lock);
    for (std::uint32_t i = 0; i < n; ++i) s.rq.enqueue(pulled[i], Enqueue::migrate, now);
    Task* t = take(s, now);
    if (s.nr.load(std::memory_order_relaxed) != 0) host_->task_waiting(worker);
    return t;
  }

  void dump(std::FILE* out) const override {
    for (int i = 0; i < n_; ++i) {
      const Slot& s = slots_[static_cast<std::size_t>(i)];
      std::fprintf(out, "  %.*s queue %d: %u waiting (%u pinned)\n", static_cast<int>(name().size()), name().data(), i,
                   s.nr.load(std::memory_order_relaxed), s.nr_pinned.load(std::memory_order_relaxed));
    }
  }

 protected:
  Params params_;

 private:
  static constexpr std::uint32_t kMaxPull = 32;
  static constexpr std::int64_t kInitialRoom = 64;

  struct alignas(64) Slot {
    SpinLock lock;
    std::atomic<std::uint32_t> nr{0};         // queued tasks; written under lock, read as a hint
    std::atomic<std::uint32_t> nr_pinned{0};  // of which pinned (never stolen)
    Rq rq;
  };

  Slot& slot(int worker) noexcept {
    SKY_DEBUG_ASSERT(is_worker(worker, n_));
    return slots_[static_cast<std::size_t>(worker)];
  }

  // task_init: `live` tasks exist and the queues have less room. Grows every queue to twice that, under
  // its lock (the one allocation of the policy; it happens before the new task is queued anywhere).
  void grow_room(std::int64_t live) {
    std::lock_guard<SpinLock> g(grow_lock_);
    if (live <= room_.load(std::memory_order_relaxed)) return;  // another spawner grew it meanwhile
    const std::int64_t room = 2 * live;
    for (int i = 0; i < n_; ++i) {
      Slot& s = slot(i);
      std::lock_guard<SpinLock> sg(s.lock);
      s.rq.reserve(static_cast<std::size_t>(room));
    }
    room_.store(room, std::memory_order_release);
  }

  // Under s.lock: `t` was just queued on `s`.
  void queued(Slot& s, Task* t) {
    if (is_pinned(t)) s.nr_pinned.fetch_add(1, std::memory_order_relaxed);
    s.nr.store(static_cast<std::uint32_t>(s.rq.size()), std::memory_order_release);
  }

  // Under s.lock: the next task of `s`.
  Task* take(Slot& s, std::uint64_t now) {
    Task* t = s.rq.pick(now);
    if (t != nullptr && is_pinned(t)) s.nr_pinned.fetch_sub(1, std::memory_order_relaxed);
    s.nr.store(static_cast<std::uint32_t>(s.rq.size()), std::memory_order_release);
    return t;
  }

  void enqueue(int w, Task* t, Enqueue why, int caller) {
    Slot& s = slot(w);
    std::uint32_t stealable;
    {
      std::lock_guard<SpinLock> g(s.lock);
      s.rq.enqueue(t, why, now_ns());
      queued(s, t);
      stealable = s.nr.load(std::memory_order_relaxed) - s.nr_pinned.load(std::memory_order_relaxed);
    }
    tell_queued(*host_, w, caller, stealable);
  }

  void stop(Task* t, int worker, Stop why) {
    Slot& s = slot(worker);
    std::uint64_t now = now_ns();
    std::lock_guard<SpinLock> g(s.lock);
    s.rq.put_prev(t, why, now);
  }

  std::unique_ptr<Slot[]> slots_;
  int n_ = 0;
  std::atomic<std::uint32_t> next_remote_{0};
  alignas(64) std::atomic<std::int64_t> live_{0};  // tasks between task_init and task_finish (any thread)
  std::atomic<std::int64_t> room_{0};  // every queue has room for this many; written under grow_lock_
  SpinLock grow_lock_;
};

}  // namespace skyloft
