// workload.hpp - what skyloft_preempt_cost measures and how: the TSC clock and its calibration, the busy
// loop every cell runs (chunks of kChunk iterations, one timestamp per chunk), the normal chunk duration it
// is compared with, and the per-thread counters read around a run (involuntary switches, run-queue wait).
#pragma once

#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>
#include <x86intrin.h>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <limits>

#include "skyloft/preempt.hpp"

#include "bench_common.hpp"

namespace preempt_cost {

using namespace skyloft::bench;

constexpr unsigned kChunk = 256;  // loop iterations between two timestamps
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------------------------------------------------
// Clock: raw TSC, calibrated against steady_clock.

extern double g_ticks_per_ns;  // written once by calibrate_tsc() before any run

inline std::uint64_t rdtsc() { return __rdtsc(); }

// Sets g_ticks_per_ns from rdtsc and steady_clock over `ms` milliseconds of sleep.
void calibrate_tsc(int ms);

inline double ticks_to_us(double ticks) { return ticks / g_ticks_per_ns / 1000.0; }
inline std::uint64_t us_to_ticks(double us) { return static_cast<std::uint64_t>(us * 1000.0 * g_ticks_per_ns); }

// Involuntary context switches of the calling kernel thread: another thread took its core.
long nivcsw();

// Time the calling kernel thread spent runnable but waiting for a CPU (schedstat field 2), ns.
std::uint64_t runq_wait_ns();

inline pid_t gettid_() { return static_cast<pid_t>(syscall(SYS_gettid)); }
inline int tgkill_(pid_t tgid, pid_t tid, int sig) { return static_cast<int>(syscall(SYS_tgkill, tgid, tid, sig)); }

// ---------------------------------------------------------------------------------------------------------
// The busy loop, shared by every cell.

struct alignas(64) LoopShared {
  std::atomic<std::uint64_t> marker{0};          // skyloft: 1 + index of the task that ran last; bare: handler count
  std::uint64_t length = 0;                      // the window, tsc ticks
  std::atomic<std::uint64_t> deadline{0};        // t_start + length, set by the first loop entry
  std::atomic<std::uint64_t> t_start{0};         // tsc of the first loop entry
  std::atomic<std::uint64_t> last_ts[2] = {0, 0};
  std::uint64_t excess[2] = {0, 0};              // ticks of chunks slower than kGapFactor x the normal chunk
};

// The normal chunk duration (ticks), measured once on the busy core at start, and the gap threshold.
extern std::uint64_t g_chunk_ticks;    // written once by calibrate_chunk() before any run
extern std::uint64_t g_gap_threshold;  // likewise
constexpr double kGapFactor = 2.5;

struct SelfSend {
  std::uint64_t next = 0, period = 0;
  pid_t pid = 0, tid = 0;
};

// Runs until s.deadline; returns the iterations done. on_change(prev, now, marker) runs when the marker
// differs from the expected value and returns the new expected value.
template <bool kPoint, bool kSelfSend, class OnChange>
__attribute__((noinline)) std::uint64_t busy_loop(LoopShared& s, int idx, std::uint64_t expect, OnChange&& on_change,
                                                  SelfSend* send) {
  std::uint64_t chunks = 0, excess = 0;
  std::uint64_t prev = rdtsc();
  std::uint64_t zero = 0;
  if (s.t_start.compare_exchange_strong(zero, prev, std::memory_order_relaxed)) {
    s.deadline.store(prev + s.length, std::memory_order_release);
  }
  const std::uint64_t deadline = s.deadline.load(std::memory_order_acquire);  // same core: already stored
  for (;;) {
    for (unsigned i = 0; i < kChunk; ++i) {
      if constexpr (kPoint) skyloft::preempt_point();
      asm volatile("" : "+r"(i));
    }
    ++chunks;
    std::uint64_t m = s.marker.load(std::memory_order_relaxed);
    std::uint64_t now = rdtsc();
    s.last_ts[idx].store(now, std::memory_order_relaxed);
    std::uint64_t d = now - prev;
    if (__builtin_expect(m != expect, 0)) expect = on_change(prev, now, m, d);
    if (__builtin_expect(d > g_gap_threshold, 0)) excess += d - g_chunk_ticks;
    if constexpr (kSelfSend) {
      if (now >= send->next) {
        tgkill_(send->pid, send->tid, SIGUSR1);
        send->next += send->period;
        if (send->next < now) send->next = now + send->period;
      }
    }
    prev = now;
    if (now >= deadline) break;
  }
  s.excess[idx] = excess;
  return chunks * kChunk;
}

// Measures g_chunk_ticks on `core` and sets g_gap_threshold = kGapFactor x g_chunk_ticks.
void calibrate_chunk(int core);

}  // namespace preempt_cost
