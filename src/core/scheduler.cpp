// scheduler.cpp - the switch path: picking, dispatching, yielding, parking, exiting.
//
// Tasks switch directly to one another (yield, park and exit pick the next task on the current stack and
// jump to it); only when nothing is runnable does a task switch to its thread's loop, which then looks for
// work and parks. A switch is: pick (through the poll point) -> dispatch (claim `next`) -> save errno and
// exception state -> sky_context_switch -> finish_switch in the resumed context (clear the previous task's
// on_cpu, free it if it exited detached, restore the resumed task's errno and exception state).
//
// Rules of the switch path:
//   X1. A thread never waits for another task's on_cpu while it still holds an unsaved task of its own. A
//       task handed to the policy (yield, block) may be picked at once by any processor, possibly before
//       its registers are saved; if dispatch finds `next` still switching out, the switching task goes to
//       its thread's loop context first (saving itself), and the loop waits for `next` there. Two threads
//       that picked each other's outgoing task therefore cannot wait for each other (the yield storm of a
//       shared-queue policy).
//   X2. After any switch the code may run on another thread, and the compiler may keep a thread-local
//       address from before the switch. So every read of "this processor" after a switch goes through
//       this_proc() (opaque asm), or uses the processor handed over by the switch itself. errno and the
//       exception globals are saved and restored through the slots of the thread's processor
//       (Processor::errno_slot, eh_slot), taken when the thread attaches, so the switch path calls neither
//       __errno_location() nor __cxa_get_globals().
#include "core/scheduler.hpp"

#include <errno.h>
#include <sched.h>

#include <cstdio>
#include <exception>

#include "core/fatal.hpp"
#include "core/kthread.hpp"
#include "core/runtime_core.hpp"
#include "core/stack_canary.hpp"
#include "skyloft/time.hpp"

