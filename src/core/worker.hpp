// worker.hpp - a worker: one kernel thread pinned to one managed core, running tasks.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <thread>

#include "arch/context.hpp"
#include "core/park.hpp"
#include "core/spinlock.hpp"
#include "core/timer_heap.hpp"
#include "skyloft/stats.hpp"

namespace skyloft {

class Policy;
class Task;
struct RuntimeCore;

// A counter with a single writer (the owning worker) and any number of racy readers (stats()).
class OwnerCounter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

struct alignas(64) Worker {
  Worker(RuntimeCore& rt, Policy* policy, int index, int core) : rt(rt), policy(policy), index(index), core(core) {}

  // ---- set at construction, read-only afterwards ----
  RuntimeCore& rt;
  Policy* const policy;              // rt.policy, one load closer on the switch path
  const int index;
  const int core;

  // ---- owner-only: touched by this worker's thread (and by tasks running on it) ----
  Task* current = nullptr;           // the running task, nullptr while in the loop
  Task* switch_prev = nullptr;       // the task being switched away from, until finish_switch
  int* errno_slot = nullptr;         // this thread's errno (set when the loop starts)
  std::uint64_t next_id = 0, end_id = 0;  // this worker's block of task ids
  arch::ExecContext loop_ctx;        // the worker loop on the thread's own stack
  std::thread thread;
  pid_t tid = 0;

  // ---- stats: written by the owner only ----
  OwnerCounter tasks_run, switches, steals, parks, idle_ns, spawned, exited;
  OwnerCounter preempt_checks;    // quantum expiries honoured (the policy's tick was asked)
  OwnerCounter preemptions;       // ... of which the policy preempted the task
  OwnerCounter preempt_deferred;  // interrupts that found the task unpreemptible (deferred or retried)

  // ---- preemption (the per-task disable count lives in Task::preempt_off) ----
  bool preempt_hooks = false;     // a mechanism other than "none" runs (read-only after start)
  bool track_run_start = false;   // the mechanism's scan() needs run_start_ns (read-only after start)
  std::uint64_t min_run_ns = 0;   // a run younger than this ignores a request (it was meant for the previous one)
  void* timer = nullptr;          // the per-worker POSIX timer (timer mechanism); 0 is a valid id
  bool has_timer = false;         // protected by timer_lock
  SpinLock timer_lock;            // serialises arming and disarming it
  std::atomic<bool> timer_armed{false};

  // ---- shared: timers are armed by tasks here, cancelled from anywhere (own lock) ----
  TimerHeap timers;

  // ---- remote: written by other threads; own cache line ----
  alignas(64) std::atomic<std::uint32_t> preempt_flag{0};  // set by mechanisms, read by preempt_point()
  std::atomic<std::uint64_t> run_start_ns{0};  // when the running task was dispatched; 0 while idle
  std::atomic<std::uint64_t> run_seq{0};       // dispatch counter, tells the ticker a new run began
  alignas(64) ParkWord park;            // wakers unpark it
  std::atomic<bool> idle{false};        // owner writes; policies read (is_idle)
  std::atomic<bool> parked_forever{false};  // parked with no timer armed; read by shutdown
};

extern "C" __thread Worker* sky_tl_worker __attribute__((tls_model("initial-exec")));

// The worker running on this thread, or nullptr. One TLS load in inline asm: opaque to the optimizer, so a
// value read before a context switch (when the task may move to another worker) is never reused after it,
// and cheap enough for the switch path.
inline Worker* this_worker() noexcept {
  Worker* w;
  asm volatile("movq sky_tl_worker@gottpoff(%%rip), %0\n\tmovq %%fs:(%0), %0" : "=r"(w));
  return w;
}
inline void set_this_worker(Worker* w) noexcept { sky_tl_worker = w; }

}  // namespace skyloft
