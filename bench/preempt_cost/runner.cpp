// runner.cpp - one run of one cell of skyloft_preempt_cost: the bare-signal cells (timer_create /
// tgkill into a pinned pthread's busy loop) and the skyloft cells (a Runtime whose two pinned tasks run the
// busy loop under one mechanism), each with its livelock guard, and the watchdog.
#include "runner.hpp"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <thread>

#include <fmt/core.h>
#include <fmt/format.h>

#include "skyloft/skyloft.hpp"

namespace preempt_cost {

Options g_opt;

ProgressWatchdog g_watchdog;

void watchdog(int core) {
  if (core >= 0) pin_self(core);  // keep it off the busy core
  g_watchdog.run(std::chrono::milliseconds(100), g_opt.timeout_s,
                 "\nskyloft_preempt_cost: WATCHDOG: a run of '{}' did not finish in {} s; aborting\n");
}

double wait_quiet(double max_s) {
  return skyloft::bench::wait_quiet(max_s, g_opt.max_other, std::chrono::milliseconds(200), [] { ++g_watchdog.progress; });
}

Pcts percentiles(std::vector<double> v) {
  Pcts p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  p.p50 = skyloft::bench::at_index_quantile(v, 0.5);
  p.p99 = skyloft::bench::at_index_quantile(v, 0.99);
  return p;
}

namespace {

struct BareSig {
  std::atomic<std::uint64_t>* count = nullptr;  // the loop's marker
  std::vector<std::uint64_t> ts;
  std::vector<int> overrun;
};
BareSig g_bare;

void bare_handler(int, siginfo_t* si, void*) {
  std::uint64_t t = rdtsc();
  std::uint64_t n = g_bare.count->load(std::memory_order_relaxed);
  if (n < g_bare.ts.size()) {
    g_bare.ts[n] = t;
    g_bare.overrun[n] = si->si_code == SI_TIMER ? si->si_overrun : 0;
  }
  g_bare.count->store(n + 1, std::memory_order_release);
}

}  // namespace

void install_bare_handler() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = &bare_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);
}