namespace skyloft {

extern "C" {
__thread Task* sky_tl_current __attribute__((tls_model("initial-exec"))) = nullptr;
__thread Processor* sky_tl_proc __attribute__((tls_model("initial-exec"))) = nullptr;
}

__attribute__((noinline)) void finish_switch(void* transfer) noexcept {
  // The resumed context runs on the thread that switched to it, so the switcher's processor is ours.
  auto* p = static_cast<Processor*>(transfer);
  p->switches.add();
  if (Task* prev = p->switch_prev) {
    p->switch_prev = nullptr;
    bool exited = prev->state.load(std::memory_order_relaxed) == TaskState::exited;
    bool free_now = exited && prev->self_free;
    if (exited) arch::destroy_context(prev->ctx);  // it never runs again; its stack is still mapped
    prev->on_cpu.store(false, std::memory_order_release);  // after this, a joiner may free `prev`
    if (free_now) task_free(prev, p);
  }
  if (Task* cur = p->current) {
    *p->errno_slot = cur->saved_errno;
    *p->eh_slot = cur->saved_eh;
  }
}

namespace {

inline void save_thread_state(Processor* p, Task* cur) noexcept {
  cur->saved_errno = *p->errno_slot;
  cur->saved_eh = *p->eh_slot;
}

// Leaves the current task `cur` (whose state the caller set) for whatever the policy picks next.
// Returns the processor `cur` runs on when it is resumed (possibly another one).
Processor* switch_away(Processor* p, Task* cur, bool exiting) noexcept {
  Task* next = proc_pick(p);
  if (next == cur) {  // yielded with nothing else runnable, or woken before it left
    cur->state.store(TaskState::running, std::memory_order_relaxed);
    return p;
  }
  stack_check_on_switch_out(cur);  // guardless stacks: the canary stands in for a guard page
  save_thread_state(p, cur);
  p->switch_prev = cur;
  void* transfer;
  if (next != nullptr && proc_dispatch(p, next)) {
    transfer = switch_into(cur->ctx, next->ctx, p, next, exiting);
  } else {
    // X1: nothing to run, or `next` is still switching out elsewhere; the loop dispatches pending_next.
    p->pending_next = next;
    p->current = nullptr;
    sky_tl_current = nullptr;
    if (next == nullptr) {
      p->idle.store(true, std::memory_order_relaxed);  // wakers may hand `cur`'s successors back to us
      if (p->preempt_hooks) preempt_on_idle(p);
    }
    transfer = switch_into(cur->ctx, p->kthread.load(std::memory_order_relaxed)->loop_ctx, p, nullptr, exiting);
  }
  finish_switch(transfer);  // `p` may be stale here: the task may have moved to another processor
  return static_cast<Processor*>(transfer);
}

[[noreturn]] void exit_current(Task* t) noexcept {
  Processor* p = proc_in_section(t);
  policy_not_held(t);
  p->policy->task_finish(t, p->index);
  p->exited.add();
  t->state.store(TaskState::exited, std::memory_order_relaxed);
  switch (t->join_state.exchange(kJoinExited, std::memory_order_seq_cst)) {
    case kJoinDetached: t->self_free = true; break;
    case kJoinTaskWaiting: task_unpark(t->joiner); break;  // the joiner frees us only after on_cpu clears
    case kJoinThreadWaiting: wake_address_all(t->join_state); break;
    default: p->rt->zombies.fetch_add(1, std::memory_order_relaxed); break;  // waits for join/detach
  }
  switch_away(p, t, /*exiting=*/true);
  sky_fatal("exited task %llu was resumed", static_cast<unsigned long long>(t->sched.id));
}

}  // namespace

// Entry of every task context (see arch::make_context).
void task_entry(void* arg, void* transfer) {
  arch::context_started();
  finish_switch(transfer);
  auto* t = static_cast<Task*>(arg);
  if (t->ctx.tls_tp != nullptr) task_tls_started();
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
  if (t->ctx.tls_tp != nullptr) task_tls_run_destructors();  // T4: as at a thread's exit
  RuntimeSection::enter(t);  // never left: the exit switch happens inside it
  exit_current(t);
}

void task_exit_now() noexcept {
  Task* t = current_task();
  if (t == nullptr) sky_fatal("task_exit_now() called outside a task");
  if (t->ctx.tls_tp != nullptr) task_tls_run_destructors();
  RuntimeSection::enter(t);
  exit_current(t);
}

void task_park(WaitReason reason) noexcept {
  Task* cur = current_task();
  SKY_ASSERT(cur->preempt_off.load(std::memory_order_relaxed) != 0);
  Processor* p = proc_in_section(cur);
  if (cur->park_state.load(std::memory_order_acquire) == kParkNotified) {  // a permit is waiting
    cur->park_state.store(kParkEmpty, std::memory_order_relaxed);
    return;
  }
  cur->wait_reason.store(reason, std::memory_order_relaxed);
  cur->state.store(TaskState::blocked, std::memory_order_relaxed);
  policy_not_held(cur);
  p->policy->block(cur, p->index);
  std::uint32_t expected = kParkEmpty;
  if (!cur->park_state.compare_exchange_strong(expected, kParkParked, std::memory_order_acq_rel)) {
    // Unparked between the check and here: blocked and woken at once, keeping block/wakeup paired.
    cur->park_state.store(kParkEmpty, std::memory_order_relaxed);
    cur->state.store(TaskState::runnable, std::memory_order_relaxed);
    policy_hand(cur);
    p->policy->wakeup(cur, p->index);
  }
  switch_away(p, cur, false);
  cur->wait_reason.store(WaitReason::none, std::memory_order_relaxed);
}

void task_unpark(Task* task) noexcept {
  if (task->park_state.exchange(kParkNotified, std::memory_order_acq_rel) != kParkParked) return;
  // We moved it out of kParkParked, so this call owns the wake-up.
  task->park_state.store(kParkEmpty, std::memory_order_relaxed);
  task->state.store(TaskState::runnable, std::memory_order_relaxed);
  Processor* p = this_proc();
  RuntimeCore* rt = current_runtime();
  policy_hand(task);
  rt->policy->wakeup(task, p ? p->index : -1);
}

namespace {
// The body of task_yield_locked, inlined into this_task::yield (the hottest path of all: one call less).
inline __attribute__((always_inline)) Processor* yield_locked(Processor* p, Task* cur) noexcept {
  cur->state.store(TaskState::runnable, std::memory_order_relaxed);
  policy_hand(cur);
  p->policy->yield(cur, p->index);
  return switch_away(p, cur, false);
}
}  // namespace

Processor* task_yield_locked(Processor* p, Task* cur) noexcept { return yield_locked(p, cur); }

void task_free(Task* task, Processor* p) noexcept {
  RuntimeSection section;  // the processor's stack cache is owner-only state
  while (task->on_cpu.load(std::memory_order_acquire)) cpu_relax();
  RuntimeCore* rt = current_runtime();
  arch::destroy_context(task->ctx);
  if (task->ctx.tls_tp != nullptr && !task->tls_borrowed) task_tls_destroy(task->ctx.tls_tp);  // T1: off the CPU
  StackMapping m = task->stack;  // the record lives inside the mapping
  task->~Task();
  rt->stacks.release(m, p && p->index >= 0 ? p->index : -1);
}

// ---- public task API ----

namespace this_task {

bool in_task() noexcept { return current_task() != nullptr; }

TaskId id() noexcept {
  Task* t = current_task();
  return t ? t->sched.id : 0;
}

int worker_index() noexcept {
  Processor* p = this_proc();
  return p && p->current ? p->index : -1;
}

void yield() {
  Task* t = current_task();
  if (t == nullptr) {
    sched_yield();
    return;
  }
  RuntimeSection::enter(t);
  yield_locked(proc_in_section(t), t);  // with the count held the task cannot move before this read
  RuntimeSection::leave(t);
}

void exit() { throw detail::TaskExit{}; }

void exit_now() noexcept { task_exit_now(); }

}  // namespace this_task

}  // namespace skyloft
