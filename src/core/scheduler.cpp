// scheduler.cpp - the switch path: picking, dispatching, yielding, parking, exiting.
//
// Tasks switch directly to one another (yield, park and exit pick the next task on the current stack and
// jump to it); only when nothing is runnable does a task switch to its worker's loop, which then looks for
// work and parks. A switch is: pick -> dispatch (claim `next`, wait for its on_cpu to clear) -> save errno
// -> sky_context_switch -> finish_switch in the resumed context (clear the previous task's on_cpu, free it
// if it exited detached, restore errno).
//
// TLS and migration: after any switch the code may run on another worker's thread, and the compiler may
// keep a thread-local address from before the switch. So every read of "this worker" after a switch goes
// through this_worker(), which is never inlined, or uses the worker handed over by the switch itself. errno
// is saved and restored through the worker thread's own errno address (Worker::errno_slot), which is taken
// once when the worker starts, so the switch path makes no __errno_location() calls.
#include "core/scheduler.hpp"

#include <errno.h>
#include <sched.h>

#include <cstdio>
#include <exception>

#include "core/fatal.hpp"
#include "core/runtime_core.hpp"
#include "core/stack_canary.hpp"
#include "skyloft/time.hpp"

namespace skyloft {

extern "C" {
__thread Task* sky_tl_current __attribute__((tls_model("initial-exec"))) = nullptr;
__thread Worker* sky_tl_worker __attribute__((tls_model("initial-exec"))) = nullptr;
}


__attribute__((noinline)) void finish_switch(void* transfer) noexcept {
  // The resumed context runs on the thread that switched to it, so the switcher's worker is ours.
  auto* w = static_cast<Worker*>(transfer);
  w->switches.add();
  if (Task* prev = w->switch_prev) {
    w->switch_prev = nullptr;
    bool exited = prev->state.load(std::memory_order_relaxed) == TaskState::exited;
    bool free_now = exited && prev->self_free;
    if (exited) arch::destroy_context(prev->ctx);  // it never runs again; its stack is still mapped
    prev->on_cpu.store(false, std::memory_order_release);  // after this, a joiner may free `prev`
    if (free_now) task_free(prev, w);
  }
  if (w->current != nullptr) *w->errno_slot = w->current->saved_errno;
}

namespace {

// Leaves the current task `cur` (whose state the caller set) for whatever the policy picks next.
// Returns when `cur` runs again, possibly on another worker.
// Returns the worker `cur` runs on when it is resumed.
Worker* switch_away(Worker* w, Task* cur, bool exiting) noexcept {
  Task* next = worker_pick(w);
  if (next == cur) {  // yielded with nothing else runnable, or woken before it left
    cur->state.store(TaskState::running, std::memory_order_relaxed);
    return w;
  }
  stack_check_on_switch_out(cur);  // guardless stacks: the canary stands in for a guard page
  cur->saved_errno = *w->errno_slot;
  w->switch_prev = cur;
  void* transfer;
  if (next != nullptr) {
    worker_dispatch(w, next);
    transfer = arch::switch_context(cur->ctx, next->ctx, w, exiting);
  } else {
    w->current = nullptr;
    sky_tl_current = nullptr;
    w->idle.store(true, std::memory_order_relaxed);  // wakers may hand `cur`'s successors back to us
    if (w->preempt_hooks) preempt_on_idle(w);
    transfer = arch::switch_context(cur->ctx, w->loop_ctx, w, exiting);
  }
  finish_switch(transfer);  // `w` may be stale here: the task may have moved to another worker
  return static_cast<Worker*>(transfer);
}

inline Worker* yield_locked(Worker* w, Task* cur) noexcept {
  cur->state.store(TaskState::runnable, std::memory_order_relaxed);
  w->policy->yield(cur, w->index);
  return switch_away(w, cur, false);
}

[[noreturn]] void task_exit_current() noexcept {
  Worker* w = this_worker();
  Task* t = w->current;
  w->policy->task_finish(t, w->index);
  w->exited.add();
  t->state.store(TaskState::exited, std::memory_order_relaxed);
  switch (t->join_state.exchange(kJoinExited, std::memory_order_seq_cst)) {
    case kJoinDetached: t->self_free = true; break;
    case kJoinTaskWaiting: task_unpark(t->joiner); break;  // the joiner frees us only after on_cpu clears
    case kJoinThreadWaiting: wake_address_all(t->join_state); break;
    default: w->rt.zombies.fetch_add(1, std::memory_order_relaxed); break;  // waits for join/detach
  }
  switch_away(w, t, /*exiting=*/true);
  sky_fatal("exited task %llu was resumed", static_cast<unsigned long long>(t->sched.id));
}

}  // namespace

// Entry of every task context (see arch::make_context).
void task_entry(void* arg, void* transfer) {
  arch::context_started();
  finish_switch(transfer);
  auto* t = static_cast<Task*>(arg);
  RuntimeSection::leave(t);  // a task starts at depth 1
  try {
    t->body(t->payload);
  } catch (const detail::TaskExit&) {
    // this_task::exit(): the stack has been unwound
  } catch (const std::exception& e) {
    sky_fatal("task %llu terminated by an uncaught exception: %s", static_cast<unsigned long long>(t->sched.id),
              e.what());
  } catch (...) {
    sky_fatal("task %llu terminated by an uncaught exception of unknown type",
              static_cast<unsigned long long>(t->sched.id));
  }
  RuntimeSection::enter(t);  // never left: the exit switch happens inside it
  task_exit_current();
}

void task_park(WaitReason reason) noexcept {
  Worker* w = this_worker();
  SKY_ASSERT(w->current->preempt_off.load(std::memory_order_relaxed) != 0);
  Task* cur = w->current;
  if (cur->park_state.load(std::memory_order_acquire) == kParkNotified) {  // a permit is waiting
    cur->park_state.store(kParkEmpty, std::memory_order_relaxed);
    return;
  }
  cur->wait_reason.store(reason, std::memory_order_relaxed);
  cur->state.store(TaskState::blocked, std::memory_order_relaxed);
  w->policy->block(cur, w->index);
  std::uint32_t expected = kParkEmpty;
  if (!cur->park_state.compare_exchange_strong(expected, kParkParked, std::memory_order_acq_rel)) {
    // Unparked between the check and here: blocked and woken at once, keeping block/wakeup paired.
    cur->park_state.store(kParkEmpty, std::memory_order_relaxed);
    cur->state.store(TaskState::runnable, std::memory_order_relaxed);
    w->policy->wakeup(cur, w->index);
  }
  switch_away(w, cur, false);
  this_worker()->current->wait_reason.store(WaitReason::none, std::memory_order_relaxed);
}

void task_unpark(Task* task) noexcept {
  if (task->park_state.exchange(kParkNotified, std::memory_order_acq_rel) != kParkParked) return;
  // We moved it out of kParkParked, so this call owns the wake-up.
  task->park_state.store(kParkEmpty, std::memory_order_relaxed);
  task->state.store(TaskState::runnable, std::memory_order_relaxed);
  Worker* w = this_worker();
  RuntimeCore* rt = current_runtime();
  rt->policy->wakeup(task, w ? w->index : -1);
}

void task_yield_locked(Worker* w, Task* cur) noexcept { yield_locked(w, cur); }

void task_free(Task* task, Worker* worker) noexcept {
  RuntimeSection section;  // the worker's stack cache is owner-only state
  while (task->on_cpu.load(std::memory_order_acquire)) cpu_relax();
  RuntimeCore* rt = current_runtime();
  arch::destroy_context(task->ctx);
  StackMapping m = task->stack;  // the record lives inside the mapping
  task->~Task();
  rt->stacks.release(m, worker ? worker->index : -1);
}

// ---- public task API ----

namespace this_task {

bool in_task() noexcept { return current_task() != nullptr; }

TaskId id() noexcept {
  Task* t = current_task();
  return t ? t->sched.id : 0;
}

int worker_index() noexcept {
  Worker* w = this_worker();
  return w && w->current ? w->index : -1;
}

void yield() {
  Task* t = current_task();
  if (t == nullptr) {
    sched_yield();
    return;
  }
  RuntimeSection::enter(t);
  yield_locked(this_worker(), t);  // with the count held the task cannot move before this read
  RuntimeSection::leave(t);
}

void exit() { throw detail::TaskExit{}; }

}  // namespace this_task

}  // namespace skyloft
