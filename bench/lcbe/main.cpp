// main.cpp - skyloft_lcbe, LC + BE co-location (issue 10, benchmark 7b): a latency-critical server and a
// best-effort batch job on the same cores, under skyloftd's lcbe rule and under Linux's two best-effort
// settings.
// Table on stdout, CSV with --csv, PNG with --png (bench/plot_lcbe.py, /usr/bin/python3 + matplotlib).
//
// The LC app serves a Poisson stream from the in-process generator of the synthetic server
// (synthetic/inprocess.hpp: the same schedule, request slots and Linux pool), 99.5% 4 us / 0.5% 10 ms of
// spinning service (synthetic/spin.hpp). The BE app spins in units of a fixed amount of arithmetic, one
// worker per core, and counts them. Each is a process of its own (forks of this program):
//
//   sky-alone   skyloftd + the LC app (skyloft, rr with a 30 us preemption quantum)
//   sky+be      skyloftd + the BE app (skyloft, class be) + the LC app (class lc)
//   nice19      the LC app as a Linux thread pool with one FIFO, the BE app as plain threads at nice 19
//   idle        the same, the BE threads at SCHED_IDLE
//
// Load: a fraction of capacity, computed from the mix: cores / mean service time.
// BE CPU share: the BE app's units per second in the measured window over the units one core does per
// second of CPU time (measured at the start of each run by one pinned thread, by its own CPU clock, so
// other processes do not lower it), i.e. cores' worth of BE work; "of spare" divides by the cores the LC
// load leaves, cores x (1 - load). Other processes' CPU share during each series is printed beside it.
// Core acquisition (a request finding the LC app with nothing in flight, so that under sky+be every core
// is the BE app's): from the generator's submit to the request's start (its completion minus its service,
// which it spins on-core), 4 us requests only. Under sky+be that is the LC wake-up, the nudge, the BE
// worker's poll point, the handover and the LC dispatch; sky-alone shows the same path without a BE owner.
//
// Every child gets PR_SET_PDEATHSIG, and the parent stops the daemon and the apps on every exit path
// (normal end, an error, a hung child past its deadline, SIGINT / SIGTERM).
//
// Files: workload (the series, the shared page, the BE work), options (the plan from the command line),
// apps (the LC and BE app processes), runner (one series: children started, watched, stopped), report
// (lines, CSV, tables, targets); this file runs the series of every run and draws the plot.
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include <fmt/format.h>

#include "options.hpp"
#include "report.hpp"
#include "runner.hpp"
#include "workload.hpp"

using namespace lcbe;

int main(int argc, char** argv) {
  Plan plan = parse_plan(argc, argv);
  const skyloft::loadgen::RequestMix mix = skyloft::loadgen::RequestMix::parse(plan.mix_text);
  const double ncores = static_cast<double>(plan.cores.size());
  plan.capacity_rps = ncores * 1e9 / mix.mean_ns();

  // The children inherit the cores: the Linux series run on the same ones as the daemon's.
  {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c : plan.cores) CPU_SET(c, &set);
    sched_setaffinity(0, sizeof set, &set);
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);

  print_header(plan, mix);

  auto* sh = static_cast<Shared*>(mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (sh == MAP_FAILED) {
    fmt::print(stderr, "skyloft_lcbe: mmap: {}\n", std::strerror(errno));
    return 1;
  }
  std::ofstream csv;
  if (!plan.csv.empty()) csv = open_results_csv(plan.csv);
  Results results;
  std::vector<double> unit_rates;
  for (int run = 0; run < plan.runs; ++run) {
    const double unit_rate = unit_rate_per_core(plan.cores.front());
    unit_rates.push_back(unit_rate);
    fmt::print("\nrun {}: one core does {:.2f} M BE units per CPU second\n", run + 1, unit_rate / 1e6);
    for (Series s : kSeries) {
      fmt::print(stderr, "skyloft_lcbe: run {} {} ...\n", run + 1, series_name(s));
      SeriesResult r = run_series(plan, run, s, sh);
      if (!r.error.empty()) {
        fmt::print(stderr, "skyloft_lcbe: {}: {}\n", series_name(s), r.error);
        return 1;
      }
      add_series(results, csv, run, s, r, unit_rate, ncores);
    }
  }
  munmap(sh, sizeof(Shared));
  if (csv.is_open()) csv.close();

  print_report(plan, results);

  if (!plan.png.empty()) {
    fmt::print("\n");
    if (plan.csv.empty()) fmt::print("plot: skipped (--png needs --csv)\n");
    else bench::run_plot("plot", SKYLOFT_LCBE_PLOT_SCRIPT, {plan.csv, plan.png}, plan.png);
  }
  return 0;
}
