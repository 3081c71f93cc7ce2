// preemption.cpp - the switch-path half of preemption: acting on a request, the trampoline's entry,
// preempt points, disable/enable, and the dispatch/idle hooks that keep a mechanism's tickless state.
//
// How a request becomes a switch (the mechanisms in src/preempt/ only deliver requests):
//   1. A mechanism raises the processor's preempt_word, and for asynchronous preemption its signal handler
//      redirects the interrupted task to sky_preempt_trampoline (src/arch/), which saves every register
//      and calls sky_preempt_entry() on the task's stack, with preempt_off set to 1 by the handler.
//   2. Cooperative paths reach the same place: preempt_point() and the end of every runtime section
//      (RuntimeSection::leave) call preempt_now() when the flag is up.
//   3. preempt_now() clears the flag, passes the poll point (so a timer due on a busy processor fires and
//      its task competes for the core), ignores requests meant for the previous run, asks the policy's
//      tick, and yields if it says so.
// Self-timed quanta (a mechanism whose self_timed_quantum_ns() is nonzero: flag). No thread watches the
// runs (a ticker woken for every task queued behind a run took 12-25% of the machine from the very workers
// it served, at a 30 us quantum); a processor whose core a task waits for reads its own clock:
//   Q1. Arming: whoever sees a task waiting behind a run raises the word from 0 to kPreemptAtQuantumEnd
//       (arm_quantum_end, a CAS: it never lowers a kPreemptNow): the queuer that saw the run (ticker.cpp
//       T1/T3), the processor at a dispatch that leaves tasks waiting, and Q4.
//   Q2. While now_ns() < quantum_end_ns (the run's dispatch time plus self_quantum_ns), preempt_now()
//       returns at once and leaves the word up. So while a task waits, each preempt point of the run
//       takes the slow path and reads the clock (~20 ns on the development VM, where a loop with a point
//       every 0.4 ns of work ran at 3% of its speed); no thread is woken.
//   Q3. Due, but nobody waits any more (the waiter was stolen, or an arm raced with a dispatch): no tick.
//   Q4. A request that did not preempt (the policy's tick said no, a young run) re-arms if tasks still
//       wait, the tick then due a quantum later: the policy is asked every quantum, as by a watcher.
#include <errno.h>

#include <atomic>
#include <cstdint>

#include "core/app_core.hpp"
#include "core/processor.hpp"
#include "core/runtime_core.hpp"
#include "core/scheduler.hpp"
#include "skyloft/preempt.hpp"
#include "skyloft/time.hpp"

