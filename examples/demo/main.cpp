// main.cpp - skyloft_demo, the main demonstration: a bursty mix of short and long CPU-bound requests, the
// job µs-scale preemption is for. By default 99.5% of requests take ~5 us and 0.5% take 5 ms (after the
// original's bimodal 4 us / 10 ms mix, halved for a 2-core machine), at half the cores' capacity, arriving in
// bursts. A short request that lands behind a long one waits for it on a system that runs requests to
// completion (a thread pool); the kernel can time-slice many threads, but at its own cost and granularity
// and with the request source competing for fairness. skyloft's rr policy with timer preemption gives a
// long request one quantum at a time, so short ones slip past it.
//
// Every system (systems.hpp) replays the same plan (workload.hpp) in each of --rounds rounds, the systems
// taking turns within a round; the summary gives median [min..max] over the rounds, and the headline
// compares the designated skyloft system (--headline, default rr) with the best Linux system at equal
// throughput. Output: the table on stdout, a CSV per round and system, a CSV of latency quantiles, and a
// PNG of the distributions drawn from it (examples/demo/plot_demo.py, Debian's python3-matplotlib).
#include <algorithm>
#include <cstdlib>
#include <sstream>

#include <fmt/core.h>
#include <fmt/format.h>

#include "bench_common.hpp"
#include "realtime.hpp"  // the kernel's slice range
#include "report.hpp"
#include "systems.hpp"

#ifndef SKYLOFT_DEMO_PLOT_SCRIPT
#define SKYLOFT_DEMO_PLOT_SCRIPT "examples/demo/plot_demo.py"
#endif

