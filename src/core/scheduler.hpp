// scheduler.hpp (internal) - the switch path: the poll point, picking, dispatching, parking and unparking
// tasks, runtime sections.
#pragma once

#include "core/policy_check.hpp"
#include "core/processor.hpp"
#include "core/runtime_core.hpp"
#include "core/spinlock.hpp"
#include "core/task.hpp"
#include "core/task_tls.hpp"
#include "skyloft/preempt.hpp"
#include "skyloft/time.hpp"

namespace skyloft {

// The poll point: every scheduling decision of a processor passes here, on the task-to-task path (yield,
// block, exit, preemption) as well as in the idle loop. It fires due timers, reaps I/O completions and
// checks core revocation; with nothing pending it costs one load and a branch (Processor::poll_bits).
// Driving thread only.
inline void sched_poll(Processor* p) noexcept;
void sched_poll_slow(Processor* p, std::uint32_t bits) noexcept;
// The poll point, then the policy's pick_next. Driving thread only.
inline Task* proc_pick(Processor* p);
// Makes `next` the running task of `p`. Driving thread only. Returns false when `next` is still switching
// out on another thread (see scheduler.cpp: the caller then goes through its loop context).
inline bool proc_dispatch(Processor* p, Task* next) noexcept;
// Runs after every switch, in the resumed context: `transfer` is the switching processor (the one whose
// thread we now run on); releases the task it switched away from (Processor::switch_prev) and restores the
// resumed task's errno.
void finish_switch(void* transfer) noexcept;

// Parks the current task until task_unpark() (a pending unpark makes it return at once). Must be called
// from a task inside a runtime section. Returns after being woken; wake-ups may be spurious, so callers
// loop on their condition.
void task_park(WaitReason reason) noexcept;
// Makes a parked task runnable (or leaves a permit if it has not parked yet). Any thread.
void task_unpark(Task* task) noexcept;

// Frees an exited task's stack once it has fully switched out. `p`: the caller's processor or nullptr.
void task_free(Task* task, Processor* p) noexcept;

// Puts the running task `cur` back through policy->yield() and switches to the next one. Runtime section.
// Returns the processor `cur` runs on when it resumes.
Processor* task_yield_locked(Processor* p, Task* cur) noexcept;
// Ends the current task without unwinding its stack (pthread_exit from C frames; the unwinding exit is
// this_task::exit()). Runtime section not required.
[[noreturn]] void task_exit_now() noexcept;

// Acts on a preemption request on `p`'s running task (the poll point, then the policy's tick, maybe a
// yield). Runtime section (core/preemption.cpp).
void preempt_now(Processor* p) noexcept;
// Asks `p`, a processor that times its own quantum, to preempt its running task once the task's quantum
// ends: raises its word from 0 to kPreemptAtQuantumEnd (preemption.cpp Q1). Any thread; no system call.
void arm_quantum_end(Processor& p) noexcept;
// The mechanism hooks of the switch path (only called when Processor::preempt_hooks is set).
void preempt_on_dispatch(Processor* p) noexcept;
void preempt_on_idle(Processor* p) noexcept;
// `p` is a thread's stand-in (its processor was handed to a spare): gives the current task back to the
// scheduler and returns the processor it resumes on (handoff.cpp). Runtime section.
Processor* reacquire_processor(Processor* standin, Task* cur) noexcept;

namespace detail {
// Points this thread's preemption word at a word that is never raised (a thread that drives no processor).
void reset_preempt_word() noexcept;
}  // namespace detail

// The task running on this thread (one TLS load, so a signal cannot split it), or nullptr.
extern "C" __thread Task* sky_tl_current __attribute__((tls_model("initial-exec")));
inline Task* current_task() noexcept {
  Task* t;
  asm volatile("movq sky_tl_current@gottpoff(%%rip), %0\n\tmovq %%fs:(%0), %0" : "=r"(t));
  return t;
}

// A region of runtime code in a task: preemption is off inside (the task may hold runtime spinlocks or
// owner-only processor state), and a preemption requested meanwhile is honoured when the outermost region
// ends. The depth belongs to the task (Task::preempt_off) and may span switches. No-op on plain threads
// and in thread loops.
class RuntimeSection {
 public:
  RuntimeSection() noexcept : task_(current_task()) {
    if (task_ != nullptr) enter(task_);
  }
  ~RuntimeSection() {
    if (task_ != nullptr) leave(task_);
  }
  RuntimeSection(const RuntimeSection&) = delete;
  RuntimeSection& operator=(const RuntimeSection&) = delete;

