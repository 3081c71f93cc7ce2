// kthread.cpp - the loop of a runtime kernel thread: drive a processor (pick -> run; when idle: timers,
// balance, help busy processors' timers, spin, park), or wait as a spare until handed one.
//
// Idle protocol of a processor (park.hpp's spin_then_park, with these hooks):
//   find()   the poll point + pick_next, then balance (steal), then due timers of busy processors (an idle
//            processor runs them, as Go's do: a sleeper whose own processor runs a long task still wakes).
//   spin     Config::spin_us; is_idle() is true meanwhile (policies hand work to spinning processors
//            without a wake-up) and nr_spinning counts it (notify_work_available skips waking others).
//            With Config::spin_yield each look is followed by sched_yield(): alone on its core the thread
//            looks again within a system call (~0.2 us), but a thread of another process that shares the
//            core (a load generator, a client, a build) runs instead of waiting for the spin to end; and
//            the system call's return runs the io_uring completions the kernel holds for this thread.
//   park     until a kick, the earliest of its own timers, or the earliest timer of a processor that runs
//            a task. parked_forever (parked with no deadline) is what shutdown uses to detect quiescence.
// Under a daemon (shared_core(p), processor.hpp) the loop first waits for the core to be this application's,
// and its idle path hands the core to other applications (app_find_work; the protocol is in app_core.hpp).
// A build without the multi-app layer compiles those branches out.
#include "core/kthread.hpp"

#include <cxxabi.h>
#include <errno.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "core/app_core.hpp"
#include "core/fair_slice.hpp"
#include "core/fatal.hpp"
#include "core/spinlock.hpp"
#include "core/fault.hpp"
#include "core/handoff.hpp"
#include "core/policy_check.hpp"
#include "core/runtime_core.hpp"
#include "core/scheduler.hpp"
#include "skyloft/preempt.hpp"
#include "skyloft/time.hpp"

namespace skyloft {

namespace arch {
void init_thread_context(ExecContext& ctx) {
  void* lo = nullptr;
  std::size_t size = 0;
  os_thread_stack(&lo, &size);
  ctx.stack_lo = lo;
  ctx.stack_size = size;
#if SKY_TSAN
  ctx.tsan_fiber = __tsan_get_current_fiber();
  ctx.tsan_owned = false;
#endif
}
}  // namespace arch

namespace {

constexpr std::uint64_t kHelpTimersEveryNs = 5'000;  // how often a spinning processor looks at busy ones

// Fires the due timers of processors that are running a task (their own poll point may be far away).
// Returns true if any fired.
bool help_busy_timers(RuntimeCore& rt, Processor* self, std::uint64_t now) {
  bool fired = false;
  for (auto& q : rt.procs) {
    if (q.get() == self) continue;
    if (q->timers.earliest() <= now) fired |= q->timers.run_due(now) != 0;
  }
  return fired;
}

std::uint64_t earliest_busy_timer(RuntimeCore& rt, Processor* self) {
  std::uint64_t e = UINT64_MAX;
  for (auto& q : rt.procs) {
    if (q.get() != self && !q->idle.load(std::memory_order_relaxed) && !q->park.parked()) e = std::min(e, q->timers.earliest());
  }
  return e;
}

struct ProcIdle {
  Processor* p;
  RuntimeCore& rt;
  Task* found = nullptr;
  std::uint64_t next_help = 0;

