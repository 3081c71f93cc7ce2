// mechanism.hpp (internal) - a preemption mechanism: how a worker learns that its task's quantum expired.
//
// Every backend implements this interface; the core calls it at fixed points and never asks which one runs.
// Which calls may block, and where they run:
//   start / stop               runtime start and shutdown, on the controlling thread; may block.
//   worker_started / _stopping on the worker thread, around its loop; may make syscalls.
//   on_dispatch(w)             on w's thread, in the switch path, preemption disabled: must be cheap; may
//                              make a syscall only when the tickless state changes.
//   on_idle(w)                 on w's thread when it has nothing to run; may make a syscall.
//   task_waiting(w)            any thread (a policy queued a task for w); must not block; one load when
//                              nothing changes.
//   scan(now)                  the ticker/dispatcher thread: checks every worker; returns the next time it
//                              wants to run (UINT64_MAX: none until task_waiting()).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace skyloft {

struct RuntimeCore;
struct Worker;

class PreemptMechanism {
 public:
  virtual ~PreemptMechanism() = default;
  virtual void start(RuntimeCore&) {}
  virtual void stop() {}
  virtual void worker_started(Worker&) {}
  virtual void worker_stopping(Worker&) {}
  virtual void on_dispatch(Worker&) {}
  virtual void on_idle(Worker&) {}
  virtual void task_waiting(Worker&) {}
  virtual std::uint64_t scan(std::uint64_t /*now*/) { return UINT64_MAX; }
  // True when workers must record when each task started running (run_start_ns), for scan().
  virtual bool tracks_run_start() const noexcept { return false; }
  // True when the mechanism runs a ticker thread (which Config::dispatcher_core can give a core of its own).
  virtual bool has_ticker() const noexcept { return false; }
  virtual const char* name() const noexcept = 0;
};

// Creates the mechanism named by Config::preempt; throws ConfigError for an unknown name, a bad quantum, or
// a mechanism this machine cannot run (uintr without CPU and kernel support).
std::unique_ptr<PreemptMechanism> make_preempt_mechanism(const std::string& name, std::uint32_t quantum_us,
                                                         std::uint32_t hybrid_grace_us);

// The signal that preemption uses (SIGURG, as Go does: its default action is to ignore it, and almost no
// program uses it). Installed once, with SA_RESTART so no EINTR reaches code that did not expect it.
int preempt_signal() noexcept;
void install_preempt_handler();
// Asks `w`'s thread to preempt its task: the flag always, the signal too when `signal` is set.
void request_preemption(Worker& w, bool signal) noexcept;

}  // namespace skyloft
