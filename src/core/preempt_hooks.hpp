// preempt_hooks.hpp (internal) - the interface the core calls on a preemption mechanism.
//
// The mechanisms themselves (timer, ticker-based dispatcher/flag/hybrid, uintr) live in src/preempt/ and
// implement this; the core calls it at fixed points and never asks which one runs. Each mechanism keeps
// its own per-processor state, indexed by Processor::index. Which calls may block, and where they run:
//   start / stop                 runtime start and shutdown, on the controlling thread; may block.
//   thread_attached / _detached  on the thread that starts / stops driving processor p (start, shutdown,
//                                a hand-off to a spare thread); may make syscalls.
//   on_dispatch(p)               on p's thread, in the switch path, preemption disabled: must be cheap; may
//                                make a syscall only when the tickless state changes.
//   on_idle(p)                   on p's thread when it has nothing to run; may make a syscall.
//   task_waiting(p)              any thread (a policy queued a task for p); must not block; one load when
//                                nothing changes.
//   timer_armed(p, deadline)     on p's thread: a task armed a timer on p while others wait for p's core,
//                                so p may run another task past the deadline; the mechanism makes sure p is
//                                interrupted near it (the poll point then fires the timer). Must not block.
//   scan(now)                    the ticker/dispatcher thread: checks every processor; returns the next
//                                time it wants to run (UINT64_MAX: none until task_waiting()).
#pragma once

#include <cstdint>

namespace skyloft {

struct RuntimeCore;
struct Processor;

class PreemptMechanism {
 public:
  virtual ~PreemptMechanism() = default;
  virtual void start(RuntimeCore&) {}
  virtual void stop() {}
  virtual void thread_attached(Processor&) {}
  virtual void thread_detached(Processor&) {}
  virtual void on_dispatch(Processor&) {}
  virtual void on_idle(Processor&) {}
  virtual void task_waiting(Processor&) {}
  virtual void timer_armed(Processor&, std::uint64_t /*deadline*/) {}
  virtual std::uint64_t scan(std::uint64_t /*now*/) { return UINT64_MAX; }
  // True when processors must record when each task started running (run_start_ns), for scan().
  virtual bool tracks_run_start() const noexcept { return false; }
  // Nonzero: each processor times its own quantum of this length (preemption.cpp Q1-Q4) and the mechanism
  // arms it (arm_quantum_end) instead of watching the runs. `centralized`: the policy has a dispatcher
  // thread, which watches anyway.
  virtual std::uint64_t self_timed_quantum_ns(bool /*centralized*/) const noexcept { return 0; }
  // True when the mechanism runs a ticker thread (which Config::dispatcher_core can give a core of its own).
  virtual bool has_ticker() const noexcept { return false; }
  virtual const char* name() const noexcept = 0;
};

}  // namespace skyloft
