// task.hpp - user-level tasks: spawn, join, detach, yield, sleep, exit.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

#include "skyloft/time.hpp"

namespace skyloft {

class Task;  // defined in the runtime; opaque here
using TaskId = std::uint64_t;

// Whether a task's stack has a PROT_NONE guard page below it.
enum class StackGuard : std::uint8_t {
  config,  // Config::stack_guard decides
  on,      // a mapping of its own with a guard page: an overflow faults at once. Two memory maps per
           // stack, so vm.max_map_count (65530 by default) caps live guarded tasks near 32k.
  off,     // carved from a large shared mapping (no per-task map), down to kMinGuardlessStackSize bytes;
           // a canary word at its low end is checked at every switch-out of the task, so an overflow is
           // reported at the task's next switch (it may have corrupted a neighbouring stack meanwhile).
};

struct SpawnOptions {
  // 0: the runtime's default (Config::stack_size; raised to kMinStackSize when the stack is guarded).
  std::size_t stack_size = 0;
  int core = -1;               // hint: start on the worker of this core (-1: let the policy choose)
  // With `core` set: keep the task on that core's worker for its whole life (never stolen or moved).
  // Per-CPU policies honour it; centralized ones (sq) place every task themselves and ignore it.
  bool pin = false;
  // Scheduling weight for weighted policies (cfs, eevdf), as Linux nice: -20 (heaviest) .. 19 (lightest).
  int nice = 0;
  StackGuard guard = StackGuard::config;
};

namespace detail {
// The entry a spawned task runs: calls the callable stored at `payload`, then destroys it.
using TaskBody = void (*)(void* payload);

// Allocates a task and its stack; returns the task and, in *payload, room for `size` bytes aligned to
// `align` at the top of the stack. Throws ConfigError for a bad stack size or a core hint that is not a
// managed core, std::system_error (ENOMEM) when no stack can be mapped, std::logic_error when no runtime
// is running.
Task* task_allocate(const SpawnOptions& opts, std::size_t size, std::size_t align, void** payload);
// Gives back a task from task_allocate that will not be launched (its payload's constructor threw).
void task_discard(Task* task) noexcept;
// Makes the task runnable through the policy. Does not fail.
void task_launch(Task* task, TaskBody body) noexcept;

void task_join(Task* task, std::uint64_t runtime_epoch);
void task_detach(Task* task, std::uint64_t runtime_epoch) noexcept;

// Thrown by this_task::exit() to unwind the task's stack; caught by the task's entry. Code that catches
// everything (catch (...)) inside a task must rethrow it, as with any forced unwind.
struct TaskExit {};
}  // namespace detail

// Owns the right to join a task. Move-only. Destroying a joinable handle detaches the task (it runs on and
// its resources are freed when it ends), unlike std::thread, because a task is cheap and joining in a
// destructor could block a worker's task at a surprising place.
class JoinHandle {
 public:
  JoinHandle() = default;
  JoinHandle(JoinHandle&& o) noexcept
      : task_(std::exchange(o.task_, nullptr)), id_(o.id_), epoch_(o.epoch_) {}
  JoinHandle& operator=(JoinHandle&& o) noexcept {
    if (this != &o) {
      detach();
      task_ = std::exchange(o.task_, nullptr);
      id_ = o.id_;
      epoch_ = o.epoch_;
    }
    return *this;
  }
  JoinHandle(const JoinHandle&) = delete;
  JoinHandle& operator=(const JoinHandle&) = delete;
  ~JoinHandle() { detach(); }

  bool joinable() const noexcept { return task_ != nullptr; }
  TaskId id() const noexcept { return id_; }
  // Waits for the task to finish. Parks the calling task (or blocks the calling kernel thread when called
  // from outside the runtime). Throws std::logic_error if not joinable.
  void join();
  // Lets the task run on alone; its stack is freed when it ends.
  void detach() noexcept {
    if (task_) detail::task_detach(std::exchange(task_, nullptr), epoch_);
  }

 private:
  friend JoinHandle spawn_prepared(Task*, detail::TaskBody) noexcept;
  JoinHandle(Task* t, TaskId id, std::uint64_t epoch) : task_(t), id_(id), epoch_(epoch) {}
  Task* task_ = nullptr;
  TaskId id_ = 0;
  std::uint64_t epoch_ = 0;
};

JoinHandle spawn_prepared(Task* task, detail::TaskBody body) noexcept;

// Spawns `f` as a task on the running runtime; callable from tasks and from plain threads. The callable is
// moved onto the top of the task's stack (no heap allocation).
template <class F>
JoinHandle spawn(F&& f, SpawnOptions opts = {}) {
  using Fn = std::decay_t<F>;
  static_assert(std::is_invocable_v<Fn&>, "spawn() needs a callable taking no arguments");
  void* payload = nullptr;
  Task* task = detail::task_allocate(opts, sizeof(Fn), alignof(Fn), &payload);
  try {
    ::new (payload) Fn(std::forward<F>(f));
  } catch (...) {
    detail::task_discard(task);
    throw;
  }
  detail::TaskBody body = [](void* p) {
    Fn& fn = *static_cast<Fn*>(p);
    struct Destroy {
      Fn& fn;
      ~Destroy() { fn.~Fn(); }
    } destroy{fn};
    fn();
  };
  return spawn_prepared(task, body);
}

namespace this_task {
// True when called from a task (as opposed to a plain kernel thread).
bool in_task() noexcept;
// The current task's id; 0 outside tasks.
TaskId id() noexcept;
// The index of the worker running the caller; -1 outside tasks.
int worker_index() noexcept;
// Puts the task at the back of its run queue and runs another one if any is runnable.
void yield();
void sleep_until(Deadline deadline);
template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
  sleep_until(deadline_after(std::chrono::duration_cast<std::chrono::nanoseconds>(d)));
}
// Ends the task by unwinding its stack (destructors run); a joiner is woken.
[[noreturn]] void exit();
// Ends the calling task at once, WITHOUT unwinding its stack: destructors of the frames on it do not run
// (for pthread_exit from C frames, which have no unwind tables). Joiners see a normal exit. Outside a
// task: fatal error.
[[noreturn]] void exit_now() noexcept;
// One pointer of the task's own, for layers that keep per-task records (the POSIX layer's thread record):
// nullptr until set; only the task itself reads or writes it. Outside a task: local() is nullptr and
// set_local() returns false.
void* local() noexcept;
bool set_local(void* value) noexcept;
// The usable part of the task's stack: [*lo, *lo + *size), above its guard page or canary, below its record.
// Outside a task: false.
bool stack_bounds(void** lo, std::size_t* size) noexcept;
}  // namespace this_task

}  // namespace skyloft
