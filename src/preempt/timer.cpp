// timer.cpp - "timer": a POSIX per-thread timer per processor (timer_create, SIGEV_THREAD_ID). Each expiry
// signals the processor's thread, whose handler redirects the task to the trampoline; the core then passes
// the poll point and asks the policy's tick.
//
// Tickless: a timer interrupt costs the core ~18 us on a VM, so the timer runs only while needed:
//   periodic (every quantum)  while another task waits for the processor's core;
//   one-shot (at a deadline)  while nobody waits but a timer (a sleep, a timeout) is armed on the processor
//                             and it runs a task: the expiry makes the poll point fire that timer;
//   off                       otherwise.
// The processor's thread re-decides at each dispatch; any thread arms the periodic timer through
// task_waiting() when it queues work behind a running task; going idle disarms. Timer state is per
// processor (this file's ProcTimer), and the timer follows the processor to another thread on a hand-off
// (thread_attached re-creates it for the new thread id).
//
// Quick retry: a second one-shot timer per processor, armed only by the signal handler on the processor's
// thread after an unsafe-PC deferral (signal.cpp, "Deferral and quick retry"): the periodic timer keeps its
// phase, and the retry lands a jittered fraction of a quantum later. timer_settime is async-signal-safe; the
// retry timer is created and deleted by the same thread with the signal blocked, so a handler never arms a
// deleted timer.
#include <signal.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>

#include "core/fatal.hpp"
#include "core/kthread.hpp"
#include "core/runtime_core.hpp"
#include "core/spinlock.hpp"
#include "preempt/mechanism.hpp"

namespace skyloft {
namespace {

enum class TimerMode : std::uint8_t { off, periodic, oneshot };

struct alignas(64) ProcTimer {
  SpinLock lock;                  // serialises create/delete/settime
  timer_t id{};                   // protected by lock
  bool exists = false;            // protected by lock
  std::uint64_t oneshot_at = 0;   // protected by lock: the deadline of the one-shot expiry
  std::atomic<TimerMode> mode{TimerMode::off};  // written under lock; read without it as a hint
  timer_t retry_id{};             // the quick-retry one-shot: the processor's thread only
  bool retry_exists = false;      // the processor's thread only (created/deleted with the signal blocked)
  volatile bool retry_armed = false;  // the processor's thread (its handler sets, dispatch clears)
};

class TimerMechanism final : public PreemptMechanism {
 public:
  explicit TimerMechanism(std::uint32_t quantum_us) : quantum_ns_(std::uint64_t{quantum_us} * 1000) {}

  void start(RuntimeCore& rt) override {
    timers_ = std::make_unique<ProcTimer[]>(rt.procs.size());
    set_unsafe_deferral_hook(&TimerMechanism::retry_soon, this);
  }
  void stop() override { set_unsafe_deferral_hook(nullptr, nullptr); }

  void thread_attached(Processor& p) override {
    ProcTimer& pt = of(p);
    sigevent sev;
    std::memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = preempt_signal();
    sev.sigev_value.sival_ptr = preempt_signal_token();
    sev._sigev_un._tid = p.kthread.load(std::memory_order_relaxed)->tid;
    timer_t id, retry_id;
    if (timer_create(CLOCK_MONOTONIC, &sev, &id) != 0 || timer_create(CLOCK_MONOTONIC, &sev, &retry_id) != 0) {
      sky_fatal("timer_create for worker %d failed: %s", p.index, std::strerror(errno));
    }
    {
      SignalBlocked blocked;
      pt.retry_id = retry_id;
      pt.retry_exists = true;
    }
    std::lock_guard<SpinLock> guard(pt.lock);
    if (pt.exists) timer_delete(pt.id);  // it signalled the processor's previous thread
    pt.id = id;
    pt.exists = true;
    pt.mode.store(TimerMode::off, std::memory_order_relaxed);
  }

  void thread_detached(Processor& p) override {
    ProcTimer& pt = of(p);
    {
      SignalBlocked blocked;
      if (pt.retry_exists) timer_delete(pt.retry_id);
      pt.retry_exists = false;
    }
    std::lock_guard<SpinLock> guard(pt.lock);
    if (pt.exists) timer_delete(pt.id);
    pt.exists = false;
    pt.mode.store(TimerMode::off, std::memory_order_relaxed);
  }

