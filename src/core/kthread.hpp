// kthread.hpp - a kernel thread of the runtime (Go's M): what belongs to the thread, not to the core.
//
// A KThread drives at most one processor at a time. It owns the thread-level state a processor must not
// carry when it moves: the tid (signals and timers target it), the errno and C++ exception slots, the loop
// context on the thread's own stack, and the alternate signal stack. Threads are created by the runtime
// (one per processor at start, spares later for the hand-off) through os_thread.hpp, never through the
// public pthread symbols (an interposition layer replaces those).
//
// `standin` is a Processor that is nobody's core: while the thread has lost its processor to a spare (its
// task blocked in the kernel) but still runs that task, the thread's TLS processor points at its stand-in,
// whose preempt_flag is raised, so the task's next runtime entry or preempt point notices and hands itself
// back to the scheduler (handoff.cpp).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>

#include "arch/context.hpp"
#include "core/os_thread.hpp"
#include "core/park.hpp"
#include "core/processor.hpp"

namespace skyloft {

struct KThread {
  explicit KThread(RuntimeCore* rt, std::uint32_t serial) : rt(rt), serial(serial), standin(rt, nullptr, -1, -1) {}

  RuntimeCore* const rt;
  const std::uint32_t serial;        // 1.. in creation order; tags Processor::own_word

  // ---- the thread itself (set when it starts) ----
  OsThread os;
  pid_t tid = 0;
  int* errno_slot = nullptr;         // this thread's errno
  EhGlobals* eh_slot = nullptr;      // this thread's C++ exception globals (__cxa_get_globals())
  arch::ExecContext loop_ctx;        // the thread's loop, on its own stack
  void* alt_stack = nullptr;         // sigaltstack for the fault and preemption handlers
  // &sky_tl_proc and &skyloft_preempt_word in the TLS block this thread runs on (sysmon redirects them).
  // Written by the thread itself (at start, and at every switch with per-task TLS: task_tls.hpp T3); read by
  // the monitor only while the thread sits in the kernel.
  std::atomic<Processor**> tls_proc_slot{nullptr};
  std::atomic<std::uint32_t**> tls_preempt_slot{nullptr};

  // ---- hand-off ----
  Processor standin;                 // see above
  std::atomic<Processor*> next_proc{nullptr};  // a processor handed to this (spare) thread; then unpark
  alignas(64) ParkWord park;         // a spare thread parks here
  std::atomic<bool> detached{false}; // true while it runs a task after losing its processor
  std::atomic<std::uint32_t> standin_verdict{0};  // kVerdict* (handoff.hpp): the monitor writes, the thread resets
  KThread* next_spare = nullptr;     // spare list link (protected by the runtime's spare lock)
  int stat_fd = -1;                  // /proc/self/task/<tid>/stat, read by sysmon (unmarked hand-off)
  int syscall_fd = -1;               // /proc/self/task/<tid>/syscall

  // ---- timer slack (set_timer_slack) ----
  unsigned long timer_slack_ns = 0;  // the thread's PR_SET_TIMERSLACK as last set; the thread itself only
};

// How late the kernel may fire the thread's timed sleeps: runtime threads keep it at 1 ns (the default 50 us
// would delay timed parks); a processor waiting for a core may loosen it (app_core.hpp O3r).
inline constexpr unsigned long kPreciseTimerSlackNs = 1;

// On kt's own thread: sets its timer slack to `ns`, with a system call only when that changes it (a waiting
// processor's loose and precise sleeps alternate on every inter-app switch: two prctl per switch otherwise).
void set_timer_slack(KThread& kt, unsigned long ns) noexcept;

}  // namespace skyloft
