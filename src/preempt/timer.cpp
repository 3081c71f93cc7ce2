// timer.cpp - "timer": a POSIX per-thread timer per worker (timer_create, SIGEV_THREAD_ID). Each expiry
// signals the worker, whose handler redirects the task to the trampoline, where the policy's tick decides.
//
// Tickless: a timer interrupt costs the core ~18 us on a VM, so the timer runs only while another task
// waits for the worker's core. The worker arms it when it dispatches a task with others waiting, any thread
// arms it through task_waiting() when it queues work behind a running task, and the worker disarms it when
// it dispatches with nobody waiting or goes idle. Arming and disarming are the only syscalls, and happen
// only on those transitions.
#include <signal.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "core/fatal.hpp"
#include "core/runtime_core.hpp"
#include "preempt/mechanism.hpp"

namespace skyloft {
namespace {

class TimerMechanism final : public PreemptMechanism {
 public:
  explicit TimerMechanism(std::uint32_t quantum_us) : quantum_ns_(std::uint64_t{quantum_us} * 1000) {}

  void worker_started(Worker& w) override {
    sigevent sev;
    std::memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = preempt_signal();
    sev._sigev_un._tid = w.tid;
    timer_t id;
    if (timer_create(CLOCK_MONOTONIC, &sev, &id) != 0) {
      sky_fatal("timer_create for worker %d failed: %s", w.index, std::strerror(errno));
    }
    std::lock_guard<SpinLock> guard(w.timer_lock);
    w.timer = id;
    w.has_timer = true;
  }

  void worker_stopping(Worker& w) override {
    std::lock_guard<SpinLock> guard(w.timer_lock);
    if (w.has_timer) timer_delete(static_cast<timer_t>(w.timer));
    w.has_timer = false;
    w.timer_armed.store(false, std::memory_order_relaxed);
  }

  // Arming races with task_waiting() on other threads (Dekker): the disarming worker re-checks for waiting
  // tasks after a fence, and task_waiting() fences between queueing the task and reading timer_armed, so
  // one of them sees the other.
  void on_dispatch(Worker& w) override {
    if (w.policy->nr_waiting(w.index) > 0) return set_armed(w, true);
    set_armed(w, false);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (w.policy->nr_waiting(w.index) > 0) set_armed(w, true);
  }
  void on_idle(Worker& w) override {
    if (w.timer_armed.load(std::memory_order_relaxed)) set_armed(w, false);
  }
  void task_waiting(Worker& w) override {
    // An idle worker picks the task up itself (and arms at dispatch if others still wait); arming its
    // timer now would only interrupt its sleep.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!w.timer_armed.load(std::memory_order_relaxed) && w.run_start_ns.load(std::memory_order_relaxed) != 0) {
      set_armed(w, true);
    }
  }
  bool tracks_run_start() const noexcept override { return true; }  // "is it running a task?"

  const char* name() const noexcept override { return "timer"; }

 private:
  void set_armed(Worker& w, bool on) noexcept {
    if (w.timer_armed.load(std::memory_order_relaxed) == on) return;
    std::lock_guard<SpinLock> guard(w.timer_lock);
    if (!w.has_timer || w.timer_armed.load(std::memory_order_relaxed) == on) return;
    itimerspec spec;
    std::memset(&spec, 0, sizeof spec);
    if (on) {
      spec.it_value.tv_sec = static_cast<time_t>(quantum_ns_ / 1'000'000'000ull);
      spec.it_value.tv_nsec = static_cast<long>(quantum_ns_ % 1'000'000'000ull);
      spec.it_interval = spec.it_value;
    }
    timer_settime(static_cast<timer_t>(w.timer), 0, &spec, nullptr);
    w.timer_armed.store(on, std::memory_order_seq_cst);
  }

  const std::uint64_t quantum_ns_;
};

}  // namespace

std::unique_ptr<PreemptMechanism> make_timer_mechanism(std::uint32_t quantum_us) {
  return std::make_unique<TimerMechanism>(quantum_us);
}

}  // namespace skyloft
