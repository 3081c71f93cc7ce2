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

// ---- inline definitions (the switch path) ----

inline Task* worker_pick(Worker* w) {
  if (w->timers.earliest() != UINT64_MAX) {
    std::uint64_t now = now_ns();
    if (w->timers.earliest() <= now) w->timers.run_due(now);
  }
  return w->policy->pick_next(w->index);
}

inline void worker_dispatch(Worker* w, Task* next) noexcept {
  // The task may have been woken and picked before its previous worker finished saving its registers.
  while (next->on_cpu.load(std::memory_order_acquire)) cpu_relax();
  next->on_cpu.store(true, std::memory_order_relaxed);
  next->state.store(TaskState::running, std::memory_order_relaxed);
  next->sched.last_worker = w->index;
  w->current = next;
  w->tasks_run.add();
}

}  // namespace skyloft