  bool find() {
    if ((found = proc_pick(p)) != nullptr) return true;
    if ((found = policy_took(p->policy->balance(p->index))) != nullptr) {
      p->steals.add();
      return true;
    }
    const std::uint64_t now = now_ns();
    if (now >= next_help) {
      next_help = now + kHelpTimersEveryNs;
      if (help_busy_timers(rt, p, now) && (found = proc_pick(p)) != nullptr) return true;
    }
    return false;
  }
  bool stop() const { return rt.stopping.load(std::memory_order_acquire); }
  bool spin_more(std::uint64_t spun_ns) const { return spun_ns < std::uint64_t{rt.config.spin_us} * 1000; }
  // Config::spin_yield: give the core to any other runnable thread between looks (see the file comment).
  void relax() {
    if (rt.config.spin_yield) {
      os_yield();  // the kernel's: never the preload library's (spinlock.hpp)
    } else {
      for (int i = 0; i < 16; ++i) cpu_relax();
    }
  }
  std::uint64_t deadline() const { return std::min(p->timers.earliest(), earliest_busy_timer(rt, p)); }
  void spinning(bool on) {
    p->idle.store(on, std::memory_order_relaxed);
    rt.nr_spinning.fetch_add(on ? 1 : -1, std::memory_order_seq_cst);
  }
  void park_begin() { rt.nr_parked.fetch_add(1, std::memory_order_seq_cst); }
  void sleeping(std::uint64_t deadline) {
    p->parked_forever.store(deadline == UINT64_MAX, std::memory_order_release);
    p->parks.add();
  }
  void park_end() {
    p->parked_forever.store(false, std::memory_order_relaxed);
    rt.nr_parked.fetch_sub(1, std::memory_order_relaxed);
  }
};

// Under a daemon the idle loop also gives the core away (app_core.hpp O4): it stops looking when the
// poll point decided to lend the core, or when another application's worker asks for it.
struct AppProcIdle : ProcIdle {
  bool find() {
    const AppCore& ac = *shared_core(p);
    return ac.lending() || ProcIdle::find() || ac.lending() || ac.others_want();
  }
};

// find_work of a processor whose core is shared with other applications: hands the core over when it is
// lent or wanted while idle, waits to get it back (O3), and returns a task only while it owns the core.
Task* app_find_work(Processor* p) {
  AppCore& ac = *shared_core(p);
  const std::uint64_t start = now_ns();
  Task* found = nullptr;
  for (;;) {
    if (ac.lending()) {
      if (!ac.lend_and_wait()) break;  // our yielded task waits for the core
      if ((found = proc_pick(p)) != nullptr) break;  // it, at once (no spin phase: the switch's path)
      continue;
    }
    AppProcIdle idle{{p, *p->rt}};
    if (!spin_then_park(p->park, idle)) break;
    if ((found = idle.found) != nullptr) break;
    if (ac.lending()) continue;
    // Idle and wanted: one last look with a kick armed (a task queued from now on unparks us), then hand
    // over; a kick that comes meanwhile makes us want the core back.
    p->park.prepare();
    if ((found = proc_pick(p)) != nullptr) {
      p->park.cancel();
      break;
    }
    if (!ac.hand_over_idle()) {
      p->park.cancel();
      continue;
    }
    if (!ac.wait_for_core(/*want=*/false, /*armed=*/true)) break;
  }
  p->idle.store(false, std::memory_order_relaxed);
  p->idle_ns.add(now_ns() - start);
  return found;
}

// A task to run next on `p`, or nullptr when the runtime stops.
Task* find_work(Processor* p) {
  if (Task* t = proc_pick(p)) {
    p->idle.store(false, std::memory_order_relaxed);  // switch_away set it when it came here empty-handed
    return t;
  }
  if (shared_core(p) != nullptr) return app_find_work(p);
  const std::uint64_t start = now_ns();
  ProcIdle idle{p, *p->rt};
  spin_then_park(p->park, idle);
  p->idle_ns.add(now_ns() - start);
  return idle.found;
}

void attach(KThread* kt, Processor* p) {
  p->kthread.store(kt, std::memory_order_release);
  p->errno_slot = kt->errno_slot;
  p->eh_slot = kt->eh_slot;
  p->own_word.store(std::uint64_t{kt->serial} << 8 | kOwnRunning, std::memory_order_release);
  set_this_proc(p);
  detail::skyloft_preempt_word = reinterpret_cast<std::uint32_t*>(p->preempt_word);
  if (p->preempt_hooks) p->rt->preempt->thread_attached(*p);
  if (AppCore* ac = shared_core(p)) ac->attached(kt->tid);  // the target of other apps' revocation signals
}

void detach(Processor* p) {
  if (AppCore* ac = shared_core(p)) ac->leave();
  if (p->preempt_hooks) p->rt->preempt->thread_detached(*p);
}

// Drives `p` until the runtime stops (returns false) or the thread loses `p` to a spare (returns true).
bool run_processor(KThread* kt, Processor* p) {
  attach(kt, p);
  AppCore* ac = shared_core(p);
  if (ac != nullptr && !ac->owned() && !ac->wait_for_core(/*want=*/false, /*armed=*/false)) {
    detach(p);
    return false;
  }
  for (;;) {
    Task* t = std::exchange(p->pending_next, nullptr);
    if (t == nullptr && (t = find_work(p)) == nullptr) break;
    while (t->on_cpu.load(std::memory_order_acquire)) cpu_relax();  // X1: this thread holds no task
    proc_dispatch(p, t);
    void* transfer = switch_into(kt->loop_ctx, t->ctx, p, t);
    finish_switch(transfer);
    p = static_cast<Processor*>(transfer);
    if (p->index < 0) return true;  // the stand-in: our processor went to a spare (handoff.cpp)
  }
  detach(p);
  return false;
}

}  // namespace

void set_timer_slack(KThread& kt, unsigned long ns) noexcept {
  if (kt.timer_slack_ns == ns) return;
  prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0);
  kt.timer_slack_ns = ns;
}

