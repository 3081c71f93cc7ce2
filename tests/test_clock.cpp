// test_clock.cpp - the TSC clock behind now_ns(): it calibrates without making its first caller wait,
// answers with CLOCK_MONOTONIC meanwhile, the rate it finds agrees with a long calibration, and tasks
// preempted while they read it still get the right time.
#include <time.h>
#include <x86intrin.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "core/clock.hpp"
#include "skyloft/skyloft.hpp"
#include "skyloft/time.hpp"
#include "test_util.hpp"

namespace {

using skyloft::clock_tsc_mult;
using skyloft::kCalibrationNs;
using skyloft::now_ns;

std::uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

// Calls now_ns() until the calibration has published its rate; returns CLOCK_MONOTONIC just after the call
// that saw it published (when only this thread calls now_ns(), the calibration ended inside that call, so
// no earlier than the window's end), or 0 when it was not within 10 s.
std::uint64_t wait_calibrated() {
  const std::uint64_t limit = monotonic_ns() + 10'000'000'000;
  for (std::uint64_t t = monotonic_ns(); t < limit;) {
    (void)now_ns();
    t = monotonic_ns();
    if (clock_tsc_mult() != 0) return t;
  }
  return 0;
}

TEST(Clock, FirstCallReturnsBeforeTheCalibrationEnds) {
  if (!skyloft::clock_tsc_invariant()) GTEST_SKIP() << "no invariant TSC: now_ns() is clock_gettime";
  if (clock_tsc_mult() != 0) GTEST_SKIP() << "the clock was calibrated earlier in this process";
  const std::uint64_t first = monotonic_ns();
  (void)now_ns();
  EXPECT_EQ(clock_tsc_mult(), 0u) << "the first call calibrated (waited) rather than opening the window";
  const std::uint64_t done = wait_calibrated();
  ASSERT_NE(done, 0u) << "not calibrated within 10 s";
  EXPECT_GE(done - first, kCalibrationNs) << "calibrated over less than its window";
}

// While calibrating, now_ns() is CLOCK_MONOTONIC; after, the TSC time starts each rebase period at most
// one bracket (2 us) behind CLOCK_MONOTONIC and drifts from it by the rate's error over the period
// (2^23 ticks): 200 ppm of ~4 ms is under 1 us.
TEST(Clock, TracksMonotonicAcrossTheSwitchToTheTsc) {
  const std::uint64_t end = monotonic_ns() + 3 * kCalibrationNs;
  std::uint64_t calls = 0;
  for (std::uint64_t before = monotonic_ns(); before < end; before = monotonic_ns(), ++calls) {
    const std::uint64_t n = now_ns();
    const std::uint64_t after = monotonic_ns();
    ASSERT_LE(n, after + 1'000) << "now_ns() more than 1 us ahead of CLOCK_MONOTONIC after " << calls << " calls";
    ASSERT_GE(n + 5'000, before) << "now_ns() more than 5 us behind CLOCK_MONOTONIC after " << calls << " calls";
  }
  if (skyloft::clock_tsc_invariant()) EXPECT_NE(clock_tsc_mult(), 0u);
}

// The rate from the short window agrees with one taken over 200 ms within 1000 ppm. On a quiet machine it
// is within tens of ppm (the window's brackets are tens of nanoseconds wide over its 4 ms); under a
// ThreadSanitizer run beside other tests 334 ppm was seen. What the bound protects: each thread re-bases
// every ~3 ms, so 1000 ppm is at most ~3 us of drift from CLOCK_MONOTONIC between re-bases.
TEST(Clock, RateAgreesWithALongCalibration) {
  if (!skyloft::clock_tsc_invariant()) GTEST_SKIP() << "no invariant TSC: now_ns() is clock_gettime";
  const std::uint64_t ns0 = monotonic_ns(), t0 = __rdtsc();
  ASSERT_NE(wait_calibrated(), 0u) << "not calibrated within 10 s";
  timespec rest{0, 200'000'000};
  nanosleep(&rest, nullptr);
  const std::uint64_t ns1 = monotonic_ns(), t1 = __rdtsc();
  const double reference = static_cast<double>(ns1 - ns0) / static_cast<double>(t1 - t0);
  const double measured = static_cast<double>(clock_tsc_mult()) / 4294967296.0;
  EXPECT_NEAR(measured / reference, 1.0, 1000e-6) << "ns per tick " << measured << ", reference " << reference;
}

// The mapping is per kernel thread; a task preempted inside now_ns() (it is plain code, preemptible) and
// resumed on another worker finishes the call with that worker's mapping, and may re-base it. Each word of
// it is one atomic access, so such a call still reads the right time (a torn (tsc, ns) pair would have
// been up to a rebase period, ~3 ms, off). Bounds as above (a preemption between the CLOCK_MONOTONIC reads
// only widens the interval). Moves are rare here (work stealing, hand-offs); the test guards the result,
// it cannot aim a preemption at the few instructions where a move mattered.
TEST(Clock, TasksPreemptedWhileReadingItGetTheRightTime) {
  skytest::Watchdog watchdog;
  (void)wait_calibrated();
  skyloft::Config c;
  c.preempt = "timer";
  c.quantum_us = 20;
  skyloft::Runtime rt(c);
  const std::size_t tasks = 8, reads = skytest::scaled(200000, 20000);
  std::atomic<std::size_t> ahead{0}, behind{0};
  rt.block_on([&] {
    std::vector<skyloft::JoinHandle> hs;
    for (std::size_t t = 0; t < tasks; ++t) {
      hs.push_back(skyloft::spawn([&] {
        for (std::size_t i = 0; i < reads; ++i) {
          const std::uint64_t before = monotonic_ns();
          const std::uint64_t n = now_ns();
          const std::uint64_t after = monotonic_ns();
          if (n > after + 1'000) ahead.fetch_add(1, std::memory_order_relaxed);
          if (n + 5'000 < before) behind.fetch_add(1, std::memory_order_relaxed);
          if (skytest::kTsan) skyloft::preempt_point();
        }
      }));
    }
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(ahead.load(), 0u) << "readings more than 1 us ahead of CLOCK_MONOTONIC";
  EXPECT_EQ(behind.load(), 0u) << "readings more than 5 us behind CLOCK_MONOTONIC";
  std::uint64_t preemptions = 0, steals = 0;
  for (const auto& s : rt.stats()) {
    preemptions += s.preemptions;
    steals += s.steals;
  }
  std::printf("preemptions %llu, steals %llu\n", static_cast<unsigned long long>(preemptions),
              static_cast<unsigned long long>(steals));
  EXPECT_GT(preemptions, 0u);
}

}  // namespace
