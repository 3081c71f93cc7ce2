// main.cpp - skyloft_micro: skyloft microbenchmarks side by side with std::thread and Boost.Fiber.
//
// Prints one table of median ns per operation (with min and max over the runs) for
//   1. spawn+join          an empty task / thread / fiber, created and joined from a task / thread / fiber
//   2. yield ping-pong     two tasks each yielding N times on one core; ns per yield (total time / 2N)
//   3. mutex uncontended   lock+unlock of skyloft::Mutex / std::mutex / boost::fibers::mutex
//   4. condvar 1 core      Mutex+CondVar ping-pong with a turn variable, both parties on one core; ns per
//                          round trip (A wakes B, B wakes A)
//   5. condvar 2 cores     the same with the two parties on two different cores
// Every measurement is calibrated so one run lasts about --target-ms, then repeated --runs times; the table
// shows the median of the per-run means and the min and max of them. Nothing is subtracted: the loop
// overhead and the clock reads (two per run) are included. Two-party rows time from the moment both parties
// have passed a start barrier (the first start timestamp) to the last party's end timestamp.
//
// Usage: skyloft_micro [--quick] [--runs N] [--target-ms MS] [--spin-us US] [--core C] [--cross-cores A,B]
//                      [--csv PATH] [--filter SUBSTR] [--timeout S]
//
// Files: workload.hpp/.cpp (what each row runs), runner.hpp/.cpp (options, watchdog, calibrated
// measurement), report.hpp/.cpp (rows, targets, table, CSV), main.cpp (the order of the runs).
#include <pthread.h>
#include <sched.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <fmt/format.h>

#include "skyloft/skyloft.hpp"

#include "bench_common.hpp"
#include "report.hpp"
#include "runner.hpp"
#include "workload.hpp"

using namespace skyloft::bench;
using namespace skyloft::bench::micro;

