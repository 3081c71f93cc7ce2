// workload.cpp - see workload.hpp.
#include "workload.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include <fmt/core.h>

#include "realtime.hpp"  // skyloft-loadgen's slice request
#include "skyloft/preempt.hpp"

namespace demo {

u64 mono_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<u64>(ts.tv_sec) * 1'000'000'000ull + static_cast<u64>(ts.tv_nsec);
}

void sleep_until_ns(u64 t) noexcept {
  timespec ts{static_cast<time_t>(t / 1'000'000'000ull), static_cast<long>(t % 1'000'000'000ull)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

double cpu_seconds() noexcept {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

namespace {

// The work: a dependent chain of multiply / xor-shift steps (no vectorization, no closed form).
[[gnu::noinline]] u64 spin_hash(u64 iters, u64 seed) noexcept {
  u64 x = seed | 1;
  for (u64 i = 0; i < iters; ++i) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 29;
    asm volatile("" : "+r"(x));
  }
  return x;
}

// The same chain with skyloft::preempt_point() every `every` iterations; the same value as spin_hash.
// preempt_point() does nothing outside skyloft tasks.
[[gnu::noinline]] u64 spin_hash_pp(u64 iters, u64 seed, u64 every) noexcept {
  u64 x = seed | 1;
  for (u64 done = 0; done < iters;) {
    const u64 end = std::min(iters, done + every);
    for (; done < end; ++done) {
      x ^= x >> 33;
      x *= 0xff51afd7ed558ccdull;
      x ^= x >> 29;
      asm volatile("" : "+r"(x));
    }
    skyloft::preempt_point();
  }
  return x;
}

struct SplitMix64 {
  u64 s;
  u64 next() noexcept {
    u64 z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};


}  // namespace

Calibration calibrate(double short_us, double long_us) {
  constexpr u64 kTrialIters = 400'000;
  volatile u64 sink = spin_hash(kTrialIters, 1);  // warm up (and let the CPU clock up)
  // Timed on this thread's CPU clock, the fastest of several trials: on a shared machine the wall clock
  // would also count the time other threads held the core, and shorter requests than asked would follow.
  auto thread_ns = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<u64>(ts.tv_sec) * 1'000'000'000ull + static_cast<u64>(ts.tv_nsec);
  };
  double best = 1e30;
  for (int trial = 0; trial < 9; ++trial) {
    const u64 t0 = thread_ns();
    sink = spin_hash(kTrialIters, static_cast<u64>(trial) + 2);
    best = std::min(best, static_cast<double>(thread_ns() - t0) / static_cast<double>(kTrialIters));
  }
  (void)sink;
  Calibration c;
  c.ns_per_iter = best;
  c.short_iters = std::max<u64>(1, static_cast<u64>(std::llround(short_us * 1000.0 / best)));
  c.long_iters = std::max<u64>(1, static_cast<u64>(std::llround(long_us * 1000.0 / best)));
  c.pp_iters = std::max<u64>(1, static_cast<u64>(std::llround(1000.0 / best)));
  return c;
}

Plan make_plan(const Shape& o, std::size_t ncores) {
  Plan p;
  const double mean_service_us = (1 - o.long_frac) * o.short_us + o.long_frac * o.long_us;
  p.mean_burst = o.load * static_cast<double>(ncores) * o.period_us / mean_service_us;
  SplitMix64 rng{o.seed};
  const auto nbursts = static_cast<std::size_t>(std::max(1.0, std::floor(o.seconds * 1e6 / o.period_us)));
  for (std::size_t b = 0; b < nbursts; ++b) {
    const bool surge = rng.uniform() < 0.2;
    const double center = (surge ? 2.6 : 0.6) * p.mean_burst;  // 0.8 * 0.6 + 0.2 * 2.6 = 1.0
    const auto count = static_cast<u32>(std::max(1.0, std::round(center * (0.5 + rng.uniform()))));
    p.bursts.push_back({static_cast<u64>(static_cast<double>(b) * o.period_us * 1000.0),
                        static_cast<u32>(p.is_long.size()), count});
    p.max_burst = std::max(p.max_burst, count);
    for (u32 i = 0; i < count; ++i) {
      const bool lng = rng.uniform() < o.long_frac;
      p.is_long.push_back(lng ? 1 : 0);
      (lng ? p.n_long : p.n_short)++;
    }
  }
  p.work_core_s = (static_cast<double>(p.n_short) * o.short_us + static_cast<double>(p.n_long) * o.long_us) * 1e-6;
  return p;
}

void Workload::execute(u32 i) noexcept {
  Record& r = recs[i];
  r.start = mono_ns();
  const u64 iters = plan->is_long[i] ? cal->long_iters : cal->short_iters;
  r.sink = preempt_points ? spin_hash_pp(iters, i, cal->pp_iters) : spin_hash(iters, i);
  r.done = mono_ns();
}

void confine_to(const std::vector<int>& cores) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cores) CPU_SET(c, &set);
  if (int err = pthread_setaffinity_np(pthread_self(), sizeof set, &set); err != 0) {
    fmt::print(stderr, "skyloft_demo: pthread_setaffinity_np: {}\n", std::strerror(err));
  }
}

std::string set_thread_slice_us(u32 slice_us) {
  if (std::string e = skyloft::loadgen::set_generator_slice(slice_us); !e.empty()) return e;
  // A kernel without custom slices (before 6.12) accepts the request and ignores it: read it back.
  if (slice_us != 0 && skyloft::loadgen::current_slice_us() != slice_us) {
    return fmt::format("the kernel took a {} us slice request but reports {} us (no EEVDF custom slices: Linux "
                       "6.12+)", slice_us, skyloft::loadgen::current_slice_us());
  }
  return "";
}

std::string apply_generator_sched(const GeneratorSched& gs) {
  std::string err = set_thread_slice_us(gs.slice_us);
  // On Linux nice is per thread: PRIO_PROCESS with this thread's id changes this thread only.
  if (gs.nice != 0 && setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), gs.nice) != 0) {
    if (!err.empty()) err += "; ";
    err += fmt::format("setpriority(nice {}): {}", gs.nice, std::strerror(errno));
  }
  return err;
}

void Countdown::count_down() {
  if (left_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    std::lock_guard lk(m_);
    cv_.notify_all();
  }
}

bool Countdown::wait_for(std::chrono::nanoseconds d) {
  std::unique_lock lk(m_);
  return cv_.wait_for(lk, d, [&] { return left_.load(std::memory_order_acquire) == 0; });
}

}  // namespace demo
