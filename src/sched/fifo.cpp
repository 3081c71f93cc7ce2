// fifo.cpp - "fifo": per-worker FIFO run queues with work stealing when idle (Go/Shenango style).
//
// Each worker has a stealable ring (tasks queued by its own thread: spawns, wake-ups, yields), an inject
// list (tasks handed to it by other threads) and a pinned list (SpawnOptions::pin; never stolen). Where a
// task goes and who is woken follow the shared placement rules (placement.hpp); a task placed on the
// caller's own worker goes to its ring, one placed elsewhere to that worker's inject list. Yield goes to the
// back of the own ring with no wake-ups (the worker switches right away), behind the tasks handed over to
// the worker meanwhile (admit_inject). Idle workers steal half of a victim's ring, or the head of its
// inject list.
// Limitation without preemption: a long task delays the one task queued behind it on its worker when all
// other workers are parked.
#include <cstdio>
#include <memory>
#include <vector>

#include "core/task.hpp"
#include "sched/placement.hpp"
#include "sched/run_queue.hpp"

namespace skyloft {
namespace {

constexpr std::uint32_t kInjectCheckInterval = 61;

class FifoPolicy final : public Policy {
 public:
  void init(PolicyHost& host) override {
    Policy::init(host);
    num_queues_ = static_cast<std::size_t>(host.num_workers());
    queues_ = std::make_unique<Queue[]>(num_queues_);
  }

  void spawn(Task* t, int worker, int target) override {
    place(t, worker, spawn_target(t, worker, target, num_workers(), next_remote_, *host_));
  }

  void wakeup(Task* t, int worker) override { place(t, worker, wakeup_target(t, worker, num_workers(), *host_)); }

  void yield(Task* t, int worker) override {
    check_yield(t, worker, num_workers());
    Queue& q = queue(worker);
    admit_inject(q);
    if (sched_of(t).pinned_worker >= 0) {
      q.pinned.push(t);
    } else if (!q.ring.push(t)) {
      q.inject.push(t);  // ring full
    }
    // No wake-ups: the worker picks right away, and its dispatch arms the quantum for whoever waits.
  }

  Task* pick_next(int worker) override {
    Queue& q = queue(worker);
    // Every 61st pick looks at the inject list first so handed-over tasks cannot starve behind the ring.
    if (--q.picks_until_inject == 0) {
      q.picks_until_inject = kInjectCheckInterval;
      if (Task* t = q.inject.pop()) return t;
      if (Task* t = q.pinned.pop()) return t;
    }
    if (Task* t = q.ring.pop()) return t;
    if (Task* t = q.pinned.pop()) return t;
    return q.inject.pop();
  }

  Task* balance(int worker) override {
    const std::size_t n = num_queues_;
    Queue& mine = queue(worker);
    const std::size_t start = ++mine.steal_seed;
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t v = (start + i) % n;
      if (v == static_cast<std::size_t>(worker)) continue;
      Queue& victim = queues_[v];
      if (victim.ring.steal_into(mine.ring) != 0) return mine.ring.pop();
      if (Task* t = victim.inject.pop()) return t;
    }
    return nullptr;
  }

  std::uint32_t nr_waiting(int worker) const override {
    SKY_DEBUG_ASSERT(is_worker(worker, num_workers()));
    const Queue& q = queues_[static_cast<std::size_t>(worker)];
    return q.ring.size() + q.inject.size() + q.pinned.size();
  }

  void dump(std::FILE* out) const override {
    for (std::size_t i = 0; i < num_queues_; ++i) {
      std::fprintf(out, "  fifo queue %zu: ring %u, inject %u, pinned %u\n", i, queues_[i].ring.size(),
                   queues_[i].inject.size(), queues_[i].pinned.size());
    }
  }

  std::string_view name() const noexcept override { return "fifo"; }

 private:
  struct alignas(64) Queue {
    StealableRing<256> ring;
    LockedTaskList inject;
    LockedTaskList pinned;          // never stolen
    std::uint32_t picks_until_inject = kInjectCheckInterval;  // owner only
    std::size_t steal_seed = 0;     // owner only
  };

  int num_workers() const noexcept { return static_cast<int>(num_queues_); }

  Queue& queue(int worker) noexcept {
    SKY_DEBUG_ASSERT(is_worker(worker, num_workers()));
    return queues_[static_cast<std::size_t>(worker)];
  }

  // Moves the tasks handed over to this worker (its inject list) to its ring: they were queued before the
  // task that yields now, so they go ahead of it. Owner only (it pushes the ring). Without it a task
  // preempted every quantum keeps the ring non-empty and the inject list, where outside spawns land, is
  // looked at every 61st pick only: a short request waited ~61 quanta per task ahead of it.
  static void admit_inject(Queue& q) noexcept {
    while (!q.inject.empty() && q.ring.size() < decltype(q.ring)::kCapacity) {
      Task* w = q.inject.pop();
      if (w == nullptr) return;
      if (!q.ring.push(w)) {  // full after all (cannot happen: only the owner pushes): back it goes
        q.inject.push(w);
        return;
      }
    }
  }

  // Queues `t` on `target` (chosen by the placement rules) and tells whoever has to run it.
  void place(Task* t, int caller, int target) {
    Queue& q = queue(target);
    std::uint32_t stealable = 0;
    if (sched_of(t).pinned_worker >= 0) {
      q.pinned.push(t);
    } else if (target == caller && q.ring.push(t)) {  // only the owner pushes its ring
      stealable = q.ring.size() + q.inject.size();
    } else {
      q.inject.push(t);  // another worker's, or the own ring is full
      stealable = q.ring.size() + q.inject.size();
    }
    tell_queued(*host_, target, caller, stealable);
  }

  std::unique_ptr<Queue[]> queues_;
  std::size_t num_queues_ = 0;
  std::atomic<std::uint32_t> next_remote_{0};
};

}  // namespace

std::unique_ptr<Policy> make_fifo_policy() { return std::make_unique<FifoPolicy>(); }

}  // namespace skyloft
