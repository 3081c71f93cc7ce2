// processor.hpp - a processor: the scheduling state of one managed core (Go's P).
//
// A processor is what a policy calls a "worker": the policy's index, the core, the timers armed by tasks
// that ran here, the stats, the preemption state and the poll bits. A kernel thread (KThread, Go's M,
// kthread.hpp) drives one processor at a time; a processor can move to another kernel thread (the
// blocked-thread hand-off, handoff.cpp) and, under a daemon, a core can be lent to another application.
//
// Who touches what:
//   read-only after start : rt, policy, index, core, preempt_hooks, track_run_start, min_run_ns,
//                           self_quantum_ns, io, revoke, app
//   the driving thread    : current, switch_prev, errno_slot, next_id/end_id, stats (OwnerCounter), idle,
//                           quantum_end_ns
//   any thread            : timers (own lock), poll_bits (set by arming parties, cleared by the driver),
//                           preempt_flag (set by mechanisms), park (unparked by wakers)
//   the hand-off          : kthread and own_word, by the protocol in handoff.cpp
//
// Code that runs on a processor reaches it in one TLS load (this_proc()). The multi-app layer's hooks in
// the hot paths read Processor::app through shared_core() only, so a build without the layer
// (SKYLOFT_MULTI_APP=OFF) drops them.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/park.hpp"
#include "core/timer_heap.hpp"

#ifndef SKYLOFT_MULTI_APP
#error "SKYLOFT_MULTI_APP must be defined (0 or 1) for every target: CMakeLists.txt does it"
#endif

namespace skyloft {

// The build has the multi-app layer's hooks (CMake option SKYLOFT_MULTI_APP).
inline constexpr bool kMultiApp = SKYLOFT_MULTI_APP != 0;

class AppCore;
class Policy;
class Task;
struct EhGlobals;
struct KThread;
struct RuntimeCore;

// A counter with a single writer (the processor's driving thread) and any number of racy readers.
class OwnerCounter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// Bits of Processor::poll_bits: what the poll point (sched_poll) has to look at. Zero: nothing pending,
// and the poll point costs one load and a branch.
inline constexpr std::uint32_t kPollTimers = 1u << 0;   // the timer heap is not empty
inline constexpr std::uint32_t kPollIo = 1u << 1;       // I/O operations in flight (the io layer)
inline constexpr std::uint32_t kPollRevoke = 1u << 2;   // the core is asked back (multi-app)

// Values of a processor's preemption word (preempt_word). Any nonzero value sends preempt_point() and the
// end of every runtime section to preempt_now(), which tells the two apart (preemption.cpp, Q1-Q4).
inline constexpr std::uint32_t kPreemptNow = 1;           // act at the next preemption point
inline constexpr std::uint32_t kPreemptAtQuantumEnd = 2;  // a task waits: act from quantum_end_ns on

// Something the poll point checks when its bit is set (I/O completions, core revocation). Runs on the
// processor's driving thread inside a runtime section; must not block.
class PollSource {
 public:
  virtual ~PollSource() = default;
  virtual void poll(struct Processor& p, std::uint64_t now) noexcept = 0;
  // The preemption watcher (the ticker or a dispatcher thread): true if this source holds work for its
  // processor that only the processor's poll point delivers, and the running task has kept the processor
  // from its poll point for at least `stall_ns` (tickless preemption then acts as if a task waited). If
  // not, *look_again gets when to ask next. Any thread; no system call on the hot side of the answer.
  virtual bool waits_behind_task(std::uint64_t now, std::uint64_t stall_ns, std::uint64_t* look_again) noexcept {
    (void)now, (void)stall_ns, (void)look_again;
    return false;
  }
};

struct alignas(64) Processor {
  Processor(RuntimeCore* rt, Policy* policy, int index, int core) : rt(rt), policy(policy), index(index), core(core) {
    timers.set_poll_word(&poll_bits, kPollTimers);
  }

  // ---- set at construction, read-only afterwards ----
  RuntimeCore* const rt;
  Policy* const policy;              // rt->policy, one load closer on the switch path
  const int index;                   // the policy's worker index; -1 for a thread's detached stand-in
  const int core;

  // ---- the driving thread only (and tasks running on it) ----
  Task* current = nullptr;           // the running task, nullptr while in the loop
  Task* switch_prev = nullptr;       // the task being switched away from, until finish_switch
  int* errno_slot = nullptr;         // the driving thread's errno (KThread::errno_slot, copied on attach)
  EhGlobals* eh_slot = nullptr;      // the driving thread's C++ exception globals (copied on attach)
  Task* pending_next = nullptr;      // picked, but still switching out elsewhere: the loop dispatches it
  bool policy_inited = false;        // Policy::init_worker ran (on the first thread that drove it)
  std::uint64_t next_id = 0, end_id = 0;  // this processor's block of task ids