namespace {

using namespace demo;
namespace bench = skyloft::bench;

constexpr double kTargetRatio = 3.0;  // issue: short-request p99 >= 3x lower than Linux's best

struct Options {
  Shape shape;
  std::optional<std::string> cores;
  int rounds = 3;
  std::vector<std::string> systems = {"rr", "global-rr", "fifo", "pool", "pool-many", "pool-slices"};
  std::string headline = "rr";
  std::string csv = "results/demo.csv";
  std::string cdf_csv = "results/demo_cdf.csv";
  std::string png = "results/demo.png";
  double timeout_s = 3;
};

std::string usage_text() {
  std::string s =
      "usage: {} [options]\n"
      "  --rounds N          rounds; each runs every system once, in turn (default 3)\n"
      "  --seconds S         arrival schedule length per run (default 2)\n"
      "  --cores LIST        cores under test, e.g. 0-1 (default: all allowed cores)\n"
      "  --load F            offered CPU work as a fraction of the cores (default 0.5)\n"
      "  --period-us N       time between bursts (default 2000)\n"
      "  --short-us N        short request CPU time (default 5)\n"
      "  --long-us N         long request CPU time (default 5000)\n"
      "  --long-frac F       fraction of long requests (default 0.005)\n"
      "  --seed N            workload seed (default 42)\n"
      "  --quantum-us N      quantum of the preempting skyloft systems (default 100: where a timer\n"
      "                      interrupt costs ~20 us, as in many VMs, shorter quanta cost more than they\n"
      "                      give; see skyloft_preempt_cost)\n"
      "  --linux-threads N   threads of the many-thread Linux pools (default 64)\n"
      "  --linux-slice-us N  EEVDF custom slice of pool-slices (default 100, the kernel's minimum)\n"
      "  --gen-slice-us N    the generator thread's EEVDF slice, every system (default 100; 0: default)\n"
      "  --gen-nice N        the generator thread's nice value, every system (default 0)\n"
      "  --spin-us N         skyloft Config::spin_us (default: SKYLOFT_SPIN_US or the Config default)\n"
      "  --systems LIST      comma list (default rr,global-rr,fifo,pool,pool-many,pool-slices):\n";
  for (const auto& sys : all_systems()) s += fmt::format("      {:<12} {}\n", sys.key, sys.about);
  s +=
      "  --headline KEY      the skyloft system the headline judges (default rr)\n"
      "  --csv PATH          per-round CSV (default results/demo.csv; '-': none)\n"
      "  --cdf-csv PATH      latency quantiles CSV (default results/demo_cdf.csv; '-': none)\n"
      "  --png PATH          latency distribution plot (default results/demo.png; '-': none)\n"
      "  --timeout S         a run with no progress for S seconds is a hang (default 3)\n";
  // The text is a fmt format string with one {} (argv[0]): escape the braces of nothing else.
  return s;
}

std::vector<std::string> split_list(const std::string& v) {
  std::vector<std::string> out;
  std::stringstream ss(v);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

Options parse(int argc, char** argv, RunSettings& rs) {
  static const std::string kUsage = usage_text();
  bench::Args args(argc, argv, "skyloft_demo", kUsage);
  Options o;
  Shape& sh = o.shape;
  while (args.next()) {
    if (args.is("--rounds")) o.rounds = static_cast<int>(args.long_value("--rounds", 1, 100));
    else if (args.is("--seconds")) sh.seconds = args.double_value("--seconds", 0.01, 3600);
    else if (args.is("--cores")) o.cores = args.value();
    else if (args.is("--load")) sh.load = args.double_value("--load", 0.001, 10);
    else if (args.is("--period-us")) sh.period_us = args.double_value("--period-us", 10, 1e7);
    else if (args.is("--short-us")) sh.short_us = args.double_value("--short-us", 0.01, 1e6);
    else if (args.is("--long-us")) sh.long_us = args.double_value("--long-us", 0.01, 1e7);
    else if (args.is("--long-frac")) sh.long_frac = args.double_value("--long-frac", 0, 1);
    else if (args.is("--seed")) sh.seed = static_cast<u64>(args.long_value("--seed", 0, 1L << 62));
    else if (args.is("--quantum-us")) rs.quantum_us = static_cast<u32>(args.long_value("--quantum-us", 1, 1000000));
    else if (args.is("--linux-threads")) rs.linux_threads = static_cast<u32>(args.long_value("--linux-threads", 1, 4096));
    else if (args.is("--linux-slice-us")) {
      rs.linux_slice_us = static_cast<u32>(
          args.long_value("--linux-slice-us", skyloft::loadgen::kMinSliceUs, skyloft::loadgen::kMaxSliceUs));
    }
    else if (args.is("--gen-slice-us")) {
      rs.gen.slice_us = static_cast<u32>(args.long_value("--gen-slice-us", 0, skyloft::loadgen::kMaxSliceUs));
      if (rs.gen.slice_us != 0 && rs.gen.slice_us < skyloft::loadgen::kMinSliceUs) {
        args.usage(fmt::format("--gen-slice-us needs 0 or {}..{} (the kernel's range)", skyloft::loadgen::kMinSliceUs,
                               skyloft::loadgen::kMaxSliceUs));
      }
    } else if (args.is("--gen-nice")) rs.gen.nice = static_cast<int>(args.long_value("--gen-nice", -20, 19)); else if (args.is("--spin-us")) rs.base.spin_us = static_cast<u32>(args.long_value("--spin-us", 0, 1000000000));
    else if (args.is("--systems")) {
      o.systems = split_list(args.value());
      if (o.systems.empty()) args.usage("--systems needs at least one system");
      for (const auto& k : o.systems) {
        if (find_system(k) == nullptr) args.usage("unknown system '" + k + "' (see the list below)");
      }
    } else if (args.is("--headline")) {
      o.headline = args.value();
      const SystemSpec* s = find_system(o.headline);
      if (s == nullptr || !s->skyloft) args.usage("--headline needs a skyloft system, got '" + o.headline + "'");
    } else if (args.is("--csv")) o.csv = args.value();
    else if (args.is("--cdf-csv")) o.cdf_csv = args.value();
    else if (args.is("--png")) o.png = args.value();
    else if (args.is("--timeout")) o.timeout_s = args.double_value("--timeout", 0.1, 1e6);
    else args.usage("unknown option '" + args.arg() + "'");
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  RunSettings rs;
  try {
    rs.base = skyloft::Config::from_env();
  } catch (const std::exception& e) {
    fmt::print(stderr, "skyloft_demo: bad SKYLOFT_* environment: {}\n", e.what());
    return 2;
  }
  const Options o = parse(argc, argv, rs);
  for (int i = 0; i < argc; ++i) {
    if (i > 0) rs.repro += ' ';
    rs.repro += argv[i];
  }
  rs.timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(o.timeout_s));
  const std::vector<int> allowed = skyloft::allowed_cores();
  try {
    rs.cores = o.cores ? skyloft::parse_core_list(*o.cores) : allowed;
  } catch (const std::exception& e) {
    fmt::print(stderr, "skyloft_demo: --cores: {}\n", e.what());
    return 2;
  }
  for (int c : rs.cores) {
    if (std::find(allowed.begin(), allowed.end(), c) == allowed.end()) {
      fmt::print(stderr, "skyloft_demo: --cores: core {} is not available to this process (allowed: {})\n", c,
                 skyloft::format_core_list(allowed));
      return 2;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  // skyloft calibrates its TSC clock (a ~20 ms sleep) on the first now_ns() call; pay it before measuring.
  (void)skyloft::now_ns();
  const Calibration cal = calibrate(o.shape.short_us, o.shape.long_us);
  const Plan plan = make_plan(o.shape, rs.cores.size());
  const Shape& sh = o.shape;

  fmt::print("skyloft_demo: a bursty mix of short and long CPU-bound requests\n");
  bench::print_machine(skyloft::format_core_list(allowed));
  fmt::print("  cores under test   {} ({} core(s)), shared by the system and the generator thread (EEVDF slice {}, "
             "nice {}: it stands for the network)\n",
             skyloft::format_core_list(rs.cores), rs.cores.size(),
             rs.gen.slice_us == 0 ? std::string("default") : fmt::format("{} us", rs.gen.slice_us), rs.gen.nice);
  fmt::print("  requests           {:.1f}% short ~{} us, {:.1f}% long ~{} us of CPU work (calibrated {:.3f} ns/iter)\n",
             100 * (1 - sh.long_frac), sh.short_us, 100 * sh.long_frac, sh.long_us, cal.ns_per_iter);
  fmt::print("  arrivals           a burst every {} us for {} s: {} bursts of mean {:.1f} (max {}) requests; 20% are "
             "2.6x surges\n", sh.period_us, sh.seconds, plan.bursts.size(), plan.mean_burst, plan.max_burst);
  fmt::print("  offered load       {:.2f} of {} core(s): {} requests ({} short, {} long), {:.2f} core-s of work, seed {}; "
             "{} round(s)\n",
             sh.load, rs.cores.size(), plan.is_long.size(), plan.n_short, plan.n_long, plan.work_core_s, sh.seed,
             o.rounds);
  fmt::print("  latency            completion - scheduled arrival (the generator's lateness counts)\n\n");

  std::vector<SystemResults> results;
  for (const auto& key : o.systems) {
    results.push_back({});
    results.back().spec = find_system(key);
    results.back().label = label_of(*results.back().spec, rs);
  }
  bool hung = false;
  for (int round = 1; round <= o.rounds; ++round) {
    for (auto& res : results) {
      const SystemSpec& s = *res.spec;
      RunOutcome out;
      try {
        out = s.skyloft ? run_skyloft(s, rs, plan, cal, round == 1) : run_linux(s, rs, plan, cal);
      } catch (const std::exception& e) {
        out.label = label_of(s, rs);
        out.status = fmt::format("error: {}", e.what());
      }
      hung = hung || out.hung;
      if (out.work) print_run_line(round, out, summarize(out));
      else fmt::print("  round {}  {:<30} {}\n", round, out.label, out.status);
      res.add(round, out);
    }
  }

  const bool judged = print_summary(results, o.headline, kTargetRatio, sh.period_us);
  const std::string settings = fmt::format("cores={} load={} period_us={} short_us={} long_us={} long_frac={} seed={} "
                                           "quantum_us={} linux_threads={} linux_slice_us={} gen_slice_us={} gen_nice={}",
                                           skyloft::format_core_list(rs.cores), sh.load, sh.period_us, sh.short_us,
                                           sh.long_us, sh.long_frac, sh.seed, rs.quantum_us, rs.linux_threads,
                                           rs.linux_slice_us, rs.gen.slice_us, rs.gen.nice);
  write_files({o.csv, o.cdf_csv}, results, settings);
  if (!o.png.empty() && o.png != "-") {
    if (o.cdf_csv.empty() || o.cdf_csv == "-") fmt::print("plot: skipped (--png needs --cdf-csv)\n");
    else bench::run_plot("plot", SKYLOFT_DEMO_PLOT_SCRIPT, {o.cdf_csv, o.png}, o.png);
  }
  if (hung) {
    // An abandoned runtime is still registered and its threads are parked: skip static destruction.
    fmt::print("exit status 3: a skyloft run hung (see the HANG lines and the dump on stderr)\n");
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(3);
  }
  return judged ? 0 : 1;
}
