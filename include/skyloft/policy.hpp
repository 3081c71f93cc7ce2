// policy.hpp - the general scheduling operations. Every policy (fifo, sq, and later rr, cfs, eevdf, lc/be)
// is a subclass of Policy chosen by name at start; the core calls these ops and never asks which policy runs.
//
// Conventions for every op below:
//  * `worker` is the index (0..num_workers-1) of the worker thread making the call, or -1 when the call
//    comes from a plain kernel thread outside the runtime (e.g. spawn() or a Mutex::unlock() from main()).
//  * No runtime lock is held when an op is called, and preemption is disabled on the calling worker: an op
//    never blocks, never switches tasks and never calls back into the scheduler (spawn/yield/wait).
//  * Ops that take a Task* for queueing (spawn, wakeup, yield) hand the task to the policy: from then on the
//    policy owns it and must eventually return it from pick_next() or balance() exactly once, or it stalls.
//  * Ops may run concurrently on different workers for different tasks; the policy synchronizes its own
//    queues. The core guarantees that for one task the ops are ordered: task_init, spawn, then cycles of
//    pick/balance -> (yield -> pick | block -> wakeup -> pick), and task_finish last.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "skyloft/task.hpp"

namespace skyloft {

inline constexpr std::size_t kPolicyTaskDataSize = 64;

// The part of a task a policy may read and write. It is the first member of every Task, so sched_of() is
// free. Fields are owned by whoever owns the task at the moment (see the ownership convention above).
struct SchedInfo {
  Task* next = nullptr;     // intrusive links for the policy's queues
  Task* prev = nullptr;
  TaskId id = 0;            // set by the core; read-only for policies
  int last_worker = -1;     // worker the task last ran on (-1: never ran); set by the core on dispatch
  int spawn_worker = -1;    // worker that spawned it (-1: outside the runtime); set by the core
  int pinned_worker = -1;   // SpawnOptions::pin: the only worker it may run on (-1: any); set by the core
  int nice = 0;             // SpawnOptions::nice, -20..19; set by the core
  alignas(16) std::byte data[kPolicyTaskDataSize] = {};  // policy-private; zeroed before task_init

  template <class T>
  T& as() noexcept {
    static_assert(sizeof(T) <= kPolicyTaskDataSize && alignof(T) <= 16, "policy task data too large");
    return *std::launder(reinterpret_cast<T*>(data));
  }
};

inline SchedInfo& sched_of(Task* t) noexcept { return *reinterpret_cast<SchedInfo*>(t); }

// Services the core offers to policies.
class PolicyHost {
 public:
  virtual ~PolicyHost() = default;
  virtual int num_workers() const noexcept = 0;
  // The core a worker is pinned to.
  virtual int core_of(int worker) const noexcept = 0;
  // Wakes `worker` if it is parked; cheap (one load) when it is not. Call after making work visible to it.
  virtual void kick(int worker) noexcept = 0;
  // There is surplus work on the calling worker: wake one parked worker unless one is already searching.
  virtual void notify_work_available() noexcept = 0;
  // True while `worker` spins looking for work: work handed to it starts within about a microsecond with
  // no wake-up syscall. False while it runs a task or is parked.
  virtual bool is_idle(int worker) const noexcept = 0;
  // Wakes the dispatcher thread of a centralized policy if it is parked.
  virtual void kick_dispatcher() noexcept = 0;
  // A task now waits for `worker`'s core (the policy queued it there). Preemption is tickless: the core
  // only interrupts a worker while another task waits for it, so it starts the quantum of `worker` here if
  // it is not running yet. One load when it already runs. Call after making the task visible.
  virtual void task_waiting(int worker) noexcept = 0;
};

class Policy {
 public:
  virtual ~Policy() = default;

  // ---- task lifecycle ----

  // task_init: a new task is about to be spawned. Called on the spawning thread (worker or outside),
  // before spawn(). The task's SchedInfo::data is zeroed. May not fail. Default: nothing.
  virtual void task_init(Task*) {}
  // task_finish: the task has exited. Called once, on the worker it ran on, while it is still that worker's
  // current task; the policy no longer owns it and must not reference it afterwards. Default: nothing.
  virtual void task_finish(Task*, int /*worker*/) {}

  // ---- hot path ----

