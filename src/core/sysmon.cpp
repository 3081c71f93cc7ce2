// sysmon.cpp - the monitor thread; see sysmon.hpp. The hand-off protocol it drives is in handoff.cpp.
#include "core/sysmon.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "core/app_core.hpp"
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
    if (AppCore* ac = shared_core(&p)) ac->wake_if_due(now);  // app_core.hpp O3s, O3r
    const std::uint64_t progress = p.tasks_run.get() + p.switches.get();
    if (progress != w.progress || p.park.parked()) {
      w.progress = progress;
      w.since = now;
      w.reported = false;
      p.stalled.store(false, std::memory_order_relaxed);
      continue;
    }
    const bool queued = p.policy->nr_waiting(p.index) > 0;
    const bool searching = p.idle.load(std::memory_order_relaxed);
    // Nothing waits for p: it searches with nothing to find, or runs a long task alone (not a stall).
    if (!queued && (searching || p.timers.earliest() > now)) {
      w.since = now;
      p.stalled.store(false, std::memory_order_relaxed);
      continue;
    }
    suspect = true;
    // W2, work conservation: tasks have waited handoff_us on a processor that took none of them. Its
    // thread runs one task without preemption, or is blocked, or is off the CPU (the kernel gave its core
    // to something else: then even a searching processor takes nothing). A parked peer would steal them
    // (the policy's balance), but wakers skip parked processors while one searches or while the target
    // looks busy (RuntimeCore::notify_work_available, spawn_target): so wake one here.
    // At most one wake per handoff_us per processor: a peer that finds nothing it may steal (pinned tasks)
    // parks again, and waking it at the monitor's short period would cost a core-wake each time.
    // Placement stops queueing new work here meanwhile (spawn_target), until p takes a task again.
    if (queued && now - w.since >= handoff_ns_) {
      p.stalled.store(true, std::memory_order_relaxed);
      if (now - w.peer_woken >= handoff_ns_ && wake_parked_peer(p)) w.peer_woken = now;
    }
    if (searching) continue;  // searching but off the CPU: nothing to hand off
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

bool Sysmon::wake_parked_peer(const Processor& p) noexcept {
  for (auto& q : rt_.procs) {
    if (q.get() != &p && q->park.unpark()) return true;
  }
  return false;
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