namespace skyloft {

namespace {
std::uint32_t g_zero_word = 0;  // the preemption word of threads that drive no processor: never raised
}  // namespace

namespace detail {
extern "C" {
__thread std::uint32_t* skyloft_preempt_word __attribute__((tls_model("initial-exec"))) = &g_zero_word;
}
void reset_preempt_word() noexcept { skyloft_preempt_word = &g_zero_word; }
}  // namespace detail

namespace {
bool lending(const Processor* p) noexcept {
  const AppCore* ac = shared_core(p);
  return ac != nullptr && ac->lending();
}

// __errno_location() through a pointer the compiler cannot see through: a direct call is `const` to it, so
// its result could be reused across a switch, and after a migration that is the previous worker's errno.
int* (*volatile g_errno_location)() = &__errno_location;

// Q2: the running task's quantum starts at `now`.
void start_quantum(Processor* p, std::uint64_t now) noexcept { p->quantum_end_ns = now + p->self_quantum_ns; }

bool tasks_wait(const Processor* p) noexcept { return p->policy->nr_waiting(p->index) > 0; }

// Q4: a self-timed processor that keeps its task while others wait asks again at quantum_end_ns.
void rearm_if_tasks_wait(Processor* p) noexcept {
  if (p->self_quantum_ns != 0 && tasks_wait(p)) arm_quantum_end(*p);
}

// preempt_now's work, errno aside.
void act_on_request(Processor* p) noexcept {
  Task* cur = p->current;
  if (__builtin_expect(p->index < 0, 0)) {  // a stand-in: this thread lost its processor (handoff.cpp)
    if (cur != nullptr) reacquire_processor(p, cur);
    return;
  }
  const std::uint32_t request = p->preempt_word->load(std::memory_order_relaxed);
  p->preempt_word->store(0, std::memory_order_relaxed);
  if (cur == nullptr) return;
  sched_poll(p);
  if (request == kPreemptAtQuantumEnd && !tasks_wait(p) && !lending(p)) return;  // Q3
  // A request that raced with a dispatch (a periodic timer's phase, a ticker that read the previous run)
  // must not cost the new run its quantum before it has even reached its own code.
  // A core lent to another app (app_core.hpp O3d) is given at once, however young the run.
  const std::uint64_t now = p->track_run_start ? now_ns() : 0;
  if (p->track_run_start && now - p->run_start_ns.load(std::memory_order_relaxed) < p->min_run_ns && !lending(p)) {
    rearm_if_tasks_wait(p);  // Q4 (its quantum_end_ns still ahead)
    return;
  }
  p->preempt_checks.add();
  if (!p->policy->tick(p->index, cur)) {
    start_quantum(p, now);  // Q4
    rearm_if_tasks_wait(p);
    return;
  }
  p->preemptions.add();
  task_yield_locked(p, cur);
}

// Q2: a request for the end of a quantum that is still running.
bool quantum_still_running(const Processor* p) noexcept {
  return p->preempt_word->load(std::memory_order_relaxed) == kPreemptAtQuantumEnd && now_ns() < p->quantum_end_ns;
}
}  // namespace

void arm_quantum_end(Processor& p) noexcept {
  std::atomic<std::uint32_t>& word = *p.preempt_word;
  std::uint32_t idle = 0;
  if (word.load(std::memory_order_relaxed) == 0) {  // Q1: one load while it is armed already
    word.compare_exchange_strong(idle, kPreemptAtQuantumEnd, std::memory_order_relaxed);
  }
}

int task_errno() noexcept {
  RuntimeSection section;  // the address and the load on one worker
  return *g_errno_location();
}

void set_task_errno(int value) noexcept {
  RuntimeSection section;
  *g_errno_location() = value;
}

// Acts on a preemption request. Called on the task's stack inside a runtime section (depth 1). The task
// was interrupted anywhere (between a failed libc call and its errno read, say), and the poll point and the
// policy make system calls: errno is put back as it was, on whichever worker the task resumes.
void preempt_now(Processor* p) noexcept {
  if (quantum_still_running(p)) return;  // Q2, before anything else: every preempt point pays it then
  const int saved_errno = *g_errno_location();
  act_on_request(p);
  *g_errno_location() = saved_errno;
}

extern "C" __attribute__((visibility("hidden"))) void sky_preempt_entry() {
  Task* t = current_task();  // the handler set t->preempt_off to 1, so the task stays put until below
  preempt_now(this_proc());
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t->preempt_off.store(0, std::memory_order_relaxed);
}

namespace detail {
void preempt_point_slow() noexcept {
  Task* t = current_task();
  if (t == nullptr || t->preempt_off.load(std::memory_order_relaxed) != 0) return;
  RuntimeSection::enter(t);
  RuntimeSection::leave(t);  // honours the flag
}
}  // namespace detail

void preempt_disable() noexcept {
  if (Task* t = current_task()) RuntimeSection::enter(t);
}

void preempt_enable() noexcept {
  Task* t = current_task();
  if (t != nullptr && t->preempt_off.load(std::memory_order_relaxed) != 0) RuntimeSection::leave(t);
}

void preempt_on_dispatch(Processor* p) noexcept {
  p->preempt_word->store(0, std::memory_order_relaxed);  // a request for the previous run is stale now
  if (p->track_run_start) {
    p->run_seq.store(p->run_seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    const std::uint64_t now = now_ns();
    start_quantum(p, now);
    p->run_start_ns.store(now, std::memory_order_release);
  }
  p->rt->preempt->on_dispatch(*p);
}

void preempt_on_idle(Processor* p) noexcept {
  if (p->track_run_start) p->run_start_ns.store(0, std::memory_order_release);
  p->rt->preempt->on_idle(*p);
}

}  // namespace skyloft
