// task_spawn.cpp - spawning, joining and detaching tasks.
//
// A task's record and its callable live at the top of its own stack (task.hpp), so a spawn allocates only
// the stack. Joining a task from a task parks the joiner directly on the joinee (no wait table); from a
// plain thread it waits on the join word through the wait table.
#include <algorithm>
#include <new>
#include <stdexcept>

#include <fmt/format.h>

#include "core/runtime_core.hpp"
#include "core/scheduler.hpp"
#include "core/wait_table.hpp"
#include "skyloft/task.hpp"

namespace skyloft {

void task_entry(void* arg, void* transfer);

// ---- spawning and joining ----

namespace detail {

[[noreturn]] void throw_pin_without_core() {
  throw ConfigError("SpawnOptions::pin needs SpawnOptions::core: the core to pin the task to");
}

Task* task_allocate(const SpawnOptions& opts, std::size_t size, std::size_t align, void** payload) {
  RuntimeCore* rt = current_runtime();
  if (rt == nullptr) throw std::logic_error("skyloft::spawn: no runtime is running");
  const StackRequest stack = rt->stacks.request(opts.stack_size, opts.guard);
  const std::size_t usable = stack.size;
  int target = rt->worker_for_core(opts.core);
  if (opts.pin && target < 0) throw_pin_without_core();
  if (opts.nice < -20 || opts.nice > 19) {
    throw ConfigError(fmt::format("nice {} is out of range (-20..19)", opts.nice));
  }
  if (size > usable / 2) {
    throw ConfigError(fmt::format("the spawned callable is {} bytes; it must fit in half the task stack ({} bytes)",
                                  size, usable / 2));
  }
  RuntimeSection section;  // the processor's stack cache and id block are owner-only state
  Processor* w = this_proc();
  StackMapping m = rt->stacks.allocate(stack, w && w->index >= 0 ? w->index : -1);
  auto top = reinterpret_cast<std::uintptr_t>(m.base) + m.size;
  auto task_addr = (top - sizeof(Task)) & ~std::uintptr_t{63};
  Task* t = ::new (reinterpret_cast<void*>(task_addr)) Task;  // default-init: members carry their own initialisers
  std::uintptr_t al = std::max<std::size_t>(align, 16);
  auto payload_addr = (task_addr - size) & ~(al - 1);
  *payload = reinterpret_cast<void*>(payload_addr);
  t->payload = *payload;
  t->stack = m;
  t->target_worker = target;
  t->runtime_epoch = rt->epoch;
  t->sched.id = rt->allocate_task_id(w);
  t->sched.spawn_worker = w && w->index >= 0 ? w->index : -1;
  if (opts.pin) t->sched.pinned_worker = target;
  t->sched.nice = opts.nice;
  void* lo = m.lo;
  arch::make_context(t->ctx, lo, reinterpret_cast<void*>(payload_addr), &task_entry, t);
  if (rt->config.task_tls) {
    try {
      t->ctx.tls_tp = task_tls_create(t->sched.id);
    } catch (...) {
      arch::destroy_context(t->ctx);
      t->~Task();
      rt->stacks.release(m, w && w->index >= 0 ? w->index : -1);
      throw;
    }
  }
  return t;
}

void task_discard(Task* task) noexcept {
  RuntimeSection section;
  RuntimeCore* rt = current_runtime();
  Processor* w = this_proc();
  arch::destroy_context(task->ctx);
  if (task->ctx.tls_tp != nullptr) task_tls_destroy(task->ctx.tls_tp);
  StackMapping m = task->stack;
  task->~Task();
  rt->stacks.release(m, w && w->index >= 0 ? w->index : -1);
}

void task_launch(Task* task, TaskBody body) noexcept {
  RuntimeSection section;
  RuntimeCore* rt = current_runtime();
  Processor* w = this_proc();  // not the spawner recorded earlier: the task may have moved since
  task->body = body;
  rt->policy->task_init(task);
  if (w != nullptr && w->index >= 0) {
    w->spawned.add();
  } else {
    rt->external_spawned.fetch_add(1, std::memory_order_release);
  }
  policy_hand(task);
  rt->policy->spawn(task, w && w->index >= 0 ? w->index : -1, task->target_worker);
}

void task_join(Task* task, std::uint64_t epoch) {
  RuntimeCore* rt = current_runtime();
  if (rt == nullptr || rt->epoch != epoch) throw std::logic_error("skyloft: join() after its runtime shut down");
  RuntimeSection section;
  Task* self = current_task();
  if (self != nullptr) task->joiner = self;
  std::uint32_t expected = kJoinRunning;
  if (!task->join_state.compare_exchange_strong(expected, self ? kJoinTaskWaiting : kJoinThreadWaiting,
                                                std::memory_order_acq_rel)) {
    rt->zombies.fetch_sub(1, std::memory_order_relaxed);  // it had exited already, unjoined
  } else if (self != nullptr) {
    while (task->join_state.load(std::memory_order_acquire) != kJoinExited) task_park(WaitReason::join);
  } else {
    while (task->join_state.load(std::memory_order_acquire) != kJoinExited) {
      wait_address(task->join_state, kJoinThreadWaiting, kNoDeadline, WaitReason::join);
    }
  }
  task_free(task, this_proc());
}

void task_detach(Task* task, std::uint64_t epoch) noexcept {
  RuntimeCore* rt = current_runtime();
  if (rt == nullptr || rt->epoch != epoch) return;  // its runtime already reclaimed it
  if (task->join_state.exchange(kJoinDetached, std::memory_order_acq_rel) == kJoinExited) {
    rt->zombies.fetch_sub(1, std::memory_order_relaxed);
    task_free(task, this_proc());
  }
}

}  // namespace detail

JoinHandle spawn_prepared(Task* task, detail::TaskBody body) noexcept {
  JoinHandle h(task, task->sched.id, task->runtime_epoch);
  detail::task_launch(task, body);
  return h;
}

void JoinHandle::join() {
  if (task_ == nullptr) throw std::logic_error("skyloft::JoinHandle::join: not joinable");
  if (current_task() == task_) throw std::logic_error("skyloft::JoinHandle::join: a task cannot join itself");
  detail::task_join(std::exchange(task_, nullptr), epoch_);
}

}  // namespace skyloft
