// scheduler.hpp (internal) - switching between tasks, parking and unparking them.
#pragma once

#include "core/runtime_core.hpp"
#include "core/spinlock.hpp"
#include "core/task.hpp"
#include "skyloft/time.hpp"
#include "core/worker.hpp"

namespace skyloft {


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

// The task running on this thread (one TLS load, so a signal cannot split it), or nullptr.
extern "C" __thread Task* sky_tl_current __attribute__((tls_model("initial-exec")));
inline Task* current_task() noexcept {
  Task* t;
  asm volatile("movq sky_tl_current@gottpoff(%%rip), %0\n\tmovq %%fs:(%0), %0" : "=r"(t));
  return t;
}

// A region of runtime code in a task: preemption is off inside (the task may hold runtime spinlocks or
// owner-only worker state), and a preemption requested meanwhile is honoured when the outermost region
// ends. The depth belongs to the task (Task::preempt_off) and may span switches. No-op on plain threads
// and in worker loops.
class RuntimeSection {
 public:
  RuntimeSection() noexcept : task_(current_task()) {
    if (task_ != nullptr) enter(task_);
  }
  ~RuntimeSection() {
    if (task_ != nullptr) leave(task_);
  }
  RuntimeSection(const RuntimeSection&) = delete;
  RuntimeSection& operator=(const RuntimeSection&) = delete;

  static void enter(Task* t) noexcept {
    t->preempt_off.store(t->preempt_off.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  static void leave(Task* t) noexcept;

 private:
  Task* task_;
};

// ---- inline definitions (the switch path) ----

inline Task* worker_pick(Worker* w) {
  if (w->timers.earliest() != UINT64_MAX) {
    std::uint64_t now = now_ns();
    if (w->timers.earliest() <= now) w->timers.run_due(now);
  }
  return w->policy->pick_next(w->index);
}

inline void RuntimeSection::leave(Task* t) noexcept {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  std::uint32_t depth = t->preempt_off.load(std::memory_order_relaxed);
  if (depth == 1) {  // outermost: with the count still held the task cannot move, so this_worker() is ours
    Worker* w = this_worker();
    if (w->preempt_flag.load(std::memory_order_relaxed) != 0) preempt_now(w);
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t->preempt_off.store(depth - 1, std::memory_order_relaxed);
}

inline void worker_dispatch(Worker* w, Task* next) noexcept {
  // The task may have been woken and picked before its previous worker finished saving its registers.
  while (next->on_cpu.load(std::memory_order_acquire)) cpu_relax();
  next->on_cpu.store(true, std::memory_order_relaxed);
  next->state.store(TaskState::running, std::memory_order_relaxed);
  next->sched.last_worker = w->index;
  w->current = next;
  sky_tl_current = next;
  w->tasks_run.add();
  if (w->preempt_hooks) preempt_on_dispatch(w);
}

}  // namespace skyloft
