// runner.cpp - skyloft_micro's option parsing, watchdog, calibrated measurement and runtime helpers.
#include "runner.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>

#include <fmt/core.h>
#include <fmt/format.h>

namespace skyloft::bench::micro {

Options g_opt;

namespace {

constexpr const char* kUsage =
    "usage: {} [--quick] [--runs N] [--target-ms MS] [--spin-us US] [--core C]\n"
    "          [--cross-cores A,B] [--csv PATH] [--filter SUBSTR] [--timeout S]\n"
    "  --quick          CI smoke run: 3 runs of ~2 ms each\n"
    "  --runs N         repetitions per measurement (default 7)\n"
    "  --target-ms MS   duration of one run (default 50)\n"
    "  --spin-us US     skyloft Config::spin_us (idle-worker spin before parking)\n"
    "  --core C         core for the one-core rows (default: the last allowed core)\n"
    "  --cross-cores A,B  cores for the cross-core row (default: the first two allowed)\n"
    "  --csv PATH       CSV output (default results/micro.csv)\n"
    "  --filter SUBSTR  only benchmarks whose key contains SUBSTR\n"
    "                   (keys: spawn_join yield mutex condvar_1core condvar_2core yield_tls spawn_join_tls)\n"
    "  --timeout S      abort when no run completes for S seconds (default 120)\n";

// --cross-cores A,B: exactly two cores.
std::vector<int> cross_cores_value(skyloft::bench::Args& args) {
  std::vector<int> cross;
  std::string v = args.value();
  try {
    cross = skyloft::parse_core_list(v);
  } catch (const std::exception& e) {
    args.usage(fmt::format("--cross-cores: {}", e.what()));
  }
  if (cross.size() != 2) args.usage("--cross-cores needs exactly two cores, e.g. 0,1");
  return cross;
}

constexpr std::uint64_t kMaxN = std::uint64_t{1} << 32;

}  // namespace

void parse_args(int argc, char** argv) {
  skyloft::bench::Args args(argc, argv, "skyloft_micro", kUsage);
  std::optional<double> target_ms;  // --target-ms, when given
  parse_run_args(args, g_opt, [&] {
    if (args.is("--target-ms")) target_ms = static_cast<double>(args.long_value("--target-ms", 1, 100000));
    else if (args.is("--spin-us")) g_opt.spin_us = static_cast<std::uint32_t>(args.long_value("--spin-us", 0, 100000000));
    else if (args.is("--cross-cores")) g_opt.cross = cross_cores_value(args);
    else return false;
    return true;
  });
  // --quick: 3 runs of ~2 ms unless --runs / --target-ms say otherwise.
  if (g_opt.quick && !g_opt.runs_set) g_opt.runs = 3;
  g_opt.target_ms = target_ms.value_or(g_opt.quick ? 2 : g_opt.target_ms);
}

ProgressWatchdog g_watchdog;

void watchdog() {
  g_watchdog.run(std::chrono::milliseconds(200), g_opt.timeout_s,
                 "\nskyloft_micro: WATCHDOG: no run of '{}' finished in {} s; aborting\n");
}

Series measure(const char* label, const RunFn& fn) {
  g_watchdog.current.store(label);
  const double target = g_opt.target_ms * 1e6;
  std::uint64_t n = 1;
  RunResult r = fn(n);
  ++g_watchdog.progress;
  while (static_cast<double>(r.ns) < target / 10 && n < kMaxN) {
    double f = r.ns > 0 ? (target / 10) / static_cast<double>(r.ns) * 1.5 : 100.0;
    f = std::clamp(f, 2.0, 100.0);
    n = std::min(kMaxN, static_cast<std::uint64_t>(static_cast<double>(n) * f) + 1);
    r = fn(n);
    ++g_watchdog.progress;
  }
  double scaled = static_cast<double>(n) * target / std::max<double>(1.0, static_cast<double>(r.ns));
  n = std::clamp<std::uint64_t>(static_cast<std::uint64_t>(scaled), 1, kMaxN);

  std::vector<double> per_op;
  Series s;
  for (int i = 0; i < g_opt.runs; ++i) {
    r = fn(n);
    ++g_watchdog.progress;
    per_op.push_back(static_cast<double>(r.ns) / static_cast<double>(std::max<std::uint64_t>(1, r.ops)));
    s.ops = r.ops;
  }
  const skyloft::bench::Spread sp = skyloft::bench::spread(per_op);
  s.median = sp.median;
  s.min = sp.min;
  s.max = sp.max;
  s.runs = static_cast<int>(per_op.size());
  s.measured = true;
  return s;
}

Series sky_measure(skyloft::Runtime& rt, const char* label, const RunFn& fn) {
  Series s;
  try {
    rt.block_on([&] { s = measure(label, fn); });
  } catch (const std::exception& e) {
    fmt::print(stderr, "skyloft_micro: {} failed: {}\n", label, e.what());
    s.measured = false;
    s.na = "FAILED";
  }
  return s;
}

Series guarded_measure(const char* label, const RunFn& fn) {
  try {
    return measure(label, fn);
  } catch (const std::exception& e) {
    fmt::print(stderr, "skyloft_micro: {} failed: {}\n", label, e.what());
    Series s;
    s.na = "FAILED";
    return s;
  }
}

skyloft::Config make_config(const std::string& cores) {
  skyloft::Config cfg = skyloft::Config::from_env();
  cfg.policy = "fifo";
  cfg.cores = cores;
  if (g_opt.spin_us) cfg.spin_us = *g_opt.spin_us;
  return cfg;
}

void report_shutdown(skyloft::Runtime& rt, const char* what) {
  auto rep = rt.shutdown();
  if (!rep.clean()) fmt::print(stderr, "skyloft_micro: {} runtime did not shut down clean: {}\n", what, rep.describe());
}

}  // namespace skyloft::bench::micro
