// main.cpp - skyloft_wakeup, a schbench-style wake-up latency benchmark: skyloft policies and preemption mechanisms
// against native Linux threads (the kernel's scheduler).
//
// Model (after schbench's default mode, as the Skyloft paper ran it): M message threads each own W/M
// workers. A worker puts itself on its message thread's list, wakes the message thread and waits on its
// own mailbox. The message thread takes its whole list, stamps the time once, and wakes every worker on it
// (mailbox flag + notify). A woken worker records
//   wake-up latency = the moment it runs again - the message thread's stamp,
// then serves one request: a naive matrix multiply calibrated at start to take about --work-us (1 ms) on
// this machine, and records
//   request latency = the moment the multiply ends - the moment it started (schbench's definition),
// and goes back to its message thread. Requests/s = requests completed in the measured window / window.
// With more workers than cores every worker is runnable most of the time, so the wake-up latency is how
// long a freshly woken thread waits for a core: the scheduler's time slice at work.
//
// skyloft: message threads and workers are skyloft tasks (spawned from the controlling thread, not
// pinned; worker i starts on core i mod cores), mailboxes are skyloft::Mutex + skyloft::CondVar. The
// multiply calls skyloft::preempt_point() once per matrix row (~N^2 multiply-adds, ~10 us) unless preempt
// points are off, so the flag and hybrid mechanisms can preempt it cooperatively; timer and dispatcher
// interrupt it with a signal wherever it is. native: std::thread, std::mutex, std::condition_variable, the
// same loop (preempt_point() is a no-op outside tasks), threads not pinned (the process's allowed cores).
// "native slice Xus": the same threads, each of which (workers and message threads) first asks the kernel
// for an EEVDF custom slice of X us (sched_attr.sched_runtime, Linux 6.12+; skyloft-loadgen's
// set_generator_slice), Linux at its best latency for the quantum. The kernel takes 100 us..100 ms, so a
// shorter quantum gets the 100 us row (its note says so); a kernel without custom slices (it ignores the
// request: read back with sched_getattr) gets rows that say "kernel lacks custom slices", and the run goes on.
//
// Experiments:
//   (b) p50/p90/p99/p99.9 wake-up and request latency and requests/s for 2..32 workers: native (default
//       slice, and a custom slice per quantum of (b)), skyloft fifo without preemption, and rr, cfs, eevdf
//       at 50 and 200 us under --mechanism (hybrid).
//   (c) quantum sweep at --sweep-workers (16) with --sweep-policy (rr): timer, dispatcher, flag, hybrid x
//       20, 50, 100, 200, 500 us; timer and dispatcher rows run WITHOUT preempt points in the work loop
//       (the signal is their only way in), flag and hybrid rows with them; native rows with the custom
//       slices of those quanta (100, 200, 500 us).
//   (h) headline at 8 workers per core: --rounds (3) rounds, each running, in an order that rotates from
//       round to round, native (default slice), native with the headline quantum as custom slice (100 us),
//       and skyloft's best preemptive configuration for this job (--headline-system, default rr/flag/50;
//       a list adds more skyloft rows to the same rounds). Prints median [min..max] over the rounds of
//       requests/s and p99 wake-up, and the two ratios against native with the custom slice (ratio of the
//       medians; per-round ratios as the spread), judged against the target: p99 >= 10x lower at >= 95% of
//       its requests/s.
//       Why rr/flag/50us (3 interleaved rounds at 16 workers on 2 cores, quiet machine): with 8 runnable
//       tasks per core rr's p99 is about 8 quanta, and Linux with 100 us slices has a p99 of ~9 ms, so the
//       target needs a quantum of at most ~100 us. rr/flag/50us: ~1470 req/s at p99 ~0.7 ms; rr/timer/100us:
//       ~1350 req/s at ~0.83 ms; rr/flag/100us: ~1520 req/s but p99 ~1 ms (under 10x); rr/hybrid/50us:
//       ~1060 req/s (its ticker also signals). The work loop has preempt points, so flag never pays for a
//       signal; a timer interrupt costs ~18 us of vCPU time on a VM.
// Per skyloft cell the tables also say where the CPU went: the policy's checks, preemptions and switches
// per second, idle time, the CPU share of the monitor thread (skyloft-sysmon) and of the preemption ticker
// (skyloft-tick: its wake-ups per second), and how often the kernel preempted the worker threads.
// Each cell: a fresh runtime (or fresh threads), --warmup-ms of warm-up whose samples are dropped, then
// --seconds measured. Tables on stdout, CSV in --csv-dir (wakeup.csv, wakeup_sweep.csv, wakeup_headline.csv
// with one row per round and system), and the PNG plots drawn by bench/plot_wakeup.py when /usr/bin/python3
// has matplotlib.
//
// The program: options.{hpp,cpp} (flags), systems.{hpp,cpp} (the rows), runner.{hpp,cpp} (one cell),
// report.{hpp,cpp} (tables, CSV, plots, the headline's verdict); the workload: ../wakeup_workload.hpp.
// This file builds the systems of each experiment and runs (b), (c) and (h) in order.
//
// Usage: skyloft_wakeup --help

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "skyloft/skyloft.hpp"

#include "options.hpp"
#include "report.hpp"
#include "runner.hpp"
#include "systems.hpp"
#include "wakeup_workload.hpp"

