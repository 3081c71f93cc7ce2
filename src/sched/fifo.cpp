// fifo.cpp - "fifo": per-worker FIFO run queues with work stealing when idle (Go/Shenango style).
//
// Each worker has a stealable ring (its own spawns, wake-ups and yields) and an inject list (tasks handed
// to it by other threads). Placement:
//   spawn   core hint -> that worker's inject list; from a worker -> its ring; from outside -> round-robin.
//   wakeup  to the task's previous worker if that worker is spinning idle (keeps cache affinity, costs no
//           wake-up syscall); otherwise to the waker's ring (the woken task usually consumes what the
//           waker produced). From outside the runtime: the previous worker, kicked.
//   yield   back of the own ring.
// Waking parked workers: the first queued task behind the running one stays local (a task that spawns or
// wakes one other task and then blocks hands off with no syscall, as Go's runnext does); from the second
// one, notify_work_available() wakes an idle worker. Idle workers steal half of a victim's ring.
// Pinned tasks (SpawnOptions::pin) live on a third, non-stealable list of their worker.
// Limitation until preemption lands: a long task delays the one task queued behind it on its worker when all
// other workers are parked.
#include <cstdio>
#include <memory>
#include <vector>

#include "core/task.hpp"
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
    if (sched_of(t).pinned_worker >= 0) {
      push_pinned(t, worker);
    } else if (target >= 0 && target != worker) {
      push_remote(target, t);
    } else if (worker >= 0) {
      push_local(worker, t);
    } else {
      push_remote(static_cast<int>(next_remote_.fetch_add(1, std::memory_order_relaxed) % num_queues_), t);
    }
  }

  void wakeup(Task* t, int worker) override {
    if (sched_of(t).pinned_worker >= 0) return push_pinned(t, worker);
    int prev = sched_of(t).last_worker;
    if (prev < 0) prev = 0;
    if (worker < 0 || (prev != worker && host_->is_idle(prev))) {
      push_remote(prev, t);
    } else {
      push_local(worker, t);
    }
  }

  void yield(Task* t, int worker) override {
    if (sched_of(t).pinned_worker >= 0) return push_pinned(t, worker);
    Queue& q = queues_[static_cast<std::size_t>(worker)];
    if (!q.ring.push(t)) q.inject.push(t);  // the worker switches right away: no wake-ups needed
  }

  Task* pick_next(int worker) override {
    Queue& q = queues_[static_cast<std::size_t>(worker)];
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
    Queue& mine = queues_[static_cast<std::size_t>(worker)];
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

  void push_local(int worker, Task* t) {
    Queue& q = queues_[static_cast<std::size_t>(worker)];
    if (!q.ring.push(t)) q.inject.push(t);  // ring full: spill to the locked list
    host_->task_waiting(worker);
    if (q.ring.size() >= 2) host_->notify_work_available();
  }

  void push_pinned(Task* t, int worker) {
    int home = sched_of(t).pinned_worker;
    queues_[static_cast<std::size_t>(home)].pinned.push(t);
    host_->task_waiting(home);
    if (home != worker) host_->kick(home);
  }

  void push_remote(int target, Task* t) {
    queues_[static_cast<std::size_t>(target)].inject.push(t);
    host_->task_waiting(target);
    host_->kick(target);
  }

  std::unique_ptr<Queue[]> queues_;
  std::size_t num_queues_ = 0;
  std::atomic<std::uint32_t> next_remote_{0};
};

}  // namespace

std::unique_ptr<Policy> make_fifo_policy() { return std::make_unique<FifoPolicy>(); }

}  // namespace skyloft
