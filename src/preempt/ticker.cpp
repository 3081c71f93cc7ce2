// ticker.cpp - "dispatcher", "flag" and "hybrid": one thread watches every worker's running task and acts
// when a task overruns its quantum while another task waits for that core (tickless: nothing happens, and
// the thread sleeps, while no core is contended).
//   dispatcher  sends the worker a thread-directed signal (rt_tgsigqueueinfo); the handler redirects the
//               task to the trampoline. Re-sent every quantum while the same run continues (a deferred
//               request retries), and a jittered fraction of a quantum later when the handler found the
//               PC in libc (quick retry, signal.cpp): after each signal the ticker looks once more then.
//   flag        raises the worker's flag only: no signal ever. The task yields at its next preempt_point()
//               or runtime entry; code with neither is never preempted. The quantum's end is not watched
//               here (but under a centralized policy, whose dispatcher thread watches anyway): the queuer
//               of a task behind a run, or the processor at a dispatch that leaves tasks waiting, arms the
//               processor's word and the processor reads its own clock at its preempt points
//               (core/preemption.cpp Q1-Q4). The ticker still acts for timers and I/O behind a run.
//   hybrid      raises the flag first and signals only if the same run is still going, flag unconsumed,
//               after the grace period: cooperative code never pays for an interrupt, other code still
//               gets preempted.
// Who wakes the ticker (it is a real-time thread when it floats: each wake-up takes the CPU from whatever
// runs there, often the very worker that is about to run the queued task). T1 and T2 are not done for a
// self-timed processor (flag): it is armed instead, with T3's fence (arm_if_running, on_dispatch).
//   T1. A task queued on a processor that runs a task: the queuer wakes it (a task waits behind another).
//   T2. A task queued on an idle processor: the queuer only sets the processor's tell_at_dispatch flag; that
//       processor, at its next dispatch, wakes the ticker if tasks still wait for it (it picked another one
//       first). Waking the ticker on every such arrival cost two RT wake-ups per request, and delayed the
//       worker it preempted (core acquisition p99 ~110 us with no other app on the machine).
//   T4. flag: a look that finds the flag it raised still unconsumed raises nothing and backs off
//       (doubling, up to 64 quanta); a consumed flag is raised again at the next look.
//   I1. I/O behind a running task (io/poller.hpp R4): a processor that runs a task while operations are in
//       flight is looked at once its poll point is a look interval old; if its poller holds a deliverable
//       completion, the task is preempted as if a task waited (the poll point then wakes the reader). The
//       ticker keeps looking while such a processor runs, and a dispatch with I/O in flight unparks a
//       parked ticker (after the T3 fence, so a ticker that parked seeing every processor idle is woken).
//   T3. Dekker between the two: the queuer stores the flag, fences, reads run_start_ns; the processor stores
//       run_start_ns, fences, reads the flag. Either the queuer sees the dispatch (and wakes the ticker, T1)
//       or the processor sees the flag (and the queued task, which was queued before it).
//   T5. The ticker sleeps in two ways. Toward a mechanism deadline (a quantum's end, a retry, a look; a few
//       quanta at most) it sleeps in clock_nanosleep, which no wake-up shortens: a T1 for another processor
//       meanwhile waits for that deadline, and an RT ticker is not woken on every queued task. Toward a
//       timer's due time (a task's timer on a processor that runs another task: a condition variable's
//       deadline may be minutes away), a deadline over kMaxPreciseSleepNs, or none, it parks (with that
//       deadline), so T1, I1, timer_armed and stop() cut the sleep short. Sleeping toward a far timer in
//       clock_nanosleep left a task queued behind a spinner waiting for that timer, and shutdown with it.
// The thread is pinned to Config::dispatcher_core when one is set (it then polls, for precise quanta, and
// runs the user pollers, pollers.hpp); otherwise it floats and sleeps until the next deadline. A
// centralized policy's dispatcher thread runs scan() itself instead of a separate thread.
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "core/kthread.hpp"
#include "core/park.hpp"
#include "core/runtime_core.hpp"
#include "core/scheduler.hpp"
#include "preempt/mechanism.hpp"
#include "skyloft/time.hpp"

