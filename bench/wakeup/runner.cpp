// runner.cpp - running one cell: the watchdog, native threads (with EEVDF custom slices), a skyloft runtime
// (policy tuning, tasks, WorkerStats), the CPU accounting by thread role, and the reruns on a busy machine.
#include "runner.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <fmt/format.h>

#include "skyloft/preempt.hpp"  // not (yet) included by skyloft.hpp
#include "skyloft/skyloft.hpp"

#include "bench_common.hpp"
#include "options.hpp"
#include "realtime.hpp"  // skyloft-loadgen's EEVDF custom slice request
#include "report.hpp"    // us()

namespace skyloft::bench::wakeup {

std::string g_no_slices;

namespace {

// Waits (up to max_s) until other processes use less than 5% of the machine over a 0.5 s sample.
double wait_quiet(double max_s) { return skyloft::bench::wait_quiet(max_s, 5, std::chrono::milliseconds(500)); }

// ---------------------------------------------------------------------------------------------------------
// Watchdog

std::atomic<std::uint64_t> g_deadline_ns{0};  // 0: none; written by the main thread (arm/disarm), read by the watchdog
std::atomic<bool> g_stop_watchdog{false};    // written by the main thread (stop_watchdog), read by the watchdog
std::string g_current_cell;  // written before the deadline is armed
std::mutex g_current_mutex;

void watchdog() {
  while (!g_stop_watchdog.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::uint64_t d = g_deadline_ns.load();
    if (d != 0 && now_ns() > d) {
      std::string cell;
      {
        std::lock_guard g(g_current_mutex);
        cell = g_current_cell;
      }
      fmt::print(stderr, "\nskyloft_wakeup: WATCHDOG: cell '{}' overran its plan by {} s; aborting\n", cell,
                 g_opt.timeout_s);
      if (auto* rt = skyloft::Runtime::current()) rt->dump(stderr);
      std::fflush(stderr);
      std::_Exit(3);
    }
  }
}

void arm_watchdog(const std::string& cell) {
  {
    std::lock_guard g(g_current_mutex);
    g_current_cell = cell;
  }
  double planned = g_opt.seconds + g_opt.warmup_ms / 1e3;
  g_deadline_ns.store(now_ns() + static_cast<std::uint64_t>((planned + g_opt.timeout_s) * 1e9));
}
void disarm_watchdog() { g_deadline_ns.store(0); }

// ---------------------------------------------------------------------------------------------------------
// Running a cell

// The preempt point the work calls once per matrix row (a function, so the shared workload takes its address).
void skyloft_preempt_point() noexcept { skyloft::preempt_point(); }

std::size_t sample_reserve(int nworkers) {
  return static_cast<std::size_t>(
      std::max(64.0, (g_opt.seconds + 1) * 4e6 / std::max(1.0, g_opt.work_us) / std::max(1, nworkers)));
}

// Runs the measured part of a cell whose threads or tasks are running: warm-up, window, stop; records the
// window and the CPU share other processes took during it.
template <class C, class OnWindow>
void drive(C& cell, CellResult& r, OnWindow&& on_window) {
  CpuSnap c0;
  r.window_s = cell.drive(g_opt.warmup_ms / 1e3, g_opt.seconds, [&](bool start) {
    if (start) {
      on_window(true);
      c0 = cpu_snap();
    } else {
      r.other_pct = other_cpu_pct(c0, cpu_snap());
      on_window(false);
    }
  });
}

template <class C>
void collect(C& cell, CellResult& r) {
  wakeup::Measured m = cell.collect(r.window_s);
  r.wake_samples = m.wake_samples;
  r.requests = m.requests;
  r.wake = m.wake;
  r.req = m.req;
  r.rps = m.rps;
  r.ok = m.requests > 0;
  if (!r.ok) r.note = "no requests completed";
}

// Asks the kernel for a custom slice of `slice_us` for the calling thread and reads it back: "" or why it
// did not take effect (an older kernel accepts the request and ignores it).
std::string apply_slice(int slice_us) {
  const auto want = static_cast<std::uint32_t>(slice_us);
  std::string e = skyloft::loadgen::set_generator_slice(want);
  if (!e.empty()) return e;
  const std::uint32_t got = skyloft::loadgen::current_slice_us();
  if (got == 0) return "the kernel ignored sched_runtime (EEVDF custom slices need Linux 6.12+)";
  if (got != want) return fmt::format("asked for {} us, the kernel reports {} us", want, got);
  return "";
}

CellResult run_native(const System& sys, int nworkers, int nmsg, std::size_t matrix_n) {
  CellResult r;
  r.sys = sys;
  r.workers = nworkers;
  r.message_threads = nmsg;
  if (sys.slice_us > 0 && !g_no_slices.empty()) {
    r.note = "kernel lacks custom slices: " + g_no_slices;
    return r;
  }
  using C = wakeup::Cell<std::mutex, std::condition_variable>;
  C cell(nworkers, nmsg, matrix_n, sys.preempt_points ? &skyloft_preempt_point : nullptr, sample_reserve(nworkers));
  // Every thread of the loop asks for the slice before it starts; one that cannot spoils the cell.
  std::mutex slice_mutex;
  std::string slice_error;  // protected by slice_mutex
  auto enter = [&] {
    if (sys.slice_us <= 0) return;
    std::string e = apply_slice(sys.slice_us);
    if (e.empty()) return;
    std::lock_guard g(slice_mutex);
    slice_error = e;
  };
  std::vector<std::thread> threads;
  for (auto& m : cell.msgs) threads.emplace_back([&enter, p = m.get()] { enter(), p->run(); });
  for (auto& w : cell.workers) threads.emplace_back([&enter, p = w.get(), &cell] { enter(), p->run(cell.sh); });
  drive(cell, r, [](bool) {});
  for (auto& t : threads) t.join();
  collect(cell, r);
  if (!slice_error.empty()) {
    r.ok = false;
    r.note = "kernel lacks custom slices: " + slice_error;
  } else if (r.ok) {
    r.note = sys.slice_note;
  }
  return r;
}

void tune_policy(skyloft::Runtime& rt, const System& sys, std::string& note) {
  std::vector<std::pair<std::string, std::string>> params;
  const std::string q = std::to_string(sys.quantum_us);
  if (g_opt.tune_slices && sys.quantum_us > 0) {
    if (sys.policy == "rr") params = {{"slice_us", "0"}};
    else if (sys.policy == "cfs") params = {{"min_granularity_us", q}, {"latency_us", q}};
    else if (sys.policy == "eevdf") params = {{"slice_us", q}};
  }
  if (sys.quantum_us > 0) params.insert(params.end(), g_opt.params.begin(), g_opt.params.end());
  params.insert(params.end(), sys.params.begin(), sys.params.end());
  for (const auto& [k, v] : params) {
    try {
      rt.set_policy_param(k, v);
    } catch (const std::exception& e) {
      note += fmt::format("{}{}={} rejected ({})", note.empty() ? "" : "; ", k, v, e.what());
    }
  }
}

CellResult run_skyloft(const System& sys, int nworkers, int nmsg, std::size_t matrix_n, const std::string& cores) {
  CellResult r;
  r.sys = sys;
  r.workers = nworkers;
  r.message_threads = nmsg;
  skyloft::Config cfg = skyloft::Config::from_env();
  cfg.policy = sys.policy;
  cfg.cores = cores;
  cfg.preempt = sys.mechanism;
  if (sys.quantum_us > 0) cfg.quantum_us = static_cast<std::uint32_t>(sys.quantum_us);
  if (g_opt.spin_us) cfg.spin_us = *g_opt.spin_us;
  if (g_opt.handoff_us) cfg.handoff_us = *g_opt.handoff_us;
  if (sys.handoff_us) cfg.handoff_us = *sys.handoff_us;
  std::unique_ptr<skyloft::Runtime> rt;
  try {
    rt = std::make_unique<skyloft::Runtime>(cfg);
  } catch (const skyloft::ConfigError& e) {
    r.note = fmt::format("skipped: {}", e.what());
    return r;
  }
  tune_policy(*rt, sys, r.note);
  using C = wakeup::Cell<skyloft::Mutex, skyloft::CondVar>;
  C cell(nworkers, nmsg, matrix_n, sys.preempt_points ? &skyloft_preempt_point : nullptr, sample_reserve(nworkers));
  const auto worker_cores = rt->worker_cores();
  const int ncores = static_cast<int>(worker_cores.size());
  std::vector<skyloft::JoinHandle> handles;
  try {
    for (std::size_t i = 0; i < cell.msgs.size(); ++i) {
      skyloft::SpawnOptions o;
      o.core = worker_cores[i % static_cast<std::size_t>(ncores)];
      handles.push_back(skyloft::spawn([p = cell.msgs[i].get()] { p->run(); }, o));
    }
    for (std::size_t i = 0; i < cell.workers.size(); ++i) {
      skyloft::SpawnOptions o;
      o.core = worker_cores[i % static_cast<std::size_t>(ncores)];
      handles.push_back(skyloft::spawn([p = cell.workers[i].get(), &cell] { p->run(cell.sh); }, o));
    }
  } catch (const std::exception& e) {
    // Tasks already spawned would wait forever: stop them before giving up.
    cell.sh.stop.store(true);
    r.note = fmt::format("spawn failed: {}", e.what());
  }
  std::vector<skyloft::WorkerStats> before, after;
  std::map<int, ThreadSnap> threads_before, threads_after;
  if (r.note.rfind("spawn failed", 0) != 0) {
    drive(cell, r, [&](bool start) {
      (start ? before : after) = rt->stats();
      (start ? threads_before : threads_after) = thread_snap();
    });
  }
  for (auto& h : handles) h.join();
  auto rep = rt->shutdown();
  if (!rep.clean()) r.note += fmt::format("{}runtime did not shut down clean: {}", r.note.empty() ? "" : "; ", rep.describe());
  for (std::size_t i = 0; i < after.size() && i < before.size(); ++i) {
    r.preemptions += after[i].preemptions - before[i].preemptions;
    r.deferred += after[i].preempt_deferred - before[i].preempt_deferred;
    r.checks += after[i].preempt_checks - before[i].preempt_checks;
    r.switches += after[i].switches - before[i].switches;
    r.steals += after[i].steals - before[i].steals;
    r.idle_ns += after[i].idle_ns - before[i].idle_ns;
  }
  r.cores = static_cast<int>(std::min(after.size(), before.size()));
  r.use = role_use(threads_before, threads_after, r.window_s, static_cast<int>(worker_cores.size()));
  if (r.note.rfind("spawn failed", 0) == 0) return r;
  collect(cell, r);
  return r;
}

}  // namespace

std::string probe_custom_slices() {
  std::string why;
  std::thread([&why] { why = apply_slice(static_cast<int>(skyloft::loadgen::kMinSliceUs)); }).join();
  return why;
}

CellResult run_cell(const System& sys, int nworkers, int nmsg, std::size_t matrix_n, const std::string& cores) {
  const std::string name = fmt::format("{} x{}", sys.label, nworkers);
  // On a shared machine: wait for other processes to go quiet, and rerun a cell they disturbed, within
  // --wait-quiet seconds per cell; the least disturbed attempt is kept.
  const std::uint64_t quiet_deadline = now_ns() + static_cast<std::uint64_t>(g_opt.wait_quiet_s * 1e9);
  std::optional<CellResult> best;
  for (int attempt = 1;; ++attempt) {
    if (g_opt.wait_quiet_s > 0) {
      double left = static_cast<double>(quiet_deadline - std::min(quiet_deadline, now_ns())) / 1e9;
      if (left > 0.5) wait_quiet(left);
    }
    arm_watchdog(name);
    CellResult r;
    try {
      r = sys.native ? run_native(sys, nworkers, std::min(nmsg, nworkers), matrix_n)
                     : run_skyloft(sys, nworkers, std::min(nmsg, nworkers), matrix_n, cores);
    } catch (const std::exception& e) {
      r.sys = sys;
      r.workers = nworkers;
      r.note = fmt::format("FAILED: {}", e.what());
    }
    disarm_watchdog();
    const bool quiet = r.other_pct >= 0 && r.other_pct < 5;
    if (!best || (r.ok && (!best->ok || r.other_pct < best->other_pct))) best = r;
    if (!r.ok || quiet || g_opt.wait_quiet_s <= 0 || now_ns() >= quiet_deadline) break;
    fmt::print(stderr, "  [{}] attempt {} disturbed ({:.0f}% other CPU); retrying\n", name, attempt, r.other_pct);
  }
  CellResult r = *best;
  if (!r.ok) fmt::print(stderr, "skyloft_wakeup: {}: {}\n", name, r.note);
  else if (!r.note.empty()) fmt::print(stderr, "skyloft_wakeup: {}: note: {}\n", name, r.note);
  fmt::print(stderr, "  [{}] wake p99 {} us, req/s {:.0f}, other CPU {:.0f}%\n", name, us(r.wake.p99), r.rps,
             r.other_pct);
  return r;
}

std::thread start_watchdog() { return std::thread(watchdog); }

void stop_watchdog(std::thread& dog) {
  g_stop_watchdog.store(true);
  dog.join();
}

}  // namespace skyloft::bench::wakeup
