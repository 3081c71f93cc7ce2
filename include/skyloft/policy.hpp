// policy.hpp - the general scheduling operations. Every policy (fifo, sq, rr, cfs, eevdf, and those added
// with register_policy) is a subclass of Policy chosen by name at start; the core calls these ops and never
// asks which policy runs. This file is the whole contract: what the core promises a policy, and what a
// policy must do. Debug builds (no NDEBUG) check the preconditions in the built-in policies' shared code.
//
// Words used below:
//  * "worker" is a processor (one per managed core), indexed 0..num_workers()-1. A worker is driven by one
//    kernel thread at a time, but the thread can change: when a worker's thread blocks in the kernel, the
//    monitor hands the worker to a spare thread (the hand-off). "The worker's thread" is whichever drives it.
//  * `worker` arguments name the caller's worker, or are -1 when the caller drives none: a plain thread
//    (spawn() or Mutex::unlock() from main()), the dispatcher thread, or a thread whose worker was just
//    handed to a spare and which still runs its task until the task's next entry into the runtime.
//  * "Under the bucket lock": with a spinlock of the wait table held (wait_table.cpp). wake_address()
//    unparks waiters under it, from any thread; so does the deadline callback of a timed wait, which runs
//    either at the poll point of the worker the timer was armed on (on that worker's thread, inside a
//    scheduling decision: after the switching task went through yield/block, before pick_next) or on an
//    idle worker's thread that fires a busy worker's due timers (then `worker` is the idle one, not the
//    task's). An op that can run there must be short, must not spin on anything a waiter's thread could
//    hold, and must never call into the wait table (skyloft::Mutex, CondVar, wake_address, ...).
//
// Rules for every op:
//  R1. Never blocks, never sleeps, never switches tasks, never calls back into the scheduler (spawn, yield,
//      join, wait, sync primitives) or into the wait table. It may take the policy's own spinlocks; those
//      are leaf locks (the core may hold a bucket lock around wakeup, never the other way round).
//  R2. Never allocates: no new/malloc/std::vector growth (reserve up front). Allocation can enter the
//      kernel or take allocator locks while the core holds spinlocks, with preemption off, on paths every
//      worker passes through. Exceptions: init, init_worker and set_param may allocate; task_init may
//      (rarely: amortized growth of room for live tasks), since no runtime lock is held around it.
//  R3. Runs with preemption disabled on the calling worker (the core is inside a runtime section), except
//      set_param and dump, which run on the caller's thread as it is (a task calling them may be preempted
//      inside them and resume on another worker): they touch only atomics and must not take locks the
//      other ops take.
//  R4. Ops run concurrently on different threads; the policy synchronizes its own state. Ops never nest:
//      the core does not call an op from inside another one (an op's calls into PolicyHost never re-enter
//      the policy).
//  R5. Ownership: spawn, wakeup and yield hand a task to the policy; from then on the policy owns it and
//      must return it from pick_next() or balance() exactly once (or it stalls: see Config::stall_ms).
//      block and task_finish do not hand a task over. For one task the ops are ordered: task_init, spawn,
//      then cycles of pick/balance -> (yield -> pick | block -> wakeup -> pick), and task_finish last.
//  R6. Handing a task to the policy never waits for its registers: a yielded or blocked task may be picked
//      at once, by any worker (possibly the very pick that follows its yield), even while it is still
//      switching out on its old thread. The core waits for the switch to finish without holding a task of
//      its own (src/core/scheduler.cpp, rule X1), so even one queue shared by every worker cannot deadlock
//      in a storm of yields. A policy needs no per-CPU state to be correct.
//
// Who calls what (every op; "worker's thread" is the thread driving that worker at that moment):
//   op            thread                                       under bucket lock / timer callback
//   task_init     the spawning thread (any worker, plain)      no
//   spawn         the spawning thread, right after task_init   no
//   wakeup        any thread (see wakeup)                      yes, both; and from the hand-off
//   yield         the task's own worker's thread               no
//   block         the task's worker's thread; or the monitor   no
//   pick_next     `worker`'s thread only                       no (timers fire just before it)
//   balance       `worker`'s thread only                       no
//   tick          `worker`'s thread only                       no
//   task_finish   the exiting task's worker's thread           no
//   nr_waiting    any thread, for any worker                   no
//   poll          the dispatcher thread only                   no
//   init          the thread creating the Runtime              no
//   init_worker   the first thread that drives `worker`        no
//   set_param     any thread (Runtime::set_policy_param)       no
//   dump          any thread (Runtime::dump); the monitor      no
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
// free. Fields are owned by whoever owns the task at the moment (rule R5 above).
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