namespace skyloft {
namespace {

class TickerMechanism final : public PreemptMechanism {
 public:
  enum class Mode { dispatcher, flag, hybrid };

  TickerMechanism(Mode mode, std::uint32_t quantum_us, std::uint32_t grace_us)
      : mode_(mode),
        quantum_ns_(std::uint64_t{quantum_us} * 1000),
        grace_ns_(std::uint64_t{grace_us} * 1000),
        io_look_ns_(std::max(quantum_ns_, kIoLookNs)) {}

  void start(RuntimeCore& rt) override {
    rt_ = &rt;
    state_ = std::make_unique<ProcScan[]>(rt.procs.size());
    tell_at_dispatch_ = std::make_unique<std::atomic<bool>[]>(rt.procs.size());
    if (rt.policy->needs_dispatcher()) return;  // the policy's dispatcher thread calls scan()
    if (rt.config.dispatcher_core >= 0) rt.pollers.attach(&park_);  // a core of its own: it runs the pollers
    thread_.start([](void* self) { static_cast<TickerMechanism*>(self)->loop(); }, this, "skyloft-tick");
  }

  void stop() override {
    stopping_.store(true, std::memory_order_release);
    park_.unpark();
    thread_.join();
  }

  // T1-T3 (top of file): a task queued behind a running one wakes the ticker; one queued on an idle
  // processor only asks that processor to wake it at its next dispatch, if tasks still wait there then.
  void task_waiting(Processor& p) override {
    if (p.self_quantum_ns != 0) return arm_if_running(p);
    if (p.run_start_ns.load(std::memory_order_acquire) != 0) return wake();  // T1
    tell_at_dispatch_[static_cast<std::size_t>(p.index)].store(true, std::memory_order_relaxed);  // T2
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (p.run_start_ns.load(std::memory_order_relaxed) != 0) wake();  // it dispatched meanwhile
  }
  void on_dispatch(Processor& p) override {
    std::atomic<bool>& tell = tell_at_dispatch_[static_cast<std::size_t>(p.index)];
    std::atomic_thread_fence(std::memory_order_seq_cst);  // T3: run_start_ns (stored) before the flag (read)
    if ((p.poll_bits.load(std::memory_order_relaxed) & kPollIo) != 0 && park_.parked()) park_.unpark();  // I1
    if (p.self_quantum_ns != 0) {
      if (p.policy->nr_waiting(p.index) > 0) arm_quantum_end(p);  // Q1: this run has a quantum to keep
      return;
    }
    if (!tell.load(std::memory_order_relaxed)) return;
    tell.store(false, std::memory_order_relaxed);
    if (p.policy->nr_waiting(p.index) > 0) wake();
  }
  void timer_armed(Processor&, std::uint64_t) override { wake(); }

  bool tracks_run_start() const noexcept override { return true; }
  std::uint64_t self_timed_quantum_ns(bool centralized) const noexcept override {
    return mode_ == Mode::flag && !centralized ? quantum_ns_ : 0;
  }
  bool has_ticker() const noexcept override { return true; }