void kthread_main(void* arg) {
  auto* kt = static_cast<KThread*>(arg);
  RuntimeCore& rt = *kt->rt;
  kt->tid = static_cast<pid_t>(syscall(SYS_gettid));
  kt->errno_slot = &errno;
  kt->eh_slot = reinterpret_cast<EhGlobals*>(abi::__cxa_get_globals());
  kt->tls_proc_slot.store(&sky_tl_proc, std::memory_order_relaxed);
  kt->tls_preempt_slot.store(&detail::skyloft_preempt_word, std::memory_order_relaxed);
  kt->standin.errno_slot = kt->errno_slot;
  kt->standin.eh_slot = kt->eh_slot;
  kt->standin.kthread.store(kt, std::memory_order_relaxed);
  kt->standin.preempt_flag.store(1, std::memory_order_relaxed);
  set_timer_slack(*kt, kPreciseTimerSlackNs);
  if (rt.config.worker_slice_us != 0) (void)fair_slice::request(rt.config.worker_slice_us);  // validated at start
  kt->alt_stack = install_signal_stack();
  arch::init_thread_context(kt->loop_ctx);
  if (rt.config.task_tls) kt->loop_ctx.tls_tp = arch::thread_pointer();  // the loop keeps the thread's own
  kthread_opened(kt);

  Processor* p = kt->next_proc.exchange(nullptr, std::memory_order_acquire);
  for (;;) {
    if (p == nullptr && (p = wait_as_spare(kt)) == nullptr) break;
    {
      // Pinned: the processor's core. Unpinned: any of the runtime's cores, where the kernel likes.
      cpu_set_t set;
      CPU_ZERO(&set);
      if (rt.config.pin_workers) {
        CPU_SET(p->core, &set);
      } else {
        for (const auto& q : rt.procs) CPU_SET(q->core, &set);
      }
      if (sched_setaffinity(0, sizeof set, &set) != 0) {
        sky_fatal("cannot pin processor %d to core %d: %s", p->index, p->core, std::strerror(errno));
      }
    }
    if (!p->policy_inited) {
      p->policy_inited = true;
      rt.policy->init_worker(p->index);
    }
    if (!run_processor(kt, p)) break;
    p = nullptr;  // lost it: become a spare
  }
  set_this_proc(nullptr);
  detail::skyloft_preempt_word = nullptr;
  kthread_closed(kt);
  remove_signal_stack(kt->alt_stack);
}

}  // namespace skyloft
