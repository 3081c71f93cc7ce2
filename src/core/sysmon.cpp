// sysmon.cpp - the monitor thread; see sysmon.hpp. The hand-off protocol it drives is in handoff.cpp.
#include "core/sysmon.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "core/handoff.hpp"
#include "core/kthread.hpp"
#include "core/runtime_core.hpp"
#include "core/scheduler.hpp"

namespace skyloft {

Sysmon::Sysmon(RuntimeCore& rt)
    : rt_(rt),
      handoff_ns_(std::uint64_t{rt.config.handoff_us} * 1000),
      stall_ns_(std::uint64_t{rt.config.stall_ms} * 1'000'000),
      watch_(std::make_unique<ProcWatch[]>(rt.procs.size())) {
  const std::uint64_t now = now_ns();  // a processor that has not run yet has not stalled since time 0
  for (std::size_t i = 0; i < rt.procs.size(); ++i) watch_[i].since = now;
}

Sysmon::~Sysmon() { stop(); }

void Sysmon::start() {
  thread_.start([](void* self) { static_cast<Sysmon*>(self)->loop(); }, this, "skyloft-sysmon");
}

void Sysmon::stop() {
  stopping_.store(true, std::memory_order_release);
  park_.unpark();
  thread_.join();
}

void Sysmon::blocking_started(Processor& p) noexcept {
  if (!sleeping_long_.load(std::memory_order_relaxed)) return;
  if (p.policy->nr_waiting(p.index) == 0) return;  // nobody waits for this core: nothing to hand off yet
  sleeping_long_.store(false, std::memory_order_relaxed);
  hurry_.store(true, std::memory_order_relaxed);
  park_.unpark();
}

void Sysmon::loop() {
  std::uint64_t period = kMinPeriodNs;
  while (!stopping_.load(std::memory_order_acquire)) {
    sleeping_long_.store(period > handoff_ns_, std::memory_order_relaxed);
    park_.prepare();
    if (stopping_.load(std::memory_order_acquire)) {
      park_.cancel();
      break;
    }
    park_.wait(now_ns() + period);
    const bool hurried = hurry_.exchange(false, std::memory_order_relaxed);
    const bool suspect = check(now_ns());
    if (suspect) {
      period = std::max<std::uint64_t>(std::min(kMinPeriodNs, handoff_ns_ / 2), 10'000);
    } else if (hurried) {
      period = kMinPeriodNs;
    } else {
      period = std::min(period * 2, kMaxPeriodNs);
    }
  }
}

bool Sysmon::check(std::uint64_t now) {
  bool suspect = false;
  for (auto& pp : rt_.procs) {
    Processor& p = *pp;
    ProcWatch& w = watch_[static_cast<std::size_t>(p.index)];
    const std::uint64_t progress = p.tasks_run.get() + p.switches.get();
    if (progress != w.progress || p.idle.load(std::memory_order_relaxed) || p.park.parked()) {
      w.progress = progress;
      w.since = now;
      w.reported = false;
      continue;
    }
    const bool queued = p.policy->nr_waiting(p.index) > 0;
    const bool timer_due = p.timers.earliest() <= now;
    if (!queued && !timer_due) {
      w.since = now;  // a long task alone on its core is not a stall
      continue;
    }
    suspect = true;
    const std::uint64_t state = p.own_word.load(std::memory_order_acquire) & 0xff;
    if (state == kOwnBlocking) {
      if (now - p.blocking_since.load(std::memory_order_relaxed) >= handoff_ns_ && steal_marked(rt_, p)) {
        w.since = now;
        continue;
      }
    } else if (state == kOwnRunning && now - w.since >= handoff_ns_) {
      if (steal_unmarked(rt_, p)) {
        w.since = now;
        continue;
      }
    }
    if (stall_ns_ != 0 && queued && !w.reported && now - w.since >= stall_ns_) {
      w.reported = true;
      report_stall(p, now - w.since);
    }
  }
  // A thread that lost its processor but still runs its task in user code (unmarked blocking returned, or
  // a task that escaped from unpreemptible code, handoff.cpp H6) is nudged with the preemption signal: its
  // handler sends the task back through the scheduler at a safe point. It shares a core with the
  // processor's new thread meanwhile, so it is nudged at the short period until it comes back.
  std::lock_guard<SpinLock> g(rt_.kthreads_lock);
  for (auto& kt : rt_.kthreads) {
    if (kt->detached.load(std::memory_order_relaxed) && kthread_on_cpu(kt.get())) {
      tgkill(getpid(), kt->tid, rt_.config.preempt_signal);
      suspect = true;
    }
  }
  return suspect;
}

void Sysmon::report_stall(Processor& p, std::uint64_t stalled_ns) {
  stalls_.fetch_add(1, std::memory_order_relaxed);
  std::fprintf(stderr,
               "skyloft: stall: worker %d (core %d) has had %u runnable task(s) waiting for %.1f ms without a "
               "scheduling decision (stall_ms %u); policy state:\n",
               p.index, p.core, p.policy->nr_waiting(p.index), static_cast<double>(stalled_ns) / 1e6,
               rt_.config.stall_ms);
  p.policy->dump(stderr);
}

}  // namespace skyloft