RunOut run_bare(Bare kind, int core, int other, int q_us) {
  RunOut out;
  // This thread polls as the timer guard: keep it off the busy core for the cell.
  cpu_set_t saved_affinity;
  CPU_ZERO(&saved_affinity);
  pthread_getaffinity_np(pthread_self(), sizeof saved_affinity, &saved_affinity);
  if (other >= 0) pin_self(other);
  struct RestoreAffinity {
    cpu_set_t& set;
    ~RestoreAffinity() { pthread_setaffinity_np(pthread_self(), sizeof set, &set); }
  } restore_affinity{saved_affinity};
  const std::uint64_t period = us_to_ticks(q_us);
  const std::uint64_t T = us_to_ticks(g_opt.ms * 1000.0);
  const std::size_t cap = static_cast<std::size_t>(g_opt.ms * 1000.0 / q_us * 1.5) + 1024;
  LoopShared s;
  g_bare.count = &s.marker;
  g_bare.ts.assign(kind == Bare::none ? 0 : cap, 0);
  g_bare.overrun.assign(kind == Bare::none ? 0 : cap, 0);
  std::vector<std::uint64_t> stop(cap, 0), resume(cap, 0), send_ts, sys_ts;
  if (kind == Bare::cross) {
    send_ts.assign(cap, 0);
    sys_ts.assign(cap, 0);
  }
  std::atomic<pid_t> busy_tid{0};
  std::atomic<bool> busy_done{false};
  std::atomic<int> sends{0};
  std::atomic<timer_t*> timer_box{nullptr};
  std::atomic<bool> livelock{false};
  std::uint64_t expiry0_tsc = 0;  // bare timer: the first ideal expiry in tsc
  std::string error;

  s.length = T;  // the window starts at the loop's first timestamp
  std::thread busy([&] {
    if (!pin_self(core)) error = fmt::format("cannot pin to core {}", core);
    busy_tid.store(gettid_());
    timer_t timer{};
    bool have_timer = false;
    if (kind == Bare::timer) {
      sigevent sev;
      std::memset(&sev, 0, sizeof sev);
      sev.sigev_notify = SIGEV_THREAD_ID;
      sev.sigev_signo = SIGUSR1;
      sev._sigev_un._tid = gettid_();
      if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0) {
        error = fmt::format("timer_create: {}", std::strerror(errno));
      } else {
        have_timer = true;
        timer_box.store(&timer);
      }
    }
    std::uint64_t start = rdtsc();
    if (have_timer) {
      timespec now{};
      clock_gettime(CLOCK_MONOTONIC, &now);
      std::uint64_t tsc_at_now = rdtsc();
      std::uint64_t first = static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000ull +
                            static_cast<std::uint64_t>(now.tv_nsec) + static_cast<std::uint64_t>(q_us) * 1000;
      itimerspec spec{};
      spec.it_value.tv_sec = static_cast<time_t>(first / 1'000'000'000ull);
      spec.it_value.tv_nsec = static_cast<long>(first % 1'000'000'000ull);
      spec.it_interval.tv_sec = q_us / 1'000'000;
      spec.it_interval.tv_nsec = static_cast<long>(q_us % 1'000'000) * 1000;
      expiry0_tsc = tsc_at_now + period;
      timer_settime(timer, TIMER_ABSTIME, &spec, nullptr);
    }
    SelfSend ss{start + period, period, getpid(), gettid_()};
    auto on_change = [&](std::uint64_t, std::uint64_t, std::uint64_t m, std::uint64_t&) -> std::uint64_t {
      return m;
    };
    auto on_change_cross = [&](std::uint64_t prev, std::uint64_t now, std::uint64_t m, std::uint64_t&) -> std::uint64_t {
      // one handler since the last chunk: it interrupted after `prev` and the loop resumed before `now`
      if (m >= 1 && m - 1 < cap) {
        stop[m - 1] = prev;
        resume[m - 1] = now;
      }
      return m;
    };
    long cs0 = nivcsw();
    std::uint64_t w0 = runq_wait_ns();
    if (kind == Bare::self) out.iters = busy_loop<false, true>(s, 0, 0, on_change, &ss);
    else if (kind == Bare::cross) out.iters = busy_loop<false, false>(s, 0, 0, on_change_cross, nullptr);
    else out.iters = busy_loop<false, false>(s, 0, 0, on_change, nullptr);
    out.nivcsw = nivcsw() - cs0;
    out.wait_ns = static_cast<double>(runq_wait_ns() - w0);
    busy_done.store(true);
    if (have_timer) {
      while (timer_box.load() != nullptr) __builtin_ia32_pause();  // the guard below may still touch it
      timer_delete(timer);
    }
  });

  std::thread sender;
  if (kind == Bare::cross) {
    sender = std::thread([&] {
      pin_self(other);
      while (busy_tid.load() == 0 || s.deadline.load() == 0) __builtin_ia32_pause();
      const pid_t pid = getpid(), tid = busy_tid.load();
      std::uint64_t next = rdtsc() + period;
      int i = 0;
      while (!busy_done.load(std::memory_order_relaxed) && static_cast<std::size_t>(i) < cap) {
        while (rdtsc() < next && !busy_done.load(std::memory_order_relaxed)) __builtin_ia32_pause();
        std::uint64_t t = rdtsc();
        if (t + us_to_ticks(50) >= s.deadline.load(std::memory_order_relaxed)) break;  // none in the last 50 us
        send_ts[static_cast<std::size_t>(i)] = t;
        tgkill_(pid, tid, SIGUSR1);
        sys_ts[static_cast<std::size_t>(i)] = rdtsc();
        ++i;
        // wait for the handler (ack) so that signals never coalesce and samples pair up
        while (s.marker.load(std::memory_order_acquire) < static_cast<std::uint64_t>(i) &&
               !busy_done.load(std::memory_order_relaxed))
          __builtin_ia32_pause();
        next = std::max(next + period, rdtsc());
      }
      sends.store(i);
    });
  }
  if (kind == Bare::timer) {
    // Guard: a timer interval shorter than the interrupt's service time can livelock the busy thread (it
    // never gets back to user space, so it never sees its deadline). Disarm the timer from here once the
    // deadline has passed by kGuardMs; the run is then reported as livelocked.
    const std::uint64_t fallback = rdtsc() + T;  // the storm may begin before the loop does
    while (!busy_done.load()) {
      std::this_thread::sleep_for(std::chrono::microseconds(500));
      std::uint64_t dl = std::max(s.deadline.load(), fallback);
      if (timer_box.load() != nullptr && rdtsc() > dl + us_to_ticks(kGuardMs * 1000.0)) {
        itimerspec off{};
        timer_settime(*timer_box.load(), 0, &off, nullptr);
        livelock.store(true);
        break;
      }
    }
    timer_box.store(nullptr);
  }
  busy.join();
  if (sender.joinable()) sender.join();
  if (!error.empty()) {
    out.error = error;
    return out;
  }
  out.window_ns = static_cast<double>(s.length) / g_ticks_per_ns;
  out.rate = static_cast<double>(out.iters) / out.window_ns;
  out.livelock = livelock.load();
  out.uses_other = kind == Bare::cross;
  out.excess_ns = static_cast<double>(s.excess[0]) / g_ticks_per_ns;
  std::uint64_t n = std::min<std::uint64_t>(s.marker.load(), cap);
  out.events = s.marker.load();
  if (kind == Bare::timer) {
    std::vector<double> late;
    std::uint64_t idx = 0;  // expiry index of handler call k: sum over previous calls of (1 + overrun)
    for (std::uint64_t k = 0; k < n; ++k) {
      idx += static_cast<std::uint64_t>(g_bare.overrun[k]);
      std::uint64_t ideal = expiry0_tsc + idx * period;
      out.overruns += static_cast<std::uint64_t>(g_bare.overrun[k]);
      late.push_back(ticks_to_us(static_cast<double>(static_cast<std::int64_t>(g_bare.ts[k] - ideal))));
      ++idx;
    }
    out.handler = percentiles(late);
  } else if (kind == Bare::cross) {
    std::uint64_t m = std::min<std::uint64_t>(n, static_cast<std::uint64_t>(sends.load()));
    std::vector<double> st, h, r, sy;
    for (std::uint64_t k = 0; k < m; ++k) {
      auto d = [&](std::uint64_t a) { return ticks_to_us(static_cast<double>(static_cast<std::int64_t>(a - send_ts[k]))); };
      h.push_back(d(g_bare.ts[k]));
      sy.push_back(d(sys_ts[k]));
      if (resume[k] != 0) {
        st.push_back(d(stop[k]));
        r.push_back(d(resume[k]));
      }
    }
    out.stop = percentiles(st);
    out.handler = percentiles(h);
    out.run = percentiles(r);
    out.sys = percentiles(sy);
  }
  out.ok = true;
  return out;
}

namespace {

struct Sample {
  double slice, stop, run, gap;  // ticks (signed where it matters)
};

// The kernel's struct sigaction (x86-64). The guard below changes SIGURG through the system call itself:
// the runtime records a program's sigaction() for its preemption signal instead of installing it (so that
// the program cannot unhook preemption by accident; src/preempt/sigaction.cpp), and the guard must reach
// the kernel.
struct KernelSigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  unsigned long mask;
};
int kernel_sigaction(int sig, const KernelSigaction* act, KernelSigaction* old) {
  return static_cast<int>(syscall(SYS_rt_sigaction, sig, act, old, sizeof(unsigned long)));
}

}  // namespace

