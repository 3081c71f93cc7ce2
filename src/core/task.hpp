// task.hpp (internal) - the Task record and the states a task moves through.
//
// A task's record sits at the top of its own stack, above the spawned callable; the stack (a mapping with a
// guard page, or a guardless slot of a shared slab) is the only allocation a task makes. Who owns what,
// by state:
//
//   state     | on a run queue?        | owner of record and context          | who moves it out
//   ----------+------------------------+--------------------------------------+------------------------------
//   runnable  | yes (policy owns it)   | the policy until pick/balance        | the worker that picks it
//   running   | no                     | its thread; on_cpu is true            | the task itself (yield, park,
//             |                        |                                      | exit)
//   blocked   | no                     | the wait structure it is parked on   | task_unpark() by a waker
//   exited    | no                     | the joiner, detacher, or (detached)  | free after on_cpu clears
//             |                        | the next context on its thread        |
//
// on_cpu is true from dispatch until the task's registers are saved on switch-out; a processor that picks a
// task, and a joiner that frees one, first wait for on_cpu to clear (acquire; pairs with the release store
// in finish_switch). This lets a task be woken, and even picked elsewhere, while it is still switching out.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "arch/context.hpp"
#include "skyloft/policy.hpp"
#include "skyloft/task.hpp"
#include "skyloft/wait.hpp"

namespace skyloft {

enum class TaskState : std::uint8_t { runnable, running, blocked, exited };

// park_state values: a one-permit parking protocol (like a binary semaphore) so a wake-up that arrives
// before the task has parked is never lost.
inline constexpr std::uint32_t kParkEmpty = 0;
inline constexpr std::uint32_t kParkParked = 1;
inline constexpr std::uint32_t kParkNotified = 2;

// join_state values. A joining task parks directly (its Task* in `joiner`), which avoids the wait table
// on the spawn+join path; a joining plain thread waits on the word through the wait table.
inline constexpr std::uint32_t kJoinRunning = 0;
inline constexpr std::uint32_t kJoinExited = 1;
inline constexpr std::uint32_t kJoinDetached = 2;
inline constexpr std::uint32_t kJoinTaskWaiting = 3;    // `joiner` is parked until the exit
inline constexpr std::uint32_t kJoinThreadWaiting = 4;  // a plain thread waits on join_state

// The C++ ABI's per-thread exception-handling globals (__cxa_eh_globals: the stack of exceptions being
// handled, and the count of uncaught ones). A task carries its own across switches, like errno, so a task
// that yields inside a catch block and resumes on another thread still sees its own exception.
struct EhGlobals {
  void* caught = nullptr;
  unsigned int uncaught = 0;
};

// A task's stack: a mapping of its own with a guard page at `base`, or a slot of a shared slab with the
// canary word at `base` (see stack_pool.hpp and stack_canary.hpp).
struct StackMapping {
  void* base = nullptr;   // lowest address: the guard page or the canary word
  void* lo = nullptr;     // lowest usable address (above the guard page or the canary)
  std::size_t size = 0;   // the whole mapping or slot, guard or canary included
  bool guarded = true;
};

class Task {
 public:
  SchedInfo sched;  // must stay first: sched_of() casts
  arch::ExecContext ctx;

  std::atomic<bool> on_cpu{false};
  std::atomic<std::uint32_t> park_state{kParkEmpty};
  std::atomic<std::uint32_t> join_state{kJoinRunning};
  std::atomic<TaskState> state{TaskState::runnable};
  std::atomic<WaitReason> wait_reason{WaitReason::none};  // for reports; written by the task itself

  Task* joiner = nullptr;   // written by the joiner before it publishes kJoinTaskWaiting
  // Preemption-disabled depth: runtime sections plus preempt_disable(). Per task, not per worker, so a
  // preemption between reading "the current worker" and changing the count cannot strand it on the old
  // worker. Only the task itself and the signal handler of the thread running it touch it. A task starts
  // at 1: its first code (task_entry) runs inside the runtime.
  std::atomic<std::uint32_t> preempt_off{1};
  bool tls_borrowed = false;  // ctx.tls_tp is a thread's own block (task_tls_adopt): never freed with the task
  bool self_free = false;   // exited while detached: the next context on its thread  frees it
  int target_worker = -1;   // from the spawn core hint
#if SKYLOFT_CONTRACT_CHECKS
  std::atomic<std::uint8_t> policy_owned{0};  // 1 while the policy holds it (policy_check.hpp)
#endif
  int saved_errno = 0;      // errno while switched out
  EhGlobals saved_eh;       // libstdc++'s per-thread exception state while switched out
  detail::TaskBody body = nullptr;
  void* payload = nullptr;
  StackMapping stack;
  std::uint64_t runtime_epoch = 0;
  void* local = nullptr;    // this_task::local(): written and read only by the task itself
};

static_assert(offsetof(Task, sched) == 0, "SchedInfo must be the first member of Task");

}  // namespace skyloft