  std::uint64_t scan(std::uint64_t now) override {
    std::uint64_t next = UINT64_MAX;
    std::uint64_t timer_next = UINT64_MAX;  // T5: the soonest due timer of a processor that runs a task
    for (auto& pp : rt_->procs) {
      Processor& w = *pp;
      ProcScan& s = state_[static_cast<std::size_t>(w.index)];
      std::uint64_t start = w.run_start_ns.load(std::memory_order_acquire);
      const bool queued = w.self_quantum_ns == 0 && w.policy->nr_waiting(w.index) > 0;  // self-timed: its own
      const bool io_only = !queued && io_waits(w, start, now, next);
      if (!queued && !io_only) {
        // Nobody waits for this core: tickless, unless a timer armed here comes due while a task runs
        // (the request makes the task pass the poll point, which fires it).
        const std::uint64_t due = w.timers.earliest();
        if (due == UINT64_MAX || start == 0) continue;
        if (now < due) {
          timer_next = std::min(timer_next, due);
          continue;
        }
      }
      if (start == 0) {
        // Idle with work queued: it is about to dispatch, and tells us then if tasks still wait (T2); a look
        // soon is only a second line (a policy whose queued work some other way reaches this processor).
        next = std::min(next, now + quantum_ns_);
        continue;
      }
      std::uint64_t seq = w.run_seq.load(std::memory_order_acquire);
      if (seq != s.seq) {
        s = ProcScan{};
        s.seq = seq;
      }
      // Quick retry: the last signal found the PC in libc (unsafe_deferrals moved since we sent it).
      const bool quick = s.signalled && unsafe_deferrals(w) != s.unsafe_seen;
      // I1: for completions alone, act again only a look interval later. A flag the worker has not yet
      // consumed (its thread is off its CPU: the cores are shared) cannot be raised twice, and a ticker with
      // real-time priority that looked every 10 us quantum took the very CPU the worker needed (measured:
      // a TCP server at 1k requests/s collapsed to seconds of latency).
      const std::uint64_t retry = io_only ? std::max(io_look_ns_, retry_delay(s)) : retry_delay(s);
      std::uint64_t due = s.acted_at == 0 ? start + quantum_ns_ : s.acted_at + (quick ? s.quick_delay : retry);
      if (now < due) {
        // After a signal, look again at the quick-retry time, and on until the signal was handled (it may
        // be delivered late: the worker's thread may be off its CPU), to see whether it was deferred.
        // At most kMaxProbes looks per signal: a ticker with real-time priority that polled a worker thread
        // which cannot run (its core is busy) would only keep it off its core.
        std::uint64_t wake = due;
        if (s.signalled && !quick && !handled(w, s) && s.probes < kMaxProbes) {
          ++s.probes;
          wake = std::min(due, std::max(s.acted_at + s.quick_delay, now + s.quick_delay));
        }
        next = std::min(next, wake);
        continue;
      }
      if (quick) s.quick = true;
      act(w, s, now);
      next = std::min(next, now + (s.signalled ? std::min(s.quick_delay, retry) : retry));
    }
    const std::uint64_t soonest = std::min(next, timer_next);
    park_sleep_ = timer_next <= next || soonest - now > kMaxPreciseSleepNs;  // T5
    return soonest;
  }

  const char* name() const noexcept override {
    return mode_ == Mode::dispatcher ? "dispatcher" : mode_ == Mode::flag ? "flag" : "hybrid";
  }

 private:
  struct ProcScan {
    std::uint64_t seq = 0;       // the run we acted on
    std::uint64_t acted_at = 0;  // when we last raised the flag / signalled for it
    std::uint32_t resends = 0;   // signals sent for this run (and not quick retries)
    bool signalled = false;
    std::uint32_t unsafe_seen = 0;   // unsafe_deferrals(w) when we last signalled
    std::uint64_t quick_delay = 0;   // when to look again after that signal (jittered)
    bool quick = false;              // this action is a quick retry (no backoff)
    std::uint64_t deferred_seen = 0, checks_seen = 0;  // w's counters when we last signalled
    std::uint32_t probes = 0;        // looks since that signal
    std::uint32_t unconsumed = 0;    // flag: looks that found our raised flag still unconsumed (T4)
  };
  static constexpr std::uint32_t kMaxProbes = 3;

  // I1: completions wait for `w`, whose running task keeps it from its poll point. Otherwise `next` gets
  // the time of the next look, while w runs with I/O in flight.
  bool io_waits(Processor& w, std::uint64_t start, std::uint64_t now, std::uint64_t& next) noexcept {
    if (start == 0 || w.io == nullptr || (w.poll_bits.load(std::memory_order_relaxed) & kPollIo) == 0) return false;
    std::uint64_t again = UINT64_MAX;
    if (w.io->waits_behind_task(now, io_look_ns_, &again)) return true;
    next = std::min(next, again);
    return false;
  }

