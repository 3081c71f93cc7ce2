// runner.hpp - running the measurements of skyloft_micro: the options, the watchdog, one calibrated series
// of runs (measure) on the calling thread or inside a skyloft task, and the skyloft Config of the rows.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "skyloft/skyloft.hpp"

#include "bench_common.hpp"

namespace skyloft::bench::micro {

// ---------------------------------------------------------------------------------------------------------
// Options

// quick, runs, core (the core of the one-core rows; -1: last allowed core), csv, filter (run only benchmarks
// whose key contains this) and timeout_s (watchdog: abort when no run finishes for this long) come from
// RunOptions.
struct Options : RunOptions {
  Options() : RunOptions(7, "results/micro.csv", 120) {}

  double target_ms = 50;
  std::optional<std::uint32_t> spin_us;
  std::vector<int> cross;         // the two cores of the cross-core row (default: first two allowed)
};

extern Options g_opt;  // written by parse_args() and main() before any measurement

void parse_args(int argc, char** argv);

// ---------------------------------------------------------------------------------------------------------
// Watchdog: a runtime bug that hangs a benchmark should produce a diagnosis, not a silent CI timeout.

extern ProgressWatchdog g_watchdog;

void watchdog();

// ---------------------------------------------------------------------------------------------------------
// Measurement

struct RunResult {
  std::uint64_t ns = 0;   // elapsed time of the run
  std::uint64_t ops = 0;  // operations it performed (the row's unit)
};
using RunFn = std::function<RunResult(std::uint64_t n)>;

struct Series {
  bool measured = false;
  std::string na;  // why it is not measured ("n/a", "skipped", an error)
  double median = 0, min = 0, max = 0;
  int runs = 0;
  std::uint64_t ops = 0;  // operations per run
};

// Calibrates n so that one run lasts about --target-ms (the calibration runs double as warm-up), then does
// --runs runs and summarizes the per-run mean ns/op. `fn` may be called on any thread/task/fiber.
Series measure(const char* label, const RunFn& fn);

// Runs one measurement inside a skyloft task, converting exceptions into a "failed" cell.
Series sky_measure(skyloft::Runtime& rt, const char* label, const RunFn& fn);

// Runs measure(label, fn) on the calling thread, converting exceptions into a "failed" cell.
Series guarded_measure(const char* label, const RunFn& fn);

// ---------------------------------------------------------------------------------------------------------
// skyloft runtimes

skyloft::Config make_config(const std::string& cores);

void report_shutdown(skyloft::Runtime& rt, const char* what);

}  // namespace skyloft::bench::micro
