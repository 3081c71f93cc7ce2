// scheduler.hpp (internal) - switching between tasks, parking and unparking them.
#pragma once

#include "core/runtime_core.hpp"
#include "core/spinlock.hpp"
#include "core/task.hpp"
#include "skyloft/time.hpp"
#include "core/worker.hpp"

namespace skyloft {

// The task running on this thread, or nullptr (plain thread, or a worker in its loop).
Task* current_task() noexcept;

// Picks the next task for `w`: fires due timers, then asks the policy. Owner only.
inline Task* worker_pick(Worker* w);
// Makes `next` the running task of `w` (waits for it to finish switching out elsewhere). Owner only.
inline void worker_dispatch(Worker* w, Task* next) noexcept;
// Runs after every switch, in the resumed context: `transfer` is the switching worker (the thread we now run
// on); releases the task it switched away from (Worker::switch_prev) and restores the resumed task's errno.
void finish_switch(void* transfer) noexcept;

// Parks the current task until task_unpark() (a pending unpark makes it return at once). Must be called
// from a task. Returns after being woken; wake-ups may be spurious, so callers loop on their condition.
void task_park(WaitReason reason) noexcept;
// Makes a parked task runnable (or leaves a permit if it has not parked yet). Any thread.
void task_unpark(Task* task) noexcept;

// Frees an exited task's stack once it has fully switched out. `worker`: the caller's worker or nullptr.
void task_free(Task* task, Worker* worker) noexcept;

// Puts the running task `cur` back through policy->yield() and switches to the next one. Preemption must
// be disabled (a runtime section). Returns when `cur` runs again, possibly on another worker.
void task_yield_locked(Worker* w, Task* cur) noexcept;
// Acts on an expired quantum of w's running task (asks the policy's tick, maybe yields). Runtime section.
void preempt_now(Worker* w) noexcept;
// The mechanism hooks of the switch path (only called when Worker::preempt_hooks is set).
void preempt_on_dispatch(Worker* w) noexcept;
void preempt_on_idle(Worker* w) noexcept;

// A region of runtime code on a worker: preemption is off inside (the worker may hold runtime spinlocks),
// and a preemption requested meanwhile is honoured when the outermost region ends. Regions may span a
// switch: the count belongs to the worker, and every switch happens at depth 1. No-op on plain threads.
class RuntimeSection {
 public:
  RuntimeSection() noexcept {
    if (Worker* w = this_worker()) enter(w);
  }
  ~RuntimeSection() {
    if (Worker* w = this_worker()) leave(w);
  }
  RuntimeSection(const RuntimeSection&) = delete;
  RuntimeSection& operator=(const RuntimeSection&) = delete;

  static void enter(Worker* w) noexcept {
    w->preempt_off.store(w->preempt_off.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  static void leave(Worker* w) noexcept;
};

// ---- inline definitions (the switch path) ----

inline Task* worker_pick(Worker* w) {
  if (w->timers.earliest() != UINT64_MAX) {
    std::uint64_t now = now_ns();
    if (w->timers.earliest() <= now) w->timers.run_due(now);
  }
  return w->policy->pick_next(w->index);
}

inline void RuntimeSection::leave(Worker* w) noexcept {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (w->preempt_flag.load(std::memory_order_relaxed) != 0 && w->preempt_off.load(std::memory_order_relaxed) == 1 &&
      w->current != nullptr && w->current->user_preempt_off == 0) {
    preempt_now(w);
    w = this_worker();
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);
  w->preempt_off.store(w->preempt_off.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

inline void worker_dispatch(Worker* w, Task* next) noexcept {
  // The task may have been woken and picked before its previous worker finished saving its registers.
  while (next->on_cpu.load(std::memory_order_acquire)) cpu_relax();
  next->on_cpu.store(true, std::memory_order_relaxed);
  next->state.store(TaskState::running, std::memory_order_relaxed);
  next->sched.last_worker = w->index;
  w->current = next;
  w->tasks_run.add();
  if (w->preempt_hooks) preempt_on_dispatch(w);
}

}  // namespace skyloft