  // The last signal reached the handler: it was deferred or acted on (the counters moved).
  static bool handled(const Processor& w, const ProcScan& s) noexcept {
    return w.preempt_deferred.get() != s.deferred_seen || w.preempt_checks.get() != s.checks_seen;
  }

  // After acting, when to look at the same run again. hybrid gives a flagged task its grace period. A
  // signal that found the task unpreemptible (deferred: it was in libc, or preemption-disabled) is
  // re-sent with exponential backoff: each costs the worker ~7 us on a VM, more than a short quantum,
  // so resending every quantum could starve the very task it tries to preempt. The backoff is bounded
  // (kMaxBackoffShift) so a newly contended worker still gets its preemption within a few quanta.
  static constexpr std::uint32_t kMaxBackoffShift = 2;
  static constexpr std::uint32_t kMaxUnconsumedShift = 6;  // T4: up to 64 quanta between looks
  std::uint64_t retry_delay(const ProcScan& s) const noexcept {
    if (mode_ == Mode::hybrid && !s.signalled) return grace_ns_;
    if (mode_ == Mode::flag) return quantum_ns_ << std::min(s.unconsumed, kMaxUnconsumedShift);
    return quantum_ns_ << std::min<std::uint32_t>(s.resends, kMaxBackoffShift);
  }

  // Q1 (core/preemption.cpp) for a task just queued on `p`: arms the running task's quantum. T3's fence
  // before a second look at an idle processor: either this sees its dispatch, or the dispatch sees the task.
  static void arm_if_running(Processor& p) noexcept {
    if (p.run_start_ns.load(std::memory_order_acquire) == 0) {
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (p.run_start_ns.load(std::memory_order_relaxed) == 0) return;  // on_dispatch arms it
    }
    arm_quantum_end(p);
  }

  void wake() noexcept {
    park_.unpark();  // fences, then one load when the ticker is not parked
    if (rt_->policy->needs_dispatcher()) rt_->kick_dispatcher();
  }

  // The ticker's parking while no core is contended (the idle protocol of park.hpp).
  struct TickerIdle : ParkAtOnce {
    explicit TickerIdle(TickerMechanism& mech) : m(mech) {}
    TickerMechanism& m;
    std::uint64_t next = UINT64_MAX;
    // Found: a deadline for the precise sleep (T5); otherwise the park sleeps until `next` at most.
    bool find() {
      const std::uint64_t now = now_ns();
      next = m.scan(now);
      if (m.rt_->pollers.any()) {  // PL3: no parking
        if (next == UINT64_MAX) next = now + kPollerRescanNs;
        return true;
      }
      return !m.park_sleep_;
    }
    std::uint64_t deadline() const { return next; }
    bool stop() const { return m.stopping_.load(std::memory_order_acquire); }
  };

  void act(Processor& w, ProcScan& s, std::uint64_t now) {
    const bool quick = s.quick;
    s.quick = false;
    s.unsafe_seen = unsafe_deferrals(w);  // before the signal: its deferral must show as a change
    s.quick_delay = quick_retry_delay_ns(quantum_ns_);
    s.deferred_seen = w.preempt_deferred.get();
    s.checks_seen = w.preempt_checks.get();
    s.probes = 0;
    switch (mode_) {
      case Mode::dispatcher:
        if (s.signalled && !quick) ++s.resends;
        request_preemption(w, /*signal=*/true);
        s.signalled = true;
        break;
      case Mode::flag:
        // T4: a raised flag cannot be raised twice. While the worker has not consumed it (its thread is off
        // its CPU: the cores are shared; the worker acts on it by itself when it runs again), only look
        // again, backing off. Looking every quantum regardless, a real-time ticker took the CPU that
        // descheduled workers needed: at a 10 us quantum it used 60% of a core and a TCP server at 1k
        // requests/s went to seconds of latency.
        if (s.acted_at != 0 && w.preempt_word->load(std::memory_order_acquire) != 0) {
          ++s.unconsumed;
        } else {
          s.unconsumed = 0;
          request_preemption(w, /*signal=*/false);
        }
        break;
      case Mode::hybrid:
        if (s.acted_at != 0 && w.preempt_word->load(std::memory_order_acquire) != 0) {
          if (s.signalled && !quick) ++s.resends;
          request_preemption(w, /*signal=*/true);  // grace expired with the flag unconsumed
          s.signalled = true;
        } else {
          request_preemption(w, /*signal=*/false);
          s.signalled = false;
        }
        break;
    }
    s.acted_at = now;
  }

