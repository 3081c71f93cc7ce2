// workload.hpp - the demo's workload, identical on every system: calibrated CPU work, the bursty arrival
// plan (a seed gives the same plan on every system and round), the per-request records, and the generator
// thread that replays the plan.
//
// Latency is measured from a request's *scheduled* arrival (its burst's time in the plan), not from when
// the generator got around to creating it: a system whose threads keep the generator off its core pays for
// that lateness in its latencies (no coordinated omission). How late the generator was is reported apart.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace demo {

using u64 = std::uint64_t;
using u32 = std::uint32_t;

u64 mono_ns() noexcept;      // CLOCK_MONOTONIC, the one clock of every system
double cpu_seconds() noexcept;  // this process's user + system CPU time

// How many hash-loop iterations make the requested amounts of CPU work on this machine.
struct Calibration {
  double ns_per_iter = 0;
  u64 short_iters = 0;
  u64 long_iters = 0;
  u64 pp_iters = 0;  // iterations per ~1 us of work: the spacing of preempt points in the cooperative loop
};
Calibration calibrate(double short_us, double long_us);

// The shape of the arrival plan (the demo's --load, --period-us, ... flags).
struct Shape {
  double seconds = 2.0;    // length of the schedule
  double load = 0.5;       // offered CPU work / cores under test
  double period_us = 2000; // time between bursts
  double short_us = 5;
  double long_us = 5000;   // the original's bimodal mix: 99.5% ~4 us, 0.5% 10 ms
  double long_frac = 0.005;
  u64 seed = 42;
};

// Bursts every period: 80% "normal" (around 0.6x the mean size), 20% "surges" (around 2.6x), each jittered
// by +-50%; the mean burst size makes `load` of `ncores` cores' worth of work.
struct Plan {
  struct Burst {
    u64 offset_ns;  // from the start of the run
    u32 first;      // index of its first request
    u32 count;
  };
  std::vector<Burst> bursts;
  std::vector<std::uint8_t> is_long;  // per request
  double mean_burst = 0;
  u32 max_burst = 0;
  std::size_t n_short = 0, n_long = 0;
  double work_core_s = 0;  // total CPU work of all requests, in core-seconds
};
Plan make_plan(const Shape& shape, std::size_t ncores);

struct Record {
  u64 arrival = 0;  // scheduled arrival (the burst's time), set by the generator
  u64 created = 0;  // when the generator handed it to the system
  u64 start = 0;    // set by whoever runs it
  u64 done = 0;     // 0: never completed
  u64 sink = 0;     // the hash result, so the work cannot be optimized away
};

struct Workload {
  const Plan* plan;
  const Calibration* cal;
  std::vector<Record> recs;
  bool preempt_points = false;  // call skyloft::preempt_point() about every microsecond of work

  Workload(const Plan* p, const Calibration* c) : plan(p), cal(c), recs(p->is_long.size()) {}
  // The body of request i, run by whatever executes it.
  void execute(u32 i) noexcept;
};

// Confines the calling thread to `cores` (the cores under test); prints why when the kernel refuses.
void confine_to(const std::vector<int>& cores);

// An EEVDF custom slice (sched_attr.sched_runtime, Linux 6.12+) for the calling thread; 0: the default
// slice. Returns "" or why the kernel refused.
std::string set_thread_slice_us(u32 slice_us);

// The generator thread's kernel scheduling, the same on every system: it stands for the network (a NIC's
// interrupt), so it should run when its burst is due, whatever the system's threads do. A short slice makes
// it preempt a running thread when it wakes; a high priority (nice -20) keeps a pool of many threads from
// out-voting it on fairness (with 64 threads at nice 0 its fair share would be 1/65 of the cores, less
// than it needs to hand over a surge).
struct GeneratorSched {
  u32 slice_us = 100;  // 0: the default slice
  int nice = 0;        // setpriority of the generator thread (needs CAP_SYS_NICE below 0)
};

struct GenResult {
  u64 max_lag_ns = 0;       // how far behind its schedule the generator handed over a request
  std::string sched_error;  // why the generator could not get its GeneratorSched, if it could not
};

// Applies `gs` to the calling thread; returns "" or what the kernel refused.
std::string apply_generator_sched(const GeneratorSched& gs);

// Replays the plan on the calling thread (confined to `cores`, scheduled as `gs`): sets each record's
// arrival and created times and calls submit(i) for every request at its burst's time.
template <class Submit>
GenResult generate(Workload& w, const std::vector<int>& cores, const GeneratorSched& gs, std::atomic<u32>& submitted,
                   Submit&& submit);

// A countdown with a timed wait, for the kernel-thread systems.
class Countdown {
 public:
  explicit Countdown(std::size_t n) : left_(n) {}
  void count_down();
  bool wait_for(std::chrono::nanoseconds d);
  std::size_t left() const { return left_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::size_t> left_;  // written by every request's runner
  std::mutex m_;
  std::condition_variable cv_;
};

void sleep_until_ns(u64 t) noexcept;

template <class Submit>
GenResult generate(Workload& w, const std::vector<int>& cores, const GeneratorSched& gs, std::atomic<u32>& submitted,
                   Submit&& submit) {
  GenResult g;
  confine_to(cores);
  g.sched_error = apply_generator_sched(gs);
  const u64 t0 = mono_ns() + 1'000'000;  // start 1 ms from now
  for (const auto& b : w.plan->bursts) {
    const u64 target = t0 + b.offset_ns;
    sleep_until_ns(target);
    for (u32 i = b.first; i < b.first + b.count; ++i) {
      const u64 now = mono_ns();
      w.recs[i].arrival = target;
      w.recs[i].created = now;
      if (now > target) g.max_lag_ns = std::max(g.max_lag_ns, now - target);
      submit(i);
      submitted.store(i + 1, std::memory_order_relaxed);
    }
  }
  return g;
}

}  // namespace demo