int main(int argc, char** argv) {
  parse_args(argc, argv);

  std::vector<int> allowed;
  if (!resolve_core("skyloft_micro", allowed, g_opt.core, "--core {} is not in the allowed cores {}\n")) return 2;
  bool have_cross = true;
  if (g_opt.cross.empty()) {
    if (allowed.size() >= 2) g_opt.cross = {allowed[0], allowed[1]};
    else have_cross = false;
  }
  const int core = g_opt.core;
  const int c0 = have_cross ? g_opt.cross[0] : -1;
  const int c1 = have_cross ? g_opt.cross[1] : -1;

  skyloft::Config base = make_config(std::to_string(core));

  // ---- header ----
  fmt::print("skyloft microbenchmarks\n");
  skyloft::bench::print_machine(skyloft::format_core_list(allowed));
  fmt::print("  skyloft : policy fifo, spin_us {}{}, stack {} KiB; one-core rows on core {}, cross-core row on cores {},{}\n",
             base.spin_us, g_opt.spin_us ? " (--spin-us)" : " (default/SKYLOFT_SPIN_US)", base.stack_size / 1024, core,
             have_cross ? std::to_string(c0) : "-", have_cross ? std::to_string(c1) : "-");
  fmt::print("  method  : {} runs per cell, each calibrated to ~{} ms{}; cell = median [min-max] of per-run mean ns/op\n",
             g_opt.runs, g_opt.target_ms, g_opt.quick ? " (--quick)" : "");
  std::fflush(stdout);

  std::thread dog(watchdog);

  std::vector<Row> rows = make_rows();
  Row& r_spawn = rows[0];
  Row& r_yield = rows[1];
  Row& r_mutex = rows[2];
  Row& r_cv1 = rows[3];
  Row& r_cv2 = rows[4];
  Row& r_yield_tls = rows[5];
  Row& r_spawn_tls = rows[6];
  r_yield_tls.stdt.na = r_yield_tls.boost.na = r_spawn_tls.stdt.na = r_spawn_tls.boost.na = "-";
  for (auto& r : rows) {
    if (!selected(r.key)) r.sky.na = r.stdt.na = r.boost.na = "skipped";
  }
  if (!have_cross) r_cv2.sky.na = r_cv2.stdt.na = r_cv2.boost.na = "n/a (1 core)";

  // ---- skyloft, one core ----
  if (selected("spawn_join") || selected("yield") || selected("mutex") || selected("condvar_1core")) {
    try {
      skyloft::Runtime rt(base);
      if (selected("spawn_join")) r_spawn.sky = sky_measure(rt, "skyloft spawn_join", [](std::uint64_t n) { return spawn_join(n, SkySpawn{}); });
      if (selected("yield")) r_yield.sky = sky_measure(rt, "skyloft yield",
                                                  [](std::uint64_t n) { return yield_pingpong(n, SkySpawn{}, sky_yield); });
      if (selected("mutex")) r_mutex.sky = sky_measure(rt, "skyloft mutex", lock_unlock<skyloft::Mutex>);
      if (selected("condvar_1core"))
        r_cv1.sky = sky_measure(rt, "skyloft condvar_1core",
                                [core](std::uint64_t n) { return sky_condvar(n, core, core); });
      report_shutdown(rt, "one-core");
    } catch (const std::exception& e) {
      fmt::print(stderr, "skyloft_micro: one-core runtime failed: {}\n", e.what());
    }
  }

  // ---- skyloft, one core, per-task TLS ----
  if (selected("yield_tls") || selected("spawn_join_tls")) {
    try {
      skyloft::Config cfg = base;
      cfg.task_tls = true;
      skyloft::Runtime rt(cfg);
      if (selected("yield_tls")) {
        r_yield_tls.sky = sky_measure(rt, "skyloft yield_tls",
                                      [](std::uint64_t n) { return yield_pingpong(n, SkySpawn{}, sky_yield); });
      }
      if (selected("spawn_join_tls")) {
        r_spawn_tls.sky = sky_measure(rt, "skyloft spawn_join_tls", [](std::uint64_t n) { return spawn_join(n, SkySpawn{}); });
      }
      report_shutdown(rt, "per-task TLS");
    } catch (const std::exception& e) {
      fmt::print(stderr, "skyloft_micro: per-task TLS runtime failed: {}\n", e.what());
    }
  }

  // ---- skyloft, two cores ----
  std::string cross_note;
  if (have_cross && selected("condvar_2core")) {
    try {
      skyloft::Config cfg = make_config(fmt::format("{},{}", c0, c1));
      skyloft::Runtime rt(cfg);
      auto before = rt.stats();
      r_cv2.sky = sky_measure(rt, "skyloft condvar_2core",
                              [c0, c1](std::uint64_t n) { return sky_condvar(n, c0, c1); });
      auto after = rt.stats();
      std::vector<int> cores = rt.worker_cores();
      std::vector<std::string> parts;
      for (std::size_t w = 0; w < after.size() && w < before.size(); ++w) {
        parts.push_back(fmt::format("w{}(core {}): switches {}, parks {}, steals {}", w, after[w].core,
                                    after[w].switches - before[w].switches, after[w].parks - before[w].parks,
                                    after[w].steals - before[w].steals));
      }
      const auto& pl = g_cross_placement;
      auto wc = [&](int w) { return w >= 0 && static_cast<std::size_t>(w) < cores.size() ? cores[w] : -1; };
      const std::uint64_t handoffs = pl.same_worker + pl.other_worker;
      const double cross_pct = handoffs ? 100.0 * static_cast<double>(pl.other_worker) / static_cast<double>(handoffs) : 0;
      cross_note = fmt::format(
          "* skyloft 2-core condvar placement: parties started on cores {} and {} (hints {} and {}); over the series\n"
          "  {:.1f}% of {} hand-overs crossed cores ({} same-core){}; {} task migrations in {} wake-ups\n"
          "  worker stats over the series: {}",
          wc(pl.start_worker[0]), wc(pl.start_worker[1]), c0, c1, cross_pct, handoffs, pl.same_worker,
          cross_pct < 90 ? "  <-- the row is NOT a pure cross-core measurement" : "", pl.migrations,
          pl.iterations, fmt::join(parts, "; "));
      if (cross_pct < 90 && r_cv2.sky.measured) r_cv2.sky.na = "*";  // flag the cell; see the note
      report_shutdown(rt, "two-core");
    } catch (const std::exception& e) {
      fmt::print(stderr, "skyloft_micro: two-core runtime failed: {}\n", e.what());
    }
  }

  // ---- std::thread and Boost.Fiber ----
  // The one-core rows run with the main thread pinned to `core` (threads it creates inherit that), like the
  // one-core skyloft runtime; the affinity is restored afterwards.
  cpu_set_t saved;
  CPU_ZERO(&saved);
  pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved);
  pin_self(core);

  if (selected("spawn_join")) {
    r_spawn.stdt = guarded_measure("std spawn_join", [](std::uint64_t n) { return spawn_join(n, ThreadSpawn{}); });
    r_spawn.boost = guarded_measure("boost spawn_join", [](std::uint64_t n) { return spawn_join(n, FiberSpawn{}); });
  }
  if (selected("yield")) {
    r_yield.stdt = guarded_measure("std yield", [core](std::uint64_t n) {
      return yield_pingpong(n, PinnedThreadSpawn{core, core}, std_yield);
    });
    r_yield.boost = guarded_measure("boost yield", [](std::uint64_t n) {
      return yield_pingpong(n, FiberSpawn{}, boost_yield);
    });
  }
  if (selected("mutex")) {
    r_mutex.stdt = guarded_measure("std mutex", lock_unlock<std::mutex>);
    r_mutex.boost = guarded_measure("boost mutex", lock_unlock<BoostMutex>);
  }
  if (selected("condvar_1core")) {
    r_cv1.stdt = guarded_measure("std condvar_1core", [core](std::uint64_t n) {
      return condvar_pingpong<std::mutex, std::condition_variable>(n, PinnedThreadSpawn{core, core}, std_yield);
    });
    r_cv1.boost = guarded_measure("boost condvar_1core", [](std::uint64_t n) {
      return condvar_pingpong<BoostMutex, BoostCondVar>(n, FiberSpawn{}, boost_yield);
    });
  }
  pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);

  if (have_cross && selected("condvar_2core")) {
    r_cv2.stdt = guarded_measure("std condvar_2core", [c0, c1](std::uint64_t n) {
      return condvar_pingpong<std::mutex, std::condition_variable>(n, PinnedThreadSpawn{c0, c1}, std_yield);
    });
    r_cv2.boost = guarded_measure("boost condvar_2core", [c0, c1](std::uint64_t n) {
      return condvar_pingpong<BoostMutex, BoostCondVar>(n, PinnedThreadSpawn{c0, c1}, std_yield);
    });
  }

  g_watchdog.stop.store(true);
  dog.join();

  print_report(rows, core, c0, c1, cross_note);
  return write_csv(rows) ? 0 : 1;
}