  // ---- stats: written by the driving thread only ----
  OwnerCounter tasks_run, switches, steals, parks, idle_ns, spawned, exited;
  OwnerCounter preempt_checks;    // quantum expiries honoured (the policy's tick was asked)
  OwnerCounter preemptions;       // ... of which the policy preempted the task
  OwnerCounter preempt_deferred;  // interrupts that found the task unpreemptible (deferred or retried)
  OwnerCounter handoffs;          // times this processor moved to another kernel thread
  OwnerCounter escapes;           // of those, by the handler of a task stuck in unpreemptible code (H6)

  // ---- preemption (the per-task disable count lives in Task::preempt_off) ----
  bool preempt_hooks = false;     // a mechanism other than "none" runs (read-only after start)
  bool track_run_start = false;   // the mechanism needs run_start_ns (read-only after start)
  std::uint64_t min_run_ns = 0;   // a run younger than this ignores a request (it was meant for the previous one)
  // Nonzero: the processor times its own quantum (preemption.cpp Q1-Q4; the flag mechanism): each run's
  // quantum_end_ns is its dispatch time plus this, and kPreemptAtQuantumEnd requests wait for it.
  std::uint64_t self_quantum_ns = 0;
  std::uint64_t quantum_end_ns = 0;  // the driving thread: when the running task's quantum ends (Q2)

  // ---- shared: timers are armed by tasks here, cancelled from anywhere, fired by whoever polls ----
  TimerHeap timers;
  PollSource* io = nullptr;       // the I/O layer's poller (kPollIo), set before the processor runs
  PollSource* revoke = nullptr;   // the multi-app layer's revocation check (kPollRevoke)
  // Where preemption requests for this processor are raised and cleared, and what its driving thread's
  // skyloft_preempt_word points at: preempt_flag below, or under a daemon the core's shared word that other
  // apps may raise too (app_core.hpp O6). Set before the processor runs.
  std::atomic<std::uint32_t>* preempt_word = &preempt_flag;
  AppCore* app = nullptr;         // under a daemon: this core's share of the Single Binding Rule (app_core.hpp);
                                  // nullptr when standalone. Set before the processor runs; hot paths
                                  // read it through shared_core() (below).

  // ---- remote: written by other threads; own cache line ----
  alignas(64) std::atomic<std::uint32_t> preempt_flag{0};  // set by mechanisms, read by preempt_point()
                                                           // (standalone: always through preempt_word)
  std::atomic<std::uint32_t> poll_bits{0};     // kPoll*: set by arming parties, cleared by the poller
  std::atomic<std::uint64_t> run_start_ns{0};  // when the running task was dispatched; 0 while idle
  std::atomic<std::uint64_t> run_seq{0};       // dispatch counter (driver writes; ticker and sysmon read)
  alignas(64) ParkWord park;            // wakers unpark it; the driving thread parks on it
  std::atomic<bool> idle{false};        // driver writes; policies read (is_idle)
  std::atomic<bool> parked_forever{false};  // parked with no timer armed; read by shutdown
  std::atomic<bool> stalled{false};     // the monitor writes (sysmon.cpp W2); placement reads (is_stalled)
  // The kernel thread driving this processor (hand-off protocol in handoff.cpp; sysmon and mechanisms read).
  std::atomic<KThread*> kthread{nullptr};
  // Who owns the processor and how: (kthread serial << 8) | kOwn* (handoff.hpp). Written with CAS only.
  std::atomic<std::uint64_t> own_word{0};
  std::atomic<std::uint64_t> blocking_since{0};  // now_ns() when a BlockingSection began (sysmon reads)
  std::atomic<std::uint64_t> io_nudges{0};  // other processors' I/O nudges of this one's thread (they add)
};

extern "C" __thread Processor* sky_tl_proc __attribute__((tls_model("initial-exec")));

// The processor of this thread, or nullptr. One TLS load in inline asm: opaque to the optimizer, so a
// value read before a context switch (when the task may move to another processor) is never reused after
// it, and cheap enough for the switch path.
inline Processor* this_proc() noexcept {
  Processor* p;
  asm volatile("movq sky_tl_proc@gottpoff(%%rip), %0\n\tmovq %%fs:(%0), %0" : "=r"(p));
  return p;
}
inline void set_this_proc(Processor* p) noexcept { sky_tl_proc = p; }

// The processor's share of a core under a daemon, or nullptr when standalone; a constant nullptr in a
// build without the multi-app layer, so every branch on it is compiled out.
inline AppCore* shared_core(const Processor* p) noexcept {
  if constexpr (kMultiApp) return p->app;
  else return nullptr;
}

}  // namespace skyloft