using namespace skyloft::bench::wakeup;

int main(int argc, char** argv) {
  parse_args(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  std::vector<int> allowed = skyloft::allowed_cores();
  if (allowed.empty()) {
    fmt::print(stderr, "skyloft_wakeup: no allowed cores\n");
    return 2;
  }
  const std::string cores = skyloft::format_core_list(allowed);
  const int ncores = static_cast<int>(allowed.size());
  const int nmsg = g_opt.message_threads > 0 ? g_opt.message_threads : ncores;

  auto [matrix_n, work_us] = calibrate(g_opt.work_us);

  // ---- the systems ----
  g_no_slices = probe_custom_slices();
  std::vector<System> b_systems;
  b_systems.push_back(native_system(0));
  for (const auto& s : native_slice_systems(g_opt.b_quanta)) b_systems.push_back(s);
  b_systems.push_back(skyloft_system("fifo", "none", 0));
  for (const auto& pol : g_opt.b_policies) {
    for (int q : g_opt.b_quanta) b_systems.push_back(skyloft_system(pol, g_opt.mechanism, q));
  }
  std::vector<System> c_native = {native_system(0)};  // (c)'s native rows: default slice first
  for (const auto& s : native_slice_systems(g_opt.sweep_quanta)) c_native.push_back(s);
  std::vector<System> c_systems;
  for (const auto& mech : g_opt.sweep_mechanisms) {
    for (int q : g_opt.sweep_quanta) c_systems.push_back(skyloft_system(g_opt.sweep_policy, mech, q));
  }
  // (h): native default, native with the headline quantum as custom slice, skyloft's configuration.
  std::vector<System> h_systems;
  const int h_workers = 8 * ncores;
  if (g_opt.run_h) {
    for (const auto& spec : split(g_opt.headline_system)) {
      auto sky = parse_headline_system(spec);
      if (!sky) {
        fmt::print(stderr, "skyloft_wakeup: --headline-system needs POLICY/MECHANISM/QUANTUM_US[:KEY=VALUE...], "
                           "got '{}'\n", spec);
        return 2;
      }
      if (h_systems.empty()) h_systems = {native_system(0), native_slice_systems({sky->quantum_us}).front()};
      h_systems.push_back(*sky);
    }
    if (h_systems.empty()) {
      fmt::print(stderr, "skyloft_wakeup: --headline-system needs at least one system\n");
      return 2;
    }
  }
  auto measured_in_b = [&](const std::string& label, int workers) {
    return g_opt.run_b && std::find(g_opt.workers.begin(), g_opt.workers.end(), workers) != g_opt.workers.end() &&
           std::any_of(b_systems.begin(), b_systems.end(), [&](const System& s) { return s.label == label; });
  };
  std::size_t planned_cells = (g_opt.run_b ? b_systems.size() * g_opt.workers.size() : 0) +
                              (g_opt.run_c ? c_systems.size() : 0) +
                              (g_opt.run_h ? h_systems.size() * static_cast<std::size_t>(g_opt.rounds) : 0);
  for (const auto& s : c_native) planned_cells += g_opt.run_c && !measured_in_b(s.label, g_opt.sweep_workers) ? 1 : 0;

  print_header(cores, nmsg, matrix_n, work_us, planned_cells);

  std::thread dog = start_watchdog();
  auto run = [&](const System& sys, int nworkers) { return run_cell(sys, nworkers, nmsg, matrix_n, cores); };

  Cells cells;
  // ---- (b) ----
  if (g_opt.run_b) {
    for (const auto& sys : b_systems) {
      for (int w : g_opt.workers) cells.b_cells.push_back(run(sys, w));
    }
    for (const auto& r : cells.b_cells) {
      if (r.sys.native && r.sys.slice_us == 0 && r.workers == g_opt.sweep_workers && r.ok) cells.native_sweep = r;
    }
  }
  // ---- (c) ----
  if (g_opt.run_c) {
    // Native rows at the sweep's worker count: taken from (b) when it measured them.
    for (const auto& sys : c_native) {
      auto it = std::find_if(cells.b_cells.begin(), cells.b_cells.end(), [&](const CellResult& r) {
        return r.sys.label == sys.label && r.workers == g_opt.sweep_workers;
      });
      cells.c_native_cells.push_back(it != cells.b_cells.end() ? *it : run(sys, g_opt.sweep_workers));
    }
    if (cells.c_native_cells.front().ok) cells.native_sweep = cells.c_native_cells.front();
    for (const auto& sys : c_systems) cells.c_cells.push_back(run(sys, g_opt.sweep_workers));
  }
  // ---- (h) ----  the systems take turns within each round, the first one rotating from round to round
  for (int round = 1; g_opt.run_h && round <= g_opt.rounds; ++round) {
    for (std::size_t k = 0; k < h_systems.size(); ++k) {
      CellResult r = run(h_systems[(k + static_cast<std::size_t>(round - 1)) % h_systems.size()], h_workers);
      r.round = round;
      cells.h_cells.push_back(r);
    }
  }
  stop_watchdog(dog);

  print_tables(b_systems, cells, ncores);
  if (g_opt.run_h) print_headline(h_systems, cells.h_cells, ncores, h_workers);
  return write_csv_and_plots(cells);
}
