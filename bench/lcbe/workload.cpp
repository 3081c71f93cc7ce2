// workload.cpp - the series' names and kinds, the shared page's helpers and the BE work (its unit, a
// worker's loop, the per-core unit rate).
#include "workload.hpp"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "skyloft/skyloft.hpp"

namespace lcbe {

const char* series_name(Series s) {
  switch (s) {
    case Series::sky_alone: return "sky-alone";
    case Series::sky_be: return "sky+be";
    case Series::nice19: return "nice19";
    case Series::idle: return "idle";
  }
  return "?";
}
bool on_skyloft(Series s) { return s == Series::sky_alone || s == Series::sky_be; }
bool has_be(Series s) { return s != Series::sky_alone; }

void set_error(Shared* sh, const std::string& e) {
  std::snprintf(sh->error, sizeof sh->error, "%s", e.c_str());
}

std::uint64_t be_units_sum(const Shared* sh) {
  std::uint64_t s = 0;
  for (const Counter& c : sh->be_units) s += c.v.load(std::memory_order_relaxed);
  return s;
}

namespace {

// One BE unit: a chain of multiplies the compiler cannot shorten.
std::uint64_t be_unit(std::uint64_t x) {
  for (int i = 0; i < kUnitRounds; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
  return x;
}

}  // namespace

void be_loop(Shared* sh, int slot) {
  std::uint64_t x = static_cast<std::uint64_t>(slot) + 1, n = 0;
  while (sh->be_stop.load(std::memory_order_relaxed) == 0) {
    x = be_unit(x);
    ++n;
    sh->be_units[slot].v.store(n, std::memory_order_relaxed);
    skyloft::preempt_point();
  }
  bench::do_not_optimize(x);
}

double unit_rate_per_core(int core) {
  auto thread_cpu_ns = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
  };
  double best = 0;
  std::thread([&] {
    bench::pin_self(core);
    for (int k = 0; k < 3; ++k) {
      std::uint64_t x = 1, n = 0;
      const std::uint64_t t0 = thread_cpu_ns(), end = t0 + 100'000'000;
      std::uint64_t t = t0;
      while (t < end) {
        for (int i = 0; i < 64; ++i) x = be_unit(x);
        n += 64;
        t = thread_cpu_ns();
      }
      bench::do_not_optimize(x);
      best = std::max(best, static_cast<double>(n) * 1e9 / static_cast<double>(t - t0));
    }
  }).join();
  return best;
}

}  // namespace lcbe