  // Arming races with task_waiting() on other threads (Dekker): the disarming thread re-checks for waiting
  // tasks after a fence, and task_waiting() fences between queueing the task and reading the mode, so one
  // of them sees the other.
  void on_dispatch(Processor& p) override {
    disarm_retry(p);
    if (p.policy->nr_waiting(p.index) > 0) return set(p, TimerMode::periodic, 0);
    const std::uint64_t due = p.timers.earliest();
    set(p, due == UINT64_MAX ? TimerMode::off : TimerMode::oneshot, due);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (p.policy->nr_waiting(p.index) > 0) set(p, TimerMode::periodic, 0);
  }
  void on_idle(Processor& p) override {
    disarm_retry(p);
    if (of(p).mode.load(std::memory_order_relaxed) != TimerMode::off) set(p, TimerMode::off, 0);
  }
  void task_waiting(Processor& p) override {
    // An idle processor picks the task up itself (and arms at dispatch if others still wait); arming its
    // timer now would only interrupt its sleep.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (of(p).mode.load(std::memory_order_relaxed) != TimerMode::periodic &&
        p.run_start_ns.load(std::memory_order_relaxed) != 0) {
      set(p, TimerMode::periodic, 0);
    }
  }
  // timer_armed comes only while others wait for p: the periodic timer, armed at the next dispatch at the
  // latest, passes the poll point every quantum.
  bool tracks_run_start() const noexcept override { return true; }  // "is it running a task?"

  const char* name() const noexcept override { return "timer"; }

 private:
  ProcTimer& of(Processor& p) noexcept { return timers_[static_cast<std::size_t>(p.index)]; }

  // Blocks the preemption signal on this thread for the scope (the retry timer's create/delete).
  struct SignalBlocked {
    sigset_t old;
    SignalBlocked() noexcept {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, preempt_signal());
      sigprocmask(SIG_BLOCK, &set, &old);
    }
    ~SignalBlocked() { sigprocmask(SIG_SETMASK, &old, nullptr); }
  };

  // The unsafe-deferral hook: runs in the signal handler on p's thread.
  static void retry_soon(Processor& p, void* self) noexcept {
    auto* m = static_cast<TimerMechanism*>(self);
    ProcTimer& pt = m->of(p);
    if (!pt.retry_exists) return;
    const std::uint64_t delay = quick_retry_delay_ns(m->quantum_ns_);
    itimerspec spec;
    std::memset(&spec, 0, sizeof spec);
    spec.it_value.tv_sec = static_cast<time_t>(delay / 1'000'000'000ull);
    spec.it_value.tv_nsec = static_cast<long>(delay % 1'000'000'000ull);
    timer_settime(pt.retry_id, 0, &spec, nullptr);
    pt.retry_armed = true;
  }

  // A quick retry meant for the previous run must not cut the next one short.
  void disarm_retry(Processor& p) noexcept {
    ProcTimer& pt = of(p);
    if (!pt.retry_armed) return;
    pt.retry_armed = false;
    itimerspec off;
    std::memset(&off, 0, sizeof off);
    if (pt.retry_exists) timer_settime(pt.retry_id, 0, &off, nullptr);
  }

  void set(Processor& p, TimerMode mode, std::uint64_t deadline) noexcept {
    ProcTimer& pt = of(p);
    if (pt.mode.load(std::memory_order_relaxed) == mode && mode != TimerMode::oneshot) return;
    std::lock_guard<SpinLock> guard(pt.lock);
    if (!pt.exists) return;
    if (pt.mode.load(std::memory_order_relaxed) == mode && (mode != TimerMode::oneshot || pt.oneshot_at == deadline)) {
      return;
    }
    itimerspec spec;
    std::memset(&spec, 0, sizeof spec);
    int flags = 0;
    if (mode == TimerMode::periodic) {
      spec.it_value.tv_sec = static_cast<time_t>(quantum_ns_ / 1'000'000'000ull);
      spec.it_value.tv_nsec = static_cast<long>(quantum_ns_ % 1'000'000'000ull);
      spec.it_interval = spec.it_value;
    } else if (mode == TimerMode::oneshot) {
      // now_ns() is CLOCK_MONOTONIC-based (clock.cpp): an absolute expiry at the timer's deadline.
      spec.it_value.tv_sec = static_cast<time_t>(deadline / 1'000'000'000ull);
      spec.it_value.tv_nsec = static_cast<long>(deadline % 1'000'000'000ull);
      flags = TIMER_ABSTIME;
      pt.oneshot_at = deadline;
    }
    timer_settime(pt.id, flags, &spec, nullptr);
    pt.mode.store(mode, std::memory_order_seq_cst);
  }

  const std::uint64_t quantum_ns_;
  std::unique_ptr<ProcTimer[]> timers_;
};

}  // namespace

std::unique_ptr<PreemptMechanism> make_timer_mechanism(std::uint32_t quantum_us) {
  return std::make_unique<TimerMechanism>(quantum_us);
}

}  // namespace skyloft
