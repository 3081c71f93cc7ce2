// clock.cpp - now_ns(): CLOCK_MONOTONIC nanoseconds, through the TSC when it is invariant.
//
// clock_gettime costs ~23 ns on the development VM and rdtsc ~10 ns, and timers are checked on every
// scheduling decision while any are armed. The TSC rate is calibrated against CLOCK_MONOTONIC over the
// first kCalibrationNs of the clock's use, without waiting for it: the first now_ns() takes a start
// sample, every call until the window has passed answers with clock_gettime, and the first call after it
// takes the end sample and publishes the rate (start-up time matters: skyloft-run starts one runtime per
// program, and a program that ends within the window never pays for a calibration). Each sample is a clock
// read bracketed by two TSC reads, so the rate's error is the brackets' width over the window: tens of ppm
// on a quiet machine (334 ppm seen once under a ThreadSanitizer run; the cause is not established).
// Deadlines are shared with the kernel (futex timeouts), so the TSC time must not drift from
// CLOCK_MONOTONIC: each thread re-bases its TSC->ns mapping on a fresh clock_gettime every 2^23 ticks
// (~3 ms at 2.6 GHz), which bounds the drift from that error to about a microsecond (3 us at 1000 ppm).
// A CPU without an invariant TSC (CPUID 0x80000007 EDX bit 8, which is what gives Linux constant_tsc and
// nonstop_tsc) uses clock_gettime throughout.
#include <cpuid.h>
#include <time.h>
#include <x86intrin.h>

#include <atomic>
#include <cstdint>

#include "core/clock.hpp"
#include "skyloft/time.hpp"

namespace skyloft {
namespace {

std::uint64_t monotonic_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

bool cpu_has_invariant_tsc() {
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid_max(0x80000000u, nullptr) < 0x80000007u) return false;
  __cpuid(0x80000007u, eax, ebx, ecx, edx);
  return (edx & (1u << 8)) != 0;
}

// A CLOCK_MONOTONIC reading and the TSC at that moment: the midpoint of the tightest of a few brackets of
// two TSC reads around the clock read (a bracket is wide when the thread lost its core in between).
void bracketed_read(std::uint64_t& ns, std::uint64_t& tsc) noexcept {
  std::uint64_t best = UINT64_MAX;
  for (int i = 0; i < 16; ++i) {
    const std::uint64_t a = __rdtsc();
    const std::uint64_t n = monotonic_ns();
    const std::uint64_t b = __rdtsc();
    if (b - a < best) {
      best = b - a;
      ns = n;
      tsc = a + (b - a) / 2;
    }
  }
}

constexpr std::uint64_t kRebaseTicks = std::uint64_t{1} << 23;
constexpr std::uint64_t kNoTsc = UINT64_MAX;  // g_mult's value when the clock stays on clock_gettime

// ns = (ticks * mult) >> 32. 0 while calibrating; written once, by the first now_ns() after the window
// (a compare-exchange: two threads finishing at once publish near-equal rates, and the first one stays).
std::atomic<std::uint64_t> g_mult{0};

struct CalibrationStart {
  bool invariant = false;
  std::uint64_t ns = 0, tsc = 0;

  CalibrationStart() : invariant(cpu_has_invariant_tsc()) {
    if (invariant) bracketed_read(ns, tsc);
    else g_mult.store(kNoTsc, std::memory_order_relaxed);
  }
};

const CalibrationStart& calibration_start() {
  static const CalibrationStart start;  // on first use (Runtime construction), not at load time
  return start;
}

// now_ns() while the rate is not known: clock_gettime, and the end of the calibration once its window
// has passed.
std::uint64_t now_calibrating() noexcept {
  const CalibrationStart& start = calibration_start();
  const std::uint64_t ns = monotonic_ns();
  if (!start.invariant || ns - start.ns < kCalibrationNs) return ns;
  std::uint64_t ns1, t1;
  bracketed_read(ns1, t1);
  std::uint64_t mult = kNoTsc;
  if (t1 > start.tsc && ns1 > start.ns) {
    mult = static_cast<std::uint64_t>((static_cast<unsigned __int128>(ns1 - start.ns) << 32) / (t1 - start.tsc));
  }
  std::uint64_t expected = 0;
  g_mult.compare_exchange_strong(expected, mult, std::memory_order_relaxed);
  return ns;
}

std::uint64_t scaled(std::uint64_t tsc, std::uint64_t mult) noexcept {
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(tsc) * mult) >> 32);
}

// A thread's TSC->ns mapping: ns = scaled(tsc) + offset (modulo 2^64), re-based every kRebaseTicks. Each
// word is one relaxed atomic access, so a task preempted between taking &tl_base and using it, and resumed
// on another worker, reads (or, inside rebase, writes) that worker's mapping, which is as right as its own
// (a (tsc, ns) pair read torn there would have been up to a rebase period off). Written by the owning
// thread, and rarely by such a migrated task.
struct ThreadBase {
  std::atomic<std::uint64_t> offset{0};      // the clock reading minus the scaled TSC at the last rebase
  std::atomic<std::uint64_t> rebased_at{0};  // the TSC at the last rebase; 0: never
};
thread_local ThreadBase tl_base;

// A new mapping for this thread; returns the clock reading it was taken from. The thread may lose its core
// between its clock_gettime and its rdtsc; a pair taken across such a gap would put this thread's clock
// ahead of the others' by the gap for a whole rebase period (seen: a completion stamped before the request
// it answered). So the clock read is bracketed by two TSC reads and kept only when they are close. The
// pair takes the later TSC read, so this clock is never ahead of CLOCK_MONOTONIC (a deadline computed from
// it never fires early), and behind by at most the bracket.
std::uint64_t rebase(ThreadBase& base, std::uint64_t mult) noexcept {
  constexpr std::uint64_t kMaxBracketNs = 2'000;
  std::uint64_t best_gap = UINT64_MAX, best_ns = 0, best_tsc = 0;
  for (int attempt = 0; attempt < 8; ++attempt) {
    const std::uint64_t t0 = __rdtsc();
    const std::uint64_t ns = monotonic_ns();
    const std::uint64_t t1 = __rdtsc();
    const std::uint64_t gap = t1 - t0;
    if (gap < best_gap) {
      best_gap = gap;
      best_tsc = t1;
      best_ns = ns;
    }
    if (scaled(gap, mult) <= kMaxBracketNs) break;
  }
  // Minus one: floor(a) - floor(b) may exceed a - b by one, and the clock must not run ahead.
  base.offset.store(best_ns - scaled(best_tsc, mult) - 1, std::memory_order_relaxed);
  base.rebased_at.store(best_tsc, std::memory_order_relaxed);
  return best_ns;
}

}  // namespace

std::uint64_t now_ns() noexcept {
  const std::uint64_t mult = g_mult.load(std::memory_order_relaxed);
  if (mult == kNoTsc) return monotonic_ns();
  if (mult == 0) return now_calibrating();
  const std::uint64_t tsc = __rdtsc();
  ThreadBase& base = tl_base;
  const std::uint64_t at = base.rebased_at.load(std::memory_order_relaxed);
  if (at == 0 || tsc - at >= kRebaseTicks) return rebase(base, mult);  // (a later `at` wraps: a rebase)
  return scaled(tsc, mult) + base.offset.load(std::memory_order_relaxed);
}

std::uint64_t clock_tsc_mult() noexcept {
  const std::uint64_t mult = g_mult.load(std::memory_order_relaxed);
  return mult == kNoTsc ? 0 : mult;
}

bool clock_tsc_invariant() noexcept { return cpu_has_invariant_tsc(); }

}  // namespace skyloft