  // spawn: a new task becomes runnable. `target` is the worker of the caller's core hint, or -1 for none.
  // The policy owns the task afterwards. Must wake a worker (kick / notify_work_available /
  // kick_dispatcher) if no running worker would otherwise find it. Required.
  virtual void spawn(Task* task, int worker, int target) = 0;
  // wakeup: a blocked task became runnable again; `worker` is the waker's (or -1). Ownership as in spawn.
  // Called exactly once per block(). Required.
  virtual void wakeup(Task* task, int worker) = 0;
  // yield: the running task gives up its core but stays runnable (voluntary yield, or preemption).
  // Called on the task's own worker, which still runs on its stack; the task may be picked again at once
  // (even by this same pick). Required.
  virtual void yield(Task* task, int worker) = 0;
  // block: the running task stops being runnable (it waits). Called on its worker; the policy does not own
  // it until the matching wakeup(), which may come before the task has left its core. Default: nothing.
  virtual void block(Task*, int /*worker*/) {}
  // pick_next: choose the next task for `worker`, or nullptr. Called by that worker only, from its loop
  // or on a task's stack when it yields, blocks or exits. Returned tasks leave the policy's ownership. The
  // returned task may still be saving its context on another worker; the core waits for that. Required.
  virtual Task* pick_next(int worker) = 0;

  // ---- CPU events ----

  // tick: called on `worker` at each preemption check (a quantum expired under the timer, dispatcher,
  // flag or hybrid mechanism) with its running task. It runs on the task's stack after the interrupt has
  // returned (not in signal context), with preemption disabled: it may take the policy's spinlocks, but
  // must not block. Return true to preempt: the core then calls yield(current, worker) and switches.
  // Default: preempt (plain time slicing at the mechanism's quantum).
  virtual bool tick(int /*worker*/, Task* /*current*/) { return true; }
  // nr_waiting: how many runnable tasks wait for `worker` (approximate; a hint). The core asks it when it
  // dispatches a task, to decide whether the quantum must run (tickless). Default: 1 (always run it).
  virtual std::uint32_t nr_waiting(int /*worker*/) const { return 1; }
  // balance: `worker` is idle; steal or pull work from elsewhere. Returns a task to run now (owned by the
  // caller like pick_next's), or nullptr. Called only by `worker` after pick_next() returned nullptr.
  // Default: nullptr (no balancing).
  virtual Task* balance(int /*worker*/) { return nullptr; }
  // poll: one step of the dispatcher loop of a centralized policy (needs_dispatcher() == true). Runs on the
  // dispatcher thread, never on a worker. Returns true if it made progress; false lets the dispatcher spin
  // and then park until kick_dispatcher(). Default: false.
  virtual bool poll() { return false; }

  // ---- init / exit / introspection ----

  // init: once, on the starting thread, before any worker runs. Default: nothing.
  virtual void init(PolicyHost& host) { host_ = &host; }
  // init_worker: once per worker, on that worker's thread before its loop starts. Default: nothing.
  virtual void init_worker(int /*worker*/) {}
  // set_param: tunes the policy by name at run time. Returns false for an unknown key or bad value
  // (the runtime turns that into a ConfigError). Default: no parameters.
  virtual bool set_param(std::string_view /*key*/, std::string_view /*value*/) { return false; }
  // dump: writes the policy's state (queue lengths, ...) for diagnostics. Default: nothing.
  virtual void dump(std::FILE*) const {}

  // ---- data ----
  virtual std::string_view name() const noexcept = 0;
  // Centralized policies need a dispatcher thread that calls poll(); it gets its own core.
  virtual bool needs_dispatcher() const noexcept { return false; }

 protected:
  PolicyHost* host_ = nullptr;
};

using PolicyFactory = std::function<std::unique_ptr<Policy>()>;

// Adds a policy under `name` (before the runtime starts). Throws ConfigError if the name is taken or empty.
void register_policy(std::string name, PolicyFactory factory);
// Names of all registered policies (built-in first).
std::vector<std::string> policy_names();
// True when this build checks the contract at run time (debug and sanitizer builds): a task handed to a
// policy that is not returned exactly once is then a fatal error naming the policy.
bool policy_contract_checked() noexcept;
// Creates a policy by name; throws ConfigError naming the known policies when `name` is unknown.
std::unique_ptr<Policy> make_policy(std::string_view name);

}  // namespace skyloft
