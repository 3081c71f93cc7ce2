// placement.hpp - where a runnable task goes and who is told, for the per-CPU policies (fifo, and rr, cfs,
// eevdf through PerCpuPolicy). The policies differ in their queues, not in these rules, so they live here
// once:
//   spawn   the pinned worker -> the core hint's worker -> the spawner's worker -> from outside the
//           runtime: the round-robin worker if it spins idle, else a spinning one among the next few, else a
//           parked one (parked_rank: one whose core another app runs, not on the caller's CPU, then the one on
//           the caller's CPU, which is awake, where a halted core's wake costs ~21 us here, p90 ~100 us),
//           else the round-robin one (queued behind its running task, which
//           may run for a quantum or, without preemption, to its end: a thread that spawns requests must
//           not put a 4 us one behind a 10 ms one while another worker sleeps); stalled workers (is_stalled)
//           are skipped unless every worker looked at is stalled.
//   wakeup  the pinned worker; else the task's previous worker if it spins idle (cache affinity at no
//           wake-up cost) or the waker is outside the runtime; else the waker's worker (the woken task
//           usually consumes what the waker produced).
//   yield   the yielder's own worker (nothing to decide, nobody to tell).
//   tell    a task queued on another worker kicks it; on the caller's own worker, the first stealable task
//           behind the running one stays local (a task that wakes one other and then blocks hands off with no
//           syscall, as Go's runnext does), and from the second one an idle worker is woken to steal.
// Every function here checks its preconditions in debug builds (SKY_DEBUG_ASSERT).
#pragma once

#include <sched.h>

#include <atomic>
#include <cstdint>

#include "core/fatal.hpp"
#include "skyloft/policy.hpp"

namespace skyloft {

// `worker` names a worker of a runtime with `n` workers (or is -1, where the op allows callers outside).
inline bool is_worker(int worker, int n) noexcept { return worker >= 0 && worker < n; }
inline bool is_worker_or_outside(int worker, int n) noexcept { return worker == -1 || is_worker(worker, n); }

// The preconditions every op that receives a task checks.
inline void check_task_op(Task* t, int caller, int n) noexcept {
  SKY_DEBUG_ASSERT(t != nullptr);
  SKY_DEBUG_ASSERT(is_worker_or_outside(caller, n));
  SKY_DEBUG_ASSERT(is_worker_or_outside(sched_of(t).pinned_worker, n));
  SKY_DEBUG_ASSERT(is_worker_or_outside(sched_of(t).last_worker, n));
  (void)t;
  (void)caller;
  (void)n;
}

// How many workers after the round-robin one an outside spawn looks at (bounded: 256-worker machines).
inline constexpr int kOutsideSpawnLookahead = 8;

// How quickly a parked worker answers a wake-up from a thread on CPU `here` (higher: sooner). A worker whose
// core another app runs answers when that app's worker takes its signal: soon on another CPU (that worker
// runs there), last on ours (we displace it). A worker on its own idle core: at once on our CPU (awake),
// after a halted core's wake elsewhere.
inline int parked_rank(const PolicyHost& host, int w, int here) noexcept {
  const bool ours = host.core_of(w) == here;
  if (host.is_lent(w)) return ours ? 0 : 3;
  return ours ? 2 : 1;
}

// The worker a new task is queued on. `hint`: the core hint's worker or -1; `round_robin`: the policy's
// cursor for spawns from outside the runtime.
inline int spawn_target(Task* t, int caller, int hint, int n, std::atomic<std::uint32_t>& round_robin,
                        const PolicyHost& host) noexcept {
  check_task_op(t, caller, n);
  SKY_DEBUG_ASSERT(is_worker_or_outside(hint, n));
  if (int pinned = sched_of(t).pinned_worker; pinned >= 0) return pinned;
  if (hint >= 0) return hint;
  if (caller >= 0) return caller;
  const int first = static_cast<int>(round_robin.fetch_add(1, std::memory_order_relaxed) % static_cast<std::uint32_t>(n));
  // A stalled worker (the monitor saw it leave queued work untaken: its thread is off the CPU or runs one
  // task unpreempted) is never picked while another is looked at: it would strand the task.
  const int here = sched_getcpu();  // glibc reads it from the rseq area: no system call
  int parked = -1, parked_best = -1, busy = -1;
  for (int i = 0; i < n && i <= kOutsideSpawnLookahead; ++i) {
    const int w = (first + i) % n;
    if (host.is_stalled(w)) continue;
    if (host.is_idle(w)) return w;
    if (host.is_parked(w)) {
      const int rank = parked_rank(host, w, here);
      if (rank > parked_best) {
        parked = w;
        parked_best = rank;
      }
    }
    if (busy < 0) busy = w;
  }
  return parked >= 0 ? parked : busy >= 0 ? busy : first;
}

// The worker a woken task is queued on; `waker` is the caller's worker or -1.
inline int wakeup_target(Task* t, int waker, int n, const PolicyHost& host) noexcept {
  check_task_op(t, waker, n);
  if (int pinned = sched_of(t).pinned_worker; pinned >= 0) return pinned;
  const int prev = sched_of(t).last_worker >= 0 ? sched_of(t).last_worker : 0;
  return (waker < 0 || (prev != waker && host.is_idle(prev))) ? prev : waker;
}

// A yielded task stays on its worker; a pinned one can only be yielding on its own.
inline void check_yield(Task* t, int worker, int n) noexcept {
  check_task_op(t, worker, n);
  SKY_DEBUG_ASSERT(is_worker(worker, n));
  SKY_DEBUG_ASSERT(sched_of(t).pinned_worker < 0 || sched_of(t).pinned_worker == worker);
  (void)t;
  (void)worker;
  (void)n;
}

// After queueing a task on `target` (spawn or wakeup; call once the task is visible there): starts target's
// quantum if it runs a task, and wakes whoever has to run it. `stealable_queued`: tasks on target's queue
// other workers may take, counting this one (0 for a pinned task: waking a thief would be useless).
inline void tell_queued(PolicyHost& host, int target, int caller, std::uint32_t stealable_queued) noexcept {
  host.task_waiting(target);
  if (target != caller) {
    host.kick(target);
  } else if (stealable_queued >= 2) {
    host.notify_work_available();
  }
}

}  // namespace skyloft