  static void enter(Task* t) noexcept {
    t->preempt_off.store(t->preempt_off.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  static void leave(Task* t) noexcept;

 private:
  Task* task_;
};

// errno as the caller sees it now, for runtime code in a task. Without per-task TLS errno is the worker
// thread's, and a task preempted between __errno_location() (which glibc declares const, so a compiler may
// also reuse an address taken before a switch) and the access, then resumed on another worker, would touch
// that worker's errno: another task's (a failed recv whose errno reads as 0 looks like the end of a
// stream). Both take the address afresh and access it with preemption off. Plain threads: plain errno.
int task_errno() noexcept;
void set_task_errno(int value) noexcept;

// The processor a task in a runtime section runs on. With the depth held the task cannot be preempted, so
// the value stays valid until the task switches. A thread that lost its processor (hand-off) sees its
// stand-in, whose index is -1: the task is handed back to the scheduler first.
inline Processor* proc_in_section(Task* t) noexcept {
  Processor* p = this_proc();
  if (__builtin_expect(p->index < 0, 0)) p = reacquire_processor(p, t);
  return p;
}

// ---- inline definitions (the switch path) ----

// Every context switch of the runtime goes through here: with per-task TLS the incoming context's block
// first gets the thread's runtime thread-locals and the FS base (task_tls.hpp T3). `incoming` is the task
// `to` runs, nullptr for a thread's loop.
inline void* switch_into(arch::ExecContext& from, arch::ExecContext& to, Processor* p, Task* incoming,
                         bool from_exits = false) noexcept {
  if (__builtin_expect(to.tls_tp != nullptr, 0)) {
    task_tls_enter(to.tls_tp, incoming, p->kthread.load(std::memory_order_relaxed));
  }
  return arch::switch_context(from, to, p, from_exits);
}

inline void sched_poll(Processor* p) noexcept {
  std::uint32_t bits = p->poll_bits.load(std::memory_order_relaxed);
  if (__builtin_expect(bits != 0, 0)) sched_poll_slow(p, bits);
}

inline Task* proc_pick(Processor* p) {
  sched_poll(p);
  return policy_took(p->policy->pick_next(p->index));
}

inline void RuntimeSection::leave(Task* t) noexcept {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  std::uint32_t depth = t->preempt_off.load(std::memory_order_relaxed);
  if (depth == 1) {  // outermost: with the count still held the task cannot move, so this_proc() is ours
    // The thread's preemption word is its processor's preempt_word (as many loads as this_proc()->...).
    if (detail::preempt_requested() != 0) preempt_now(this_proc());
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t->preempt_off.store(depth - 1, std::memory_order_relaxed);
}

inline bool proc_dispatch(Processor* p, Task* next) noexcept {
  // The task may have been woken and picked before its previous thread finished saving its registers.
  if (__builtin_expect(next->on_cpu.load(std::memory_order_acquire), 0)) return false;
  next->on_cpu.store(true, std::memory_order_relaxed);
  next->state.store(TaskState::running, std::memory_order_relaxed);
  next->sched.last_worker = p->index;
  p->current = next;
  sky_tl_current = next;
  p->tasks_run.add();
  if (p->preempt_hooks) preempt_on_dispatch(p);
  return true;
}

}  // namespace skyloft
