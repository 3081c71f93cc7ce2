// workload.cpp - the calibrations of skyloft_preempt_cost (TSC against steady_clock, the normal chunk
// duration on the busy core) and the per-thread counters read around a run.
#include "workload.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

namespace preempt_cost {

double g_ticks_per_ns = 1.0;

void calibrate_tsc(int ms) {
  std::uint64_t n0 = now_ns(), t0 = rdtsc();
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  std::uint64_t n1 = now_ns(), t1 = rdtsc();
  g_ticks_per_ns = static_cast<double>(t1 - t0) / static_cast<double>(n1 - n0);
}

// Involuntary context switches of the calling kernel thread: another thread took its core.
long nivcsw() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_nivcsw;
}

// Time the calling kernel thread spent runnable but waiting for a CPU (schedstat field 2), ns.
std::uint64_t runq_wait_ns() {
  std::FILE* f = std::fopen("/proc/thread-self/schedstat", "r");
  if (!f) return 0;
  unsigned long long run = 0, wait = 0;
  int n = std::fscanf(f, "%llu %llu", &run, &wait);
  std::fclose(f);
  return n == 2 ? wait : 0;
}

std::uint64_t g_chunk_ticks = 0;
std::uint64_t g_gap_threshold = 0;

void calibrate_chunk(int core) {
  // The normal chunk duration: the loop alone on the busy core for 50 ms (median of 3).
  std::vector<double> per;
  for (int i = 0; i < 3; ++i) {
    std::thread t([&] {
      pin_self(core);
      LoopShared s;
      s.length = us_to_ticks(50'000);
      g_gap_threshold = ~0ull;
      auto nop = [](std::uint64_t, std::uint64_t, std::uint64_t m, std::uint64_t&) { return m; };
      std::uint64_t it = busy_loop<false, false>(s, 0, 0, nop, nullptr);
      per.push_back(static_cast<double>(s.length) / static_cast<double>(it / kChunk));
    });
    t.join();
  }
  std::sort(per.begin(), per.end());
  g_chunk_ticks = static_cast<std::uint64_t>(per[1]);
  g_gap_threshold = static_cast<std::uint64_t>(kGapFactor * static_cast<double>(g_chunk_ticks));
}

}  // namespace preempt_cost