  void loop() {
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    const int core = rt_->config.dispatcher_core;
    const bool dedicated = core >= 0;
    if (dedicated) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(core, &set);
      sched_setaffinity(0, sizeof set, &set);
    } else {
      // Floating, it shares cores with busy pinned workers: a real-time priority lets it run as soon as
      // its sleep ends, like a timer interrupt would, instead of waiting for the kernel to time-slice it
      // in. Without CAP_SYS_NICE this fails and it stays a normal thread (quanta then stretch under load).
      sched_param param{};
      param.sched_priority = 1;
      realtime_ = sched_setscheduler(0, SCHED_FIFO, &param) == 0;
    }
    std::uint64_t next = 0;
    while (!stopping_.load(std::memory_order_acquire)) {
      if (park_sleep_) {  // T5: none, a timer's or a far deadline: a park, which wake-ups cut short
        TickerIdle idle{*this};
        if (!spin_then_park(park_, idle)) break;
        next = idle.next;
      }
      if (dedicated) {
        // It owns its core and rescans every kPollerRescanNs at least: a wake-up is never missed meanwhile.
        const std::uint64_t until = std::min(next, now_ns() + kPollerRescanNs);
        for (std::uint64_t now = now_ns(); now < until && !stopping_.load(std::memory_order_relaxed); now = now_ns()) {
          rt_->pollers.run(now);
          __builtin_ia32_pause();
        }
      } else {
        timespec ts{static_cast<time_t>(next / 1'000'000'000ull), static_cast<long>(next % 1'000'000'000ull)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
      }
      next = scan(now_ns());
    }
  }

  // With pollers and no contended core, the dedicated ticker still rescans this often (a new contention is
  // noticed within it, as the dispatcher's kRescanNs).
  static constexpr std::uint64_t kPollerRescanNs = 5'000;

  // I1's look interval, at least a quantum: each look is a wake-up of this thread (several us of a core
  // on a VM), and it happens every interval while tasks run with I/O in flight.
  static constexpr std::uint64_t kIoLookNs = 50'000;

  // T5: a mechanism deadline further than this is slept as a park too (shutdown waits no longer than it).
  static constexpr std::uint64_t kMaxPreciseSleepNs = 10'000'000;

  const Mode mode_;
  const std::uint64_t quantum_ns_;
  const std::uint64_t grace_ns_;
  const std::uint64_t io_look_ns_;
  bool park_sleep_ = false;  // T5, written by scan() for the loop (the ticker thread only)
  RuntimeCore* rt_ = nullptr;
  std::unique_ptr<ProcScan[]> state_;  // owned by the scanning thread
  // Per processor: a task was queued while it was idle (T2). Wakers set it; the processor's thread clears it.
  std::unique_ptr<std::atomic<bool>[]> tell_at_dispatch_;
  OsThread thread_;
  ParkWord park_;
  std::atomic<bool> stopping_{false};
  bool realtime_ = false;
};

}  // namespace

std::unique_ptr<PreemptMechanism> make_ticker_mechanism(const std::string& name, std::uint32_t quantum_us,
                                                        std::uint32_t grace_us) {
  auto mode = name == "dispatcher" ? TickerMechanism::Mode::dispatcher
              : name == "flag"     ? TickerMechanism::Mode::flag
                                   : TickerMechanism::Mode::hybrid;
  return std::make_unique<TickerMechanism>(mode, quantum_us, grace_us);
}

}  // namespace skyloft
