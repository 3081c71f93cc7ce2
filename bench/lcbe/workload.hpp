// workload.hpp - what skyloft_lcbe's processes share and the BE work: the series, the limits, the
// MAP_SHARED page the children report through (BE counters, LC points, an error), the BE unit of work,
// a BE worker's loop and the units one core does per CPU second.
#pragma once

#include "thread_cpu.hpp"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>

#include "bench_common.hpp"
#include "inprocess.hpp"

namespace lcbe {

namespace bench = skyloft::bench;
namespace syn = skyloft::synthetic;

constexpr int kMaxCores = 64;
constexpr int kMaxPoints = 32;
constexpr int kUnitRounds = 256;                      // one BE unit of work: ~0.3 us of dependent multiplies
constexpr std::uint64_t kBeSampleNs = 1'000'000;      // the generator samples the BE counters this often
constexpr std::uint64_t kShortServiceNs = 100'000;    // acquisition samples: the short requests only
constexpr std::uint32_t kGeneratorSliceUs = 100;      // as bench/run-all (realtime.hpp)

enum class Series { sky_alone, sky_be, nice19, idle };
constexpr Series kSeries[] = {Series::sky_alone, Series::sky_be, Series::nice19, Series::idle};

const char* series_name(Series s);
bool on_skyloft(Series s);
bool has_be(Series s);

// ---- what the children report (one MAP_SHARED page set, reset per series) ----

struct alignas(64) Counter {
  std::atomic<std::uint64_t> v{0};  // written by one BE worker only
};

struct PointOut {
  double load = 0, rate = 0, achieved = 0;
  std::uint64_t sent = 0, completed = 0, unanswered = 0;
  double p50_us = 0, p99_us = 0, p999_us = 0, lag_p99_us = 0;
  double be_units_per_s = NAN;  // in the measured window; NaN without a BE app
  std::uint64_t acq_n = 0;
  double acq_p50_us = NAN, acq_p99_us = NAN, acq_max_us = NAN;
  // The LC app's CPU over the point (warm-up included), % of the machine, by thread role
  // (thread_cpu.hpp; a Linux pool's threads are all "other").
  double lc_cpu_pct[skyloft::bench::kRoles] = {NAN, NAN, NAN, NAN};
};

struct Shared {
  std::atomic<std::uint32_t> be_ready{0};  // BE child: its workers count
  std::atomic<std::uint32_t> be_stop{0};   // parent
  std::atomic<std::uint32_t> npoints{0};   // LC child, after each point
  char error[512] = {};                    // a child that fails says why here
  Counter be_units[kMaxCores];
  PointOut points[kMaxPoints];
};

void set_error(Shared* sh, const std::string& e);
std::uint64_t be_units_sum(const Shared* sh);

// ---- the BE work ----

// A BE worker's loop: units until told to stop, counted in its own slot; a preempt point per unit (the
// revocation under a daemon is seen there; outside a task it is a no-op).
void be_loop(Shared* sh, int slot);

// BE units per second of CPU time, of one thread pinned to `core` (the best of three 100 ms windows of
// its own CPU time, so that other processes on the core do not lower it).
double unit_rate_per_core(int core);

}  // namespace lcbe