// Services the core offers to policies. Every one may be called from any op, on any thread, under the
// bucket lock too: none blocks, allocates or calls back into the policy.
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
  // True while `worker` sleeps for lack of work: work handed to it starts after a wake-up (a futex wake,
  // ~21 us on a VM whose idle vCPUs halt), not behind a running task.
  virtual bool is_parked(int worker) const noexcept = 0;
  // True while `worker` has left queued tasks untaken for longer than the hand-off delay (Config::handoff_us):
  // its thread runs one task without preemption, is blocked, or the kernel took its core away. Work handed
  // to it waits; placement avoids it. A hint from the monitor thread, a few hundred microseconds stale.
  virtual bool is_stalled(int /*worker*/) const noexcept { return false; }
  // True while `worker`'s core runs another application's worker (under skyloftd): a task handed to it
  // starts once that worker is interrupted and hands the core over. That worker keeps its core awake, but
  // a caller on the same CPU keeps it off the CPU, so it answers last when woken from there.
  virtual bool is_lent(int /*worker*/) const noexcept { return false; }
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

  // task_init: a new task is about to be spawned. Called on the spawning thread (a task on any worker, or
  // a plain thread), before spawn(), preemption off, no runtime lock held. The task's SchedInfo::data is
  // zeroed. May not fail; the one hot-path op that may allocate (R2), rarely. Default: nothing.
  virtual void task_init(Task*) {}
  // task_finish: the task has exited. Called once, on the thread of the worker it ran on, while it is still
  // that worker's current task; the policy no longer owns it and must not reference it afterwards (its
  // joiner may be woken, and free it, right after). Default: nothing.
  virtual void task_finish(Task*, int /*worker*/) {}

  // ---- hot path ----

  // spawn: a new task becomes runnable. Called on the spawning thread right after task_init; `worker` is
  // the spawner's worker or -1; `target` is the worker of the caller's core hint, or -1 for none (a pinned
  // task has target == SchedInfo::pinned_worker). The policy owns the task afterwards. Must wake a worker
  // (kick / notify_work_available / kick_dispatcher) if no running worker would otherwise find it, and call
  // task_waiting() for the worker it queued the task for. Required.
  virtual void spawn(Task* task, int worker, int target) = 0;
  // wakeup: a blocked task became runnable again; exactly once per block(). Ownership as in spawn.
  // `worker` is the waker's worker or -1; it says where the call runs, not where the task ran
  // (SchedInfo::last_worker says that). Called from:
  //   * wake_address() (Mutex::unlock, CondVar::notify, Semaphore::release, ...) under the bucket lock, on
  //     any thread: a task on any worker, a plain thread, the dispatcher;
  //   * a timed wait's deadline, under the bucket lock, from a timer callback (see "under the bucket lock":
  //     at the poll point of the timer's worker, or on an idle worker firing a busy one's timers);
  //   * the exit of a task that another task joins, on the exiting task's worker after task_finish;
  //   * the task's own worker, right after block(), when the wake-up raced with the block;
  //   * the hand-off: wakeup(t, -1) on the thread that got back from the kernel and no longer drives a
  //     worker, for the task the monitor block()ed (the task can run anywhere now).
  // Required.
  virtual void wakeup(Task* task, int worker) = 0;
  // yield: the running task gives up its core but stays runnable (voluntary yield, or preemption after
  // tick() returned true). Called on the task's own worker's thread, on its stack; `worker` >= 0. The task
  // may be picked again at once, by any worker, including this worker's very next pick (R6). Required.
  virtual void yield(Task* task, int worker) = 0;
  // block: the running task stops being runnable (it waits). The policy does not own it until the matching
  // wakeup(), which may come before the task has left its core. Called on the task's worker's thread while
  // it is still current, or by the hand-off: the monitor thread calls block(t, worker) for a worker whose
  // thread is blocked in the kernel and that it is taking over (t is that worker's current task; its thread
  // touches neither until the matching wakeup). Default: nothing.
  virtual void block(Task*, int /*worker*/) {}
  // pick_next: choose the next task for `worker`, or nullptr. Called only on `worker`'s thread, from its
  // loop or on a task's stack when that task yields, blocks or exits, right after the worker's due timers
  // fired (which may have called wakeup on this thread). Returned tasks leave the policy's ownership. The
  // returned task may still be saving its context on another thread; the core waits for that (R6).
  // Required.
  virtual Task* pick_next(int worker) = 0;

  // ---- CPU events ----

  // tick: called on `worker`'s thread at each preemption check (a quantum expired under the timer,
  // dispatcher, flag or hybrid mechanism) with its running task. It runs on the task's stack after the
  // interrupt has returned (not in signal context), with preemption disabled: it may take the policy's
  // spinlocks, but must not block. Return true to preempt: the core then calls yield(current, worker) and
  // switches. Default: preempt (plain time slicing at the mechanism's quantum).
  virtual bool tick(int /*worker*/, Task* /*current*/) { return true; }
  // nr_waiting: how many runnable tasks wait for `worker` (approximate; a hint). Called on any thread,
  // for any worker, concurrently with every other op: `worker`'s own thread (the timer mechanism when it
  // dispatches a task, a task arming a timer, a BlockingSection starting), the ticker thread or the
  // dispatcher thread (their preemption scan), the monitor thread (hand-off and stall watchdog), and the
  // thread shutting the runtime down (quiescence). The core uses it to decide whether the quantum must run
  // (tickless), whether a blocked thread's worker is wanted, and whether a worker stalls. Must be a
  // lock-free read of a few atomics; stale values are fine. Default: 1 (always run the quantum).
  virtual std::uint32_t nr_waiting(int /*worker*/) const { return 1; }
  // balance: `worker` is idle; steal or pull work from elsewhere. Returns a task to run now (owned by the
  // caller like pick_next's), or nullptr. Called only on `worker`'s thread, from its idle loop, after
  // pick_next() returned nullptr. Default: nullptr (no balancing).
  virtual Task* balance(int /*worker*/) { return nullptr; }
  // poll: one step of the dispatcher loop of a centralized policy (needs_dispatcher() == true). Runs on the
  // dispatcher thread, never on a worker. Returns true if it made progress; false lets the dispatcher spin
  // and then park until kick_dispatcher(). Default: false.
  virtual bool poll() { return false; }

  // ---- init / exit / introspection ----

  // init: once, on the thread creating the Runtime, before any worker runs. May allocate. Default: keeps
  // the host.
  virtual void init(PolicyHost& host) { host_ = &host; }
  // init_worker: once per worker, on the first kernel thread that drives it, before its loop starts. May
  // allocate. Default: nothing.
  virtual void init_worker(int /*worker*/) {}
  // set_param: tunes the policy by name at run time. Called on the thread of Runtime::set_policy_param's
  // caller (any thread, a task possibly preemptible: R3), concurrently with every op; a new value should
  // take effect at the next decision (store it in an atomic). Returns false for an unknown key or bad value
  // (the runtime turns that into a ConfigError). May allocate. Default: no parameters.
  virtual bool set_param(std::string_view /*key*/, std::string_view /*value*/) { return false; }
  // dump: writes the policy's state (queue lengths, ...) for diagnostics. Called on any thread
  // (Runtime::dump, R3) and by the stall watchdog on the monitor thread, concurrently with every op. Reads
  // atomics only and takes no lock an op takes: a stalled policy is what the watchdog may be reporting.
  // Must not allocate (stdio on the given stream is fine). Default: nothing.
  virtual void dump(std::FILE*) const {}

  // ---- data (any thread, any time) ----
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