RunOut run_sky(const SkySpec& spec, int core, int other, int q_us) {
  RunOut out;
  skyloft::Config cfg = skyloft::Config::from_env();
  cfg.policy = "fifo";
  cfg.preempt = spec.mech;
  cfg.quantum_us = static_cast<std::uint32_t>(q_us);
  if (spec.pinned) {
    cfg.cores = fmt::format("{},{}", std::min(core, other), std::max(core, other));
    cfg.dispatcher_core = other;
  } else {
    cfg.cores = std::to_string(core);
    cfg.dispatcher_core = -1;
  }
  const std::uint64_t q = us_to_ticks(q_us);
  const std::uint64_t T = us_to_ticks(g_opt.ms * 1000.0);
  const std::size_t cap = static_cast<std::size_t>(g_opt.ms * 1000.0 / q_us * 1.5) + 1024;
  const bool ticker = spec.mech == "dispatcher" || spec.mech == "flag" || spec.mech == "hybrid";

  LoopShared s;
  std::atomic<std::uint64_t> slice_start[2] = {0, 0};  // written by the other task (same core)
  std::vector<Sample> samples[2];
  samples[0].reserve(cap);
  samples[1].reserve(cap);
  std::uint64_t iters[2] = {0, 0};
  std::uint64_t seen[2] = {0, 0};
  long cs_start[2] = {-1, -1}, cs_end[2] = {-1, -1};
  std::uint64_t w_start[2] = {0, 0}, w_end[2] = {0, 0};

  auto body = [&](int idx) {
    const std::uint64_t mine = static_cast<std::uint64_t>(idx) + 1;
    const int oth = 1 - idx;
    auto on_change = [&, idx, mine, oth](std::uint64_t, std::uint64_t now, std::uint64_t m,
                                         std::uint64_t& d) -> std::uint64_t {
      // Switched in: this chunk's duration is the time since the other task's last timestamp (the switch),
      // not since this task's own previous chunk (which lies before the other task's whole slice).
      if (m == static_cast<std::uint64_t>(oth) + 1) {
        std::uint64_t L = s.last_ts[oth].load(std::memory_order_relaxed);
        if (L != 0 && L < now) d = now - L;
      }
      if (m == static_cast<std::uint64_t>(oth) + 1 && slice_start[oth].load(std::memory_order_relaxed) != 0 && now < s.deadline.load(std::memory_order_relaxed) &&
          samples[idx].size() < samples[idx].capacity()) {
        std::uint64_t S = slice_start[oth].load(std::memory_order_relaxed);
        std::uint64_t L = s.last_ts[oth].load(std::memory_order_relaxed);
        std::uint64_t E = S + q;
        samples[idx].push_back(Sample{static_cast<double>(L - S), static_cast<double>(static_cast<std::int64_t>(L - E)),
                                      static_cast<double>(static_cast<std::int64_t>(now - E)),
                                      static_cast<double>(now - L)});
      }
      if (m != 0) ++seen[idx];
      slice_start[idx].store(now, std::memory_order_relaxed);
      s.marker.store(mine, std::memory_order_relaxed);
      return mine;
    };
    long c0 = nivcsw();  // of the worker thread (tasks run on it)
    cs_start[idx] = c0;
    w_start[idx] = runq_wait_ns();
    if (spec.pp) iters[idx] = busy_loop<true, false>(s, idx, ~0ull, on_change, nullptr);
    else iters[idx] = busy_loop<false, false>(s, idx, ~0ull, on_change, nullptr);
    cs_end[idx] = nivcsw();
    w_end[idx] = runq_wait_ns();
  };

  try {
    skyloft::Runtime rt(cfg);
    auto before = rt.stats();
    s.length = T;  // the window starts at the first task's first timestamp
    // Guard: a quantum shorter than the interrupt's service time can livelock the worker (every sigreturn
    // finds the next signal pending, so the tasks never see their deadline). kGuardMs after the deadline the
    // guard makes SIGURG ignored process-wide, which stops the storm, and restores the runtime's handler
    // once the cell is over; the run is then reported as livelocked.
    std::atomic<bool> cell_done{false}, ignored{false};
    KernelSigaction saved_action{};
    // The storm can start before the tasks do (the timer is armed as soon as the first task is queued
    // behind the spawning one), so the limit counts from now when no task has started.
    const std::uint64_t fallback = rdtsc() + T;
    std::thread guard([&] {
      if (other >= 0) pin_self(other);  // keep it off the busy core
      while (!cell_done.load()) {
        std::this_thread::sleep_for(std::chrono::microseconds(500));
        std::uint64_t dl = std::max(s.deadline.load(), fallback);
        if (!ignored.load() && rdtsc() > dl + us_to_ticks(kGuardMs * 1000.0)) {
          KernelSigaction ign{};
          ign.handler = reinterpret_cast<void*>(SIG_IGN);
          kernel_sigaction(SIGURG, &ign, &saved_action);
          ignored.store(true);
        }
      }
    });
    struct GuardStop {
      std::atomic<bool>& done;
      std::thread& t;
      ~GuardStop() {
        done.store(true);
        if (t.joinable()) t.join();
      }
    } guard_stop{cell_done, guard};
    rt.block_on([&] {
      skyloft::SpawnOptions o{.stack_size = 0, .core = core, .pin = true};
      auto a = skyloft::spawn([&] { body(0); }, o);
      skyloft::JoinHandle b;
      if (spec.two) b = skyloft::spawn([&] { body(1); }, o);
      a.join();
      if (b.joinable()) b.join();
    });
    auto after = rt.stats();
    for (std::size_t w = 0; w < after.size() && w < before.size(); ++w) {
      out.events += (after[w].preempt_checks - before[w].preempt_checks) +
                    (after[w].preempt_deferred - before[w].preempt_deferred);
      out.preemptions += after[w].preemptions - before[w].preemptions;
      out.deferred += after[w].preempt_deferred - before[w].preempt_deferred;
    }
    auto rep = rt.shutdown();
    if (!rep.clean()) fmt::print(stderr, "skyloft_preempt_cost: runtime did not shut down clean: {}\n", rep.describe());
    cell_done.store(true);
    guard.join();
    if (ignored.load()) {
      kernel_sigaction(SIGURG, &saved_action, nullptr);
      out.livelock = true;
    }
  } catch (const std::exception& e) {
    out.error = e.what();
    return out;
  }
  out.iters = iters[0] + iters[1];
  {
    long lo = cs_start[0], hi = cs_end[0];
    if (spec.two) {
      lo = std::min(lo, cs_start[1]);
      hi = std::max(hi, cs_end[1]);
    }
    out.nivcsw = hi - lo;
    std::uint64_t wl = w_start[0], wh = w_end[0];
    if (spec.two) {
      wl = std::min(wl, w_start[1]);
      wh = std::max(wh, w_end[1]);
    }
    out.wait_ns = static_cast<double>(wh - wl);
  }
  out.excess_ns = static_cast<double>(s.excess[0] + s.excess[1]) / g_ticks_per_ns;
  out.uses_other = ticker;
  out.switches_seen = seen[0] + seen[1];
  out.window_ns = static_cast<double>(s.length) / g_ticks_per_ns;
  out.rate = static_cast<double>(out.iters) / out.window_ns;
  std::vector<double> sl, st, rn, gp;
  for (auto& v : samples) {
    for (const auto& x : v) {
      sl.push_back(ticks_to_us(x.slice));
      gp.push_back(ticks_to_us(x.gap));
      if (ticker) {
        st.push_back(ticks_to_us(x.stop));
        rn.push_back(ticks_to_us(x.run));
      }
    }
  }
  out.slice = percentiles(sl);
  out.gap = percentiles(gp);
  out.stop = percentiles(st);
  out.run = percentiles(rn);
  out.ok = true;
  return out;
}

bool disturbed(const RunOut& o) {
  return o.wait_ns > 0.02 * o.window_ns || (o.uses_other && o.other_pct >= g_opt.max_other);
}

bool selected(const Cell& c) {
  return c.is_baseline || g_opt.filter.empty() || c.key.find(g_opt.filter) != std::string::npos;
}

}  // namespace preempt_cost
