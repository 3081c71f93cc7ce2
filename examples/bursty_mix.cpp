// bursty_mix.cpp - skyloft_demo, the main demonstration: a bursty mix of short and long CPU-bound requests
// run on skyloft and on plain kernel threads, with the latency tables printed side by side.
//
// The workload (identical for every system, same seed):
//   * Every --period-us (2 ms) the load generator emits a burst of B requests. B is random: 80% of bursts
//     are "normal" (around 0.6x the mean) and 20% are "surges" (around 2.6x the mean), each jittered by
//     +-50%. The mean burst size is derived from --load, the offered CPU work as a fraction of the cores
//     under test: mean B = load * cores * period / mean service time. (The classic "50..400 requests per
//     burst" would be 2-5 cores' worth of work every 2 ms, more than a small machine can serve at all,
//     so the burst size is scaled to the machine instead of being fixed.)
//   * Each request is pure CPU work: 95% short (--short-us, ~5 us) and 5% long (--long-us, ~500 us) of a
//     dependent multiply/xor-shift hash loop. The loop's iteration count is calibrated once at start, so a
//     request is a fixed amount of CPU work, not a wall-clock spin (a preempted thread does not "finish"
//     its work by the clock running out).
//   * latency = completion time - arrival time, where arrival is the moment the generator created the
//     request. All timestamps come from CLOCK_MONOTONIC, the same clock for every system.
//
// Systems, run one after the other (only one skyloft::Runtime may exist at a time), default order:
//   skyloft fifo       one task per request (skyloft::spawn, detached), the fifo policy on every listed core,
//                      no preemption (run to completion).
//   skyloft rr-timer   the same tasks on the per-CPU round-robin policy "rr", preempted by the "timer"
//                      mechanism (a POSIX per-worker timer signals the worker every 100 us quantum while
//                      another task waits for its core). The request loop has no preempt points: the
//                      interrupt alone takes the core away from a long request.
//   skyloft rr-hybrid  rr again with the "hybrid" mechanism and a 50 us quantum: the ticker thread raises
//                      the worker's flag when the quantum expires and the request loop, which calls
//                      skyloft::preempt_point() about every microsecond of work (only in this system; see
//                      Workload::execute), yields there; a signal is sent only if a task does not reach a
//                      preempt point within the grace period (Config::hybrid_grace_us), which with a
//                      preempt point every microsecond happens rarely here.
//   skyloft sq         fifo-like tasks on the centralized single-queue policy, no preemption: a dispatcher
//                      thread owns the first core and the workers get the rest (on 2 cores that is 1 worker).
//   threads            one std::thread per request (thread-per-request), the naive baseline, time-sliced by
//                      the kernel.
//   pool               a fixed pool of std::threads (one per core) sharing a mutex/condvar queue, the fair
//                      baseline; a pool thread runs each request to completion.
// With rr a long request gets one quantum and goes to the tail of its worker's queue, so a short request
// waits at most about a quantum per long request ahead of it instead of a whole ~500 us; the long requests
// pay for that with more waiting (and the switches cost some CPU).
//
// Why the load generator is a plain std::thread and not a skyloft task: it has to be the same code in all
// systems, and it stands for an outside source of requests (the network). fifo and sq do not preempt, so a
// generator task that sleeps between bursts would only wake up once the worker it is queued on finishes
// whatever (possibly 500 us long) task it is running, skewing the arrival pattern for those runs alone; a
// kernel thread is woken by the kernel's timer on time whatever the workers are doing. Spawning tasks from
// a plain thread is supported by the API. The generator, the thread-per-request threads and the pool
// threads are all confined to the cores under test (--cores), like skyloft's workers.
//
// Output: a header with the settings, per-worker skyloft stats after each skyloft run (with preemption
// counters for the rr systems), one summary table,
// and a CSV with the same numbers (--csv, default results/demo.csv); --requests-csv dumps every request.
// A skyloft run that makes no progress (no request submitted or completed) for --timeout seconds is reported (HANG row, runtime dump on stderr with
// a repro line), abandoned, and the demo goes on with the other systems, then exits with status 3.
// DEMO_NO_CLOCK_WARMUP=1 skips the clock warm-up in main() (to reproduce the start-up stall it avoids).
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "skyloft/skyloft.hpp"

namespace {

using u64 = std::uint64_t;
using u32 = std::uint32_t;

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

// ---------------------------------------------------------------------------------------------------------
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

// The same chain with skyloft::preempt_point() every `every` iterations (about a microsecond of work, see
// Calibration::pp_iters): the cooperative variant used by "rr-hybrid". It computes the same value as
// spin_hash(iters, seed). preempt_point() does nothing outside skyloft tasks.
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

struct Calibration {
  double ns_per_iter = 0;
  u64 short_iters = 0;
  u64 long_iters = 0;
  u64 pp_iters = 0;  // iterations per ~1 us of work: the preempt-point spacing of the cooperative loop
};

Calibration calibrate(double short_us, double long_us) {
  constexpr u64 kTrialIters = 400'000;
  volatile u64 sink = spin_hash(kTrialIters, 1);  // warm up (and let the CPU clock up)
  double best = 1e30;
  for (int trial = 0; trial < 7; ++trial) {
    u64 t0 = mono_ns();
    sink = spin_hash(kTrialIters, static_cast<u64>(trial) + 2);
    u64 t1 = mono_ns();
    best = std::min(best, static_cast<double>(t1 - t0) / static_cast<double>(kTrialIters));
  }
  (void)sink;
  Calibration c;
  c.ns_per_iter = best;
  c.short_iters = std::max<u64>(1, static_cast<u64>(std::llround(short_us * 1000.0 / best)));
  c.long_iters = std::max<u64>(1, static_cast<u64>(std::llround(long_us * 1000.0 / best)));
  c.pp_iters = std::max<u64>(1, static_cast<u64>(std::llround(1000.0 / best)));
  return c;
}

// ---------------------------------------------------------------------------------------------------------
// Options.

struct Options {
  double seconds = 2.0;             // length of the arrival schedule, per system
  std::optional<std::string> cores; // nullopt: every core we may run on
  u32 spin_us = 0;                  // Config::spin_us (default from Config / SKYLOFT_SPIN_US)
  std::string csv = "results/demo.csv";
  std::string requests_csv;        // optional per-request dump (empty: none)
  u64 seed = 42;
  double load = 0.4;                // offered CPU work / cores under test
  double period_us = 2000;
  double short_us = 5;
  double long_us = 500;
  double long_frac = 0.05;
  double timeout_s = 3;             // hang = no request submitted or completed for this long
  std::vector<std::string> systems = {"fifo", "rr-timer", "rr-hybrid", "sq", "threads", "pool"};
};

[[noreturn]] void usage(int code) {
  std::FILE* out = code == 0 ? stdout : stderr;
  fmt::print(out,
             "usage: skyloft_demo [options]\n"
             "  --seconds S     arrival schedule length per system (default 2)\n"
             "  --cores LIST    cores under test, e.g. 0-1 (default: all allowed cores)\n"
             "  --spin-us N     skyloft spin-before-park, Config::spin_us (default: SKYLOFT_SPIN_US or 50)\n"
             "  --csv PATH      CSV output (default results/demo.csv; '-' disables)\n"
             "  --requests-csv PATH  also write every request (system, arrival, start, done, long) there\n"
             "  --seed N        workload seed (default 42)\n"
             "  --load F        offered CPU work as a fraction of the cores under test (default 0.4)\n"
             "  --period-us N   time between bursts (default 2000)\n"
             "  --short-us N    short request CPU time (default 5)\n"
             "  --long-us N     long request CPU time (default 500)\n"
             "  --long-frac F   fraction of long requests (default 0.05)\n"
             "  --systems LIST  comma list of fifo,rr-timer,rr-hybrid,sq,threads,pool (default: all,\n"
             "                  in that order); rr-timer: rr policy, timer preemption, 100 us quantum, no\n"
             "                  preempt points; rr-hybrid: rr, hybrid preemption, 50 us quantum, a preempt\n"
             "                  point every ~1 us of work; fifo and sq do not preempt\n"
             "  --timeout S     declare a hang after S seconds without progress (default 3)\n");
  std::exit(code);
}

double parse_double(std::string_view flag, const std::string& v, double lo, double hi) {
  std::size_t pos = 0;
  double d = 0;
  try {
    d = std::stod(v, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos != v.size() || !(d >= lo && d <= hi)) {
    fmt::print(stderr, "skyloft_demo: {} needs a number in [{}, {}], got '{}'\n", flag, lo, hi, v);
    std::exit(2);
  }
  return d;
}

Options parse_args(int argc, char** argv, const skyloft::Config& base) {
  Options o;
  o.spin_us = base.spin_us;
  o.cores = base.cores;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") usage(0);
    static const char* const kKnown[] = {"--seconds", "--cores",     "--spin-us",   "--csv",
                                         "--requests-csv", "--seed", "--load",   "--period-us",
                                         "--short-us", "--long-us",  "--long-frac", "--timeout", "--systems"};
    std::string flag = a.substr(0, a.find('='));
    if (std::find(std::begin(kKnown), std::end(kKnown), flag) == std::end(kKnown)) {
      fmt::print(stderr, "skyloft_demo: unknown option '{}'\n", a);
      usage(2);
    }
    std::string value;
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a.resize(eq);
    } else {
      if (i + 1 >= argc) {
        fmt::print(stderr, "skyloft_demo: {} needs a value\n", a);
        usage(2);
      }
      value = argv[++i];
    }
    if (a == "--seconds") o.seconds = parse_double(a, value, 0.01, 3600);
    else if (a == "--cores") o.cores = value;
    else if (a == "--spin-us") o.spin_us = static_cast<u32>(parse_double(a, value, 0, 1e9));
    else if (a == "--csv") o.csv = value;
    else if (a == "--requests-csv") o.requests_csv = value;
    else if (a == "--seed") o.seed = static_cast<u64>(parse_double(a, value, 0, 1e18));
    else if (a == "--load") o.load = parse_double(a, value, 0.001, 10);
    else if (a == "--period-us") o.period_us = parse_double(a, value, 10, 1e7);
    else if (a == "--short-us") o.short_us = parse_double(a, value, 0.01, 1e6);
    else if (a == "--long-us") o.long_us = parse_double(a, value, 0.01, 1e7);
    else if (a == "--long-frac") o.long_frac = parse_double(a, value, 0, 1);
    else if (a == "--timeout") o.timeout_s = parse_double(a, value, 0.1, 1e6);
    else if (a == "--systems") {
      o.systems.clear();
      std::size_t start = 0;
      while (start <= value.size()) {
        std::size_t comma = value.find(',', start);
        std::string s = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (s != "fifo" && s != "rr-timer" && s != "rr-hybrid" && s != "sq" && s != "threads" && s != "pool") {
          fmt::print(stderr,
                     "skyloft_demo: unknown system '{}' (known: fifo, rr-timer, rr-hybrid, sq, threads, pool)\n",
                     s);
          std::exit(2);
        }
        o.systems.push_back(s);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else {
      fmt::print(stderr, "skyloft_demo: unknown option '{}'\n", a);
      usage(2);
    }
  }
  return o;
}

// ---------------------------------------------------------------------------------------------------------
// The arrival plan: computed once, replayed identically on every system.

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

struct Plan {
  struct Burst {
    u64 offset_ns;
    u32 first;
    u32 count;
  };
  std::vector<Burst> bursts;
  std::vector<std::uint8_t> is_long;
  double mean_burst = 0;
  u32 max_burst = 0;
  std::size_t n_short = 0, n_long = 0;
  double work_core_s = 0;  // total CPU work of all requests, in core-seconds
};

Plan make_plan(const Options& o, std::size_t ncores) {
  Plan p;
  double mean_service_us = (1 - o.long_frac) * o.short_us + o.long_frac * o.long_us;
  p.mean_burst = o.load * static_cast<double>(ncores) * o.period_us / mean_service_us;
  SplitMix64 rng{o.seed};
  auto nbursts = static_cast<std::size_t>(std::max(1.0, std::floor(o.seconds * 1e6 / o.period_us)));
  for (std::size_t b = 0; b < nbursts; ++b) {
    bool surge = rng.uniform() < 0.2;
    double center = (surge ? 2.6 : 0.6) * p.mean_burst;  // 0.8 * 0.6 + 0.2 * 2.6 = 1.0
    auto count = static_cast<u32>(std::max(1.0, std::round(center * (0.5 + rng.uniform()))));
    p.bursts.push_back({static_cast<u64>(static_cast<double>(b) * o.period_us * 1000.0),
                        static_cast<u32>(p.is_long.size()), count});
    p.max_burst = std::max(p.max_burst, count);
    for (u32 i = 0; i < count; ++i) {
      bool lng = rng.uniform() < o.long_frac;
      p.is_long.push_back(lng ? 1 : 0);
      (lng ? p.n_long : p.n_short)++;
    }
  }
  p.work_core_s = (static_cast<double>(p.n_short) * o.short_us + static_cast<double>(p.n_long) * o.long_us) * 1e-6;
  return p;
}

// ---------------------------------------------------------------------------------------------------------
// Per-request records and the shared pieces of every system.

struct Record {
  u64 arrival = 0;  // set by the generator just before submitting
  u64 start = 0;    // set by whoever runs it
  u64 done = 0;     // 0: never completed
  u64 sink = 0;     // the hash result, so the work cannot be optimized away
};

struct Workload {
  const Plan* plan;
  const Calibration* cal;
  std::vector<Record> recs;
  bool preempt_points = false;  // call skyloft::preempt_point() about every microsecond of work (rr-hybrid)

  // The body of request i, run by whatever executes it.
  void execute(u32 i) noexcept {
    Record& r = recs[i];
    r.start = mono_ns();
    const u64 iters = plan->is_long[i] ? cal->long_iters : cal->short_iters;
    r.sink = preempt_points ? spin_hash_pp(iters, i, cal->pp_iters) : spin_hash(iters, i);
    r.done = mono_ns();
  }
};

void confine_to(const std::vector<int>& cores) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cores) CPU_SET(c, &set);
  if (int err = pthread_setaffinity_np(pthread_self(), sizeof set, &set); err != 0) {
    fmt::print(stderr, "skyloft_demo: pthread_setaffinity_np: {}\n", std::strerror(err));
  }
}

struct GenResult {
  u64 max_lag_ns = 0;  // how far behind its schedule the generator created a request
  u64 t_begin = 0;
  u64 t_end = 0;       // when the last request was submitted
};

// Replays the plan, calling submit(i) for every request at its burst's time. Runs on its own thread.
template <class Submit>
GenResult generate(Workload& w, std::atomic<u32>& submitted, Submit&& submit) {
  GenResult g;
  const Plan& plan = *w.plan;
  u64 t0 = mono_ns() + 1'000'000;  // start 1 ms from now
  g.t_begin = t0;
  for (const auto& b : plan.bursts) {
    u64 target = t0 + b.offset_ns;
    sleep_until_ns(target);
    for (u32 i = b.first; i < b.first + b.count; ++i) {
      u64 now = mono_ns();
      w.recs[i].arrival = now;
      g.max_lag_ns = std::max(g.max_lag_ns, now - std::min(now, target));
      submit(i);
      submitted.store(i + 1, std::memory_order_relaxed);
    }
  }
  g.t_end = mono_ns();
  return g;
}

// A countdown with a timed wait, for the kernel-thread systems.
class Countdown {
 public:
  explicit Countdown(std::size_t n) : left_(n) {}
  void count_down() {
    if (left_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lk(m_);
      cv_.notify_all();
    }
  }
  bool wait_for(std::chrono::nanoseconds d) {
    std::unique_lock lk(m_);
    return cv_.wait_for(lk, d, [&] { return left_.load(std::memory_order_acquire) == 0; });
  }
  std::size_t left() const { return left_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::size_t> left_;
  std::mutex m_;
  std::condition_variable cv_;
};

// ---------------------------------------------------------------------------------------------------------
// Results.

struct Summary {
  std::string system;
  std::string workers;
  std::string status = "ok";
  std::size_t requests = 0;
  std::size_t completed = 0;
  double throughput = 0;
  double short_p50 = 0, short_p99 = 0, short_p999 = 0;
  double long_p50 = 0, long_p99 = 0;
  double max_us = 0;
  double short_wait_p99 = 0;  // queueing delay (start - arrival) of short requests
  double short_svc_p50 = 0, long_svc_p50 = 0;  // service time (done - start)
  double cpu_s = 0;
  double gen_lag_max_us = 0;
  double wall_s = 0;
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

Summary summarize(std::string system, std::string workers, const Workload& w, const GenResult& g,
                  double cpu_s) {
  Summary s;
  s.system = std::move(system);
  s.workers = std::move(workers);
  s.requests = w.recs.size();
  s.cpu_s = cpu_s;
  s.gen_lag_max_us = static_cast<double>(g.max_lag_ns) / 1e3;
  std::vector<double> sl, ll, sw, ss, ls;
  u64 first = ~u64{0}, last = 0;
  double mx = 0;
  for (std::size_t i = 0; i < w.recs.size(); ++i) {
    const Record& r = w.recs[i];
    if (r.done == 0) continue;
    ++s.completed;
    first = std::min(first, r.arrival);
    last = std::max(last, r.done);
    double lat = static_cast<double>(r.done - r.arrival) / 1e3;
    double svc = static_cast<double>(r.done - r.start) / 1e3;
    mx = std::max(mx, lat);
    if (w.plan->is_long[i]) {
      ll.push_back(lat);
      ls.push_back(svc);
    } else {
      sl.push_back(lat);
      ss.push_back(svc);
      sw.push_back(static_cast<double>(r.start - r.arrival) / 1e3);
    }
  }
  if (s.completed > 0 && last > first) {
    s.wall_s = static_cast<double>(last - first) / 1e9;
    s.throughput = static_cast<double>(s.completed) / s.wall_s;
  }
  s.max_us = mx;
  s.short_p50 = percentile(sl, 0.50);
  s.short_p99 = percentile(sl, 0.99);
  s.short_p999 = percentile(sl, 0.999);
  s.long_p50 = percentile(ll, 0.50);
  s.long_p99 = percentile(ll, 0.99);
  s.short_wait_p99 = percentile(sw, 0.99);
  s.short_svc_p50 = percentile(ss, 0.50);
  s.long_svc_p50 = percentile(ls, 0.50);
  if (s.completed != s.requests) s.status = fmt::format("incomplete ({} of {})", s.completed, s.requests);
  return s;
}

// Appends every request of one system to --requests-csv (times in us relative to the first arrival).
void dump_requests(const std::string& path, const std::string& system, const Workload& w) {
  if (path.empty()) return;
  static bool first = true;
  std::filesystem::path p(path);
  std::error_code ec;
  if (first && p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  std::FILE* f = std::fopen(p.c_str(), first ? "w" : "a");
  if (!f) {
    fmt::print(stderr, "skyloft_demo: cannot write {}: {}\n", path, std::strerror(errno));
    return;
  }
  if (first) fmt::print(f, "system,request,long,arrival_us,start_us,done_us,latency_us\n");
  first = false;
  u64 t0 = ~u64{0};
  for (const auto& r : w.recs) t0 = std::min(t0, r.arrival);
  auto rel = [&](u64 t) { return t == 0 ? -1.0 : static_cast<double>(t - t0) / 1e3; };
  for (std::size_t i = 0; i < w.recs.size(); ++i) {
    const Record& r = w.recs[i];
    fmt::print(f, "{},{},{},{:.3f},{:.3f},{:.3f},{:.3f}\n", system, i, int{w.plan->is_long[i]}, rel(r.arrival),
               rel(r.start), rel(r.done), r.done == 0 ? -1.0 : static_cast<double>(r.done - r.arrival) / 1e3);
  }
  std::fclose(f);
}

// A row for a system that produced no numbers (it could not start, or it hung).
Summary no_result(std::string system, std::string status) {
  Summary s;
  const double na = std::nan("");
  s.throughput = s.short_p50 = s.short_p99 = s.short_p999 = s.long_p50 = s.long_p99 = s.max_us = na;
  s.short_wait_p99 = s.short_svc_p50 = s.long_svc_p50 = s.cpu_s = s.gen_lag_max_us = s.wall_s = na;
  s.system = std::move(system);
  s.workers = std::string(1, '-');  // not = "-": dodges a GCC 12 -Wrestrict false positive
  s.status = std::move(status);
  return s;
}

struct Context {
  Options opts;
  skyloft::Config base;
  std::vector<int> cores;
  const Plan* plan = nullptr;
  const Calibration* cal = nullptr;
  std::string repro;  // the command line, for hang reports
  std::chrono::nanoseconds timeout{};  // no-progress watchdog
  std::vector<Summary>* rows = nullptr;  // the results so far (printed even when a system hangs)
  bool hung = false;                     // a skyloft run hung and was abandoned
};

void print_table(const std::vector<Summary>& rows);
void write_csv(const Context& ctx, const std::vector<Summary>& rows);

std::string hang_status(const Context& ctx, std::size_t left, std::size_t total) {
  return fmt::format("HANG: {} of {} requests unfinished, no progress for {:.1f} s", left, total,
                     std::chrono::duration<double>(ctx.timeout).count());
}

// Waits for a run to finish. wait_for(d) waits up to d for completion and returns true when done; left()
// is the number of unfinished requests. Returns false when neither the generator nor the requests made
// progress for ctx.timeout (a hang), true when all requests finished.
template <class WaitFor, class Left>
bool wait_with_watchdog(const Context& ctx, const std::atomic<u32>& submitted, WaitFor&& wait_for,
                        Left&& left) {
  auto last_change = std::chrono::steady_clock::now();
  std::pair<std::size_t, u32> last{left(), submitted.load(std::memory_order_relaxed)};
  for (;;) {
    if (wait_for(std::chrono::milliseconds(100))) return true;
    std::pair<std::size_t, u32> now_state{left(), submitted.load(std::memory_order_relaxed)};
    auto now = std::chrono::steady_clock::now();
    if (now_state != last) {
      last = now_state;
      last_change = now;
    } else if (now - last_change >= ctx.timeout) {
      return false;
    }
  }
}

void print_hang(const Context& ctx, const std::string& system, std::size_t left, std::size_t total,
                u32 submitted) {
  std::fflush(stdout);
  fmt::print(stderr,
             "\nskyloft_demo: HANG in '{}': {} of {} requests unfinished, no progress for {:.1f} s "
             "(generator submitted {} of {})\n  repro: {}\n",
             system, left, total, std::chrono::duration<double>(ctx.timeout).count(), submitted, total,
             ctx.repro);
  if (auto* rt = skyloft::Runtime::current()) rt->dump(stderr);
  std::fflush(stderr);
}

// A kernel-thread baseline that hangs is a bug in this file: show the results so far and leave.
[[noreturn]] void fatal_hang(const Context& ctx, const std::string& system, std::size_t left, std::size_t total,
                             u32 submitted) {
  print_hang(ctx, system, left, total, submitted);
  ctx.rows->push_back(no_result(system, hang_status(ctx, left, total)));
  print_table(*ctx.rows);
  write_csv(ctx, *ctx.rows);
  std::fflush(stdout);
  std::_Exit(3);
}

// ---------------------------------------------------------------------------------------------------------
// Systems (a)/(b): skyloft, one task per request.

// A skyloft system of --systems: which policy, which preemption mechanism, and whether the request loop
// has preempt points.
struct SkyloftSystem {
  const char* key;          // the --systems name
  const char* policy;       // Config::policy
  const char* preempt;      // Config::preempt
  u32 quantum_us;           // Config::quantum_us (0: leave the configured one; unused without preemption)
  bool preempt_points;      // the request loop calls skyloft::preempt_point() every ~1 us of work
};

constexpr SkyloftSystem kSkyloftSystems[] = {
    {"fifo", "fifo", "none", 0, false},
    {"rr-timer", "rr", "timer", 100, false},
    {"rr-hybrid", "rr", "hybrid", 50, true},
    {"sq", "sq", "none", 0, false},
};

const SkyloftSystem* find_skyloft_system(const std::string& key) {
  for (const auto& s : kSkyloftSystems) {
    if (key == s.key) return &s;
  }
  return nullptr;
}

// Everything the generator thread and the tasks of one skyloft run touch. It lives on the heap so that a
// run that hangs can be abandoned (leaked together with its runtime) while the demo goes on with the other
// systems; a runtime with tasks stuck in it cannot be shut down.
struct SkyloftRun {
  SkyloftRun(const Plan* plan, const Calibration* cal)
      : w{plan, cal, std::vector<Record>(plan->is_long.size())}, wg(static_cast<u32>(w.recs.size())) {}
  Workload w;
  skyloft::WaitGroup wg;
  std::atomic<u32> submitted{0};
  std::atomic<u32> spawn_failures{0};
  std::string first_failure;
  GenResult g;
  std::thread gen;
};

Summary run_skyloft(Context& ctx, const SkyloftSystem& sys) {
  std::string name = std::string("skyloft ") + sys.key;
  skyloft::Config cfg = ctx.base;
  cfg.policy = sys.policy;
  cfg.cores = ctx.opts.cores;
  cfg.spin_us = ctx.opts.spin_us;
  cfg.preempt = sys.preempt;  // explicit, so that SKYLOFT_PREEMPT cannot make fifo/sq preempt behind the note
  if (sys.quantum_us != 0) cfg.quantum_us = sys.quantum_us;
  const bool preempting = cfg.preempt != "none";

  std::unique_ptr<skyloft::Runtime> rt;
  try {
    rt = std::make_unique<skyloft::Runtime>(cfg);
  } catch (const std::exception& e) {
    fmt::print("\n[{}] cannot start the runtime: {}\n", name, e.what());
    return no_result(name, fmt::format("skipped: {}", e.what()));
  }
  std::string workers = std::to_string(rt->num_workers());
  if (rt->dispatcher_core() >= 0) workers += "+disp";
  std::string preempt_desc = "no preemption";
  if (preempting) {
    preempt_desc = fmt::format("preempt {}, quantum {} us", cfg.preempt, cfg.quantum_us);
    if (cfg.preempt == "hybrid") preempt_desc += fmt::format(" (grace {} us)", cfg.hybrid_grace_us);
    preempt_desc += sys.preempt_points ? ", preempt_point() every ~1 us of work" : ", no preempt points";
  }
  fmt::print("\n[{}] policy {}, {} worker(s) on cores {}{}; {}\n", name, rt->policy_name(), rt->num_workers(),
             skyloft::format_core_list(rt->worker_cores()),
             rt->dispatcher_core() >= 0 ? fmt::format(", dispatcher on core {}", rt->dispatcher_core())
                                        : std::string(),
             preempt_desc);
  std::fflush(stdout);

  auto run = std::make_unique<SkyloftRun>(ctx.plan, ctx.cal);
  SkyloftRun* r = run.get();
  r->w.preempt_points = sys.preempt_points;
  const auto n = static_cast<u32>(r->w.recs.size());

  double cpu0 = cpu_seconds();
  r->gen = std::thread([r, cores = ctx.cores] {
    confine_to(cores);
    r->g = generate(r->w, r->submitted, [r](u32 i) {
      try {
        skyloft::spawn([r, i] {
          r->w.execute(i);
          r->wg.done();
        }).detach();
      } catch (const std::exception& e) {
        if (r->spawn_failures.fetch_add(1) == 0) r->first_failure = e.what();
        r->wg.done();  // counted as not completed (done == 0)
      }
    });
  });
  if (!wait_with_watchdog(
          ctx, r->submitted, [r](std::chrono::milliseconds d) { return r->wg.wait_for(d); },
          [r] { return static_cast<std::size_t>(r->wg.count()); })) {
    std::size_t left = r->wg.count();
    print_hang(ctx, name, left, n, r->submitted.load());
    fmt::print("  [{}] HANG: abandoning this runtime (leaked, its threads stay parked) and going on\n", name);
    ctx.hung = true;
    (void)rt.release();
    (void)run.release();
    return no_result(name, hang_status(ctx, left, n));
  }
  double cpu1 = cpu_seconds();
  r->gen.join();

  std::vector<skyloft::WorkerStats> stats = rt->stats();
  skyloft::ShutdownReport report = rt->shutdown();
  rt.reset();

  // Preempting runs get three more columns: quantum expiries acted on, preemptions, deferred interrupts.
  auto preempt_cols = [&](const skyloft::WorkerStats& s) {
    return preempting ? fmt::format(" {:>9} {:>9} {:>9}", s.preempt_checks, s.preemptions, s.preempt_deferred)
                      : std::string();
  };
  fmt::print("  per-worker stats (Runtime::stats()):\n");
  fmt::print("    {:>6} {:>4} {:>10} {:>10} {:>8} {:>8} {:>9} {:>9} {:>9}{}\n", "worker", "core", "tasks_run",
             "switches", "steals", "parks", "idle ms", "spawned", "exited",
             preempting ? fmt::format(" {:>9} {:>9} {:>9}", "expiries", "preempts", "deferred") : std::string());
  skyloft::WorkerStats total;
  for (const auto& s : stats) {
    fmt::print("    {:>6} {:>4} {:>10} {:>10} {:>8} {:>8} {:>9.1f} {:>9} {:>9}{}\n", s.worker, s.core, s.tasks_run,
               s.switches, s.steals, s.parks, static_cast<double>(s.idle_ns) / 1e6, s.spawned, s.exited,
               preempt_cols(s));
    total.tasks_run += s.tasks_run;
    total.switches += s.switches;
    total.steals += s.steals;
    total.parks += s.parks;
    total.idle_ns += s.idle_ns;
    total.spawned += s.spawned;
    total.exited += s.exited;
    total.preempt_checks += s.preempt_checks;
    total.preemptions += s.preemptions;
    total.preempt_deferred += s.preempt_deferred;
  }
  if (stats.size() > 1) {
    fmt::print("    {:>6} {:>4} {:>10} {:>10} {:>8} {:>8} {:>9.1f} {:>9} {:>9}{}\n", "all", "", total.tasks_run,
               total.switches, total.steals, total.parks, static_cast<double>(total.idle_ns) / 1e6,
               total.spawned, total.exited, preempt_cols(total));
  }
  if (!report.clean()) fmt::print("  shutdown report: {}\n", report.describe());
  if (r->spawn_failures.load() > 0) {
    fmt::print("  {} spawn() calls failed; first: {}\n", r->spawn_failures.load(), r->first_failure);
  }
  if (total.exited != n && r->spawn_failures.load() == 0) {
    fmt::print("  note: workers report {} exited tasks for {} requests\n", total.exited, n);
  }

  dump_requests(ctx.opts.requests_csv, name, r->w);
  return summarize(name, workers, r->w, r->g, cpu1 - cpu0);
}

// ---------------------------------------------------------------------------------------------------------
// System (c): one std::thread per request.

Summary run_thread_per_request(const Context& ctx) {
  std::string name = "threads (1/req)";
  fmt::print("\n[{}] one std::thread per request, confined to cores {}\n", name,
             skyloft::format_core_list(ctx.cores));
  std::fflush(stdout);
  Workload w{ctx.plan, ctx.cal, std::vector<Record>(ctx.plan->is_long.size())};
  const auto n = static_cast<u32>(w.recs.size());
  Countdown left(n);
  std::atomic<u32> submitted{0};
  std::atomic<u64> create_failures{0};
  GenResult g;

  double cpu0 = cpu_seconds();
  std::thread gen([&] {
    confine_to(ctx.cores);  // the request threads inherit this affinity
    g = generate(w, submitted, [&](u32 i) {
      for (int attempt = 0;; ++attempt) {
        try {
          std::thread([&w, &left, i] {
            w.execute(i);
            left.count_down();
          }).detach();
          return;
        } catch (const std::system_error&) {  // EAGAIN: too many threads right now; back off and retry
          create_failures.fetch_add(1, std::memory_order_relaxed);
          if (attempt > 10000) {
            left.count_down();
            return;
          }
          std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
      }
    });
  });
  bool finished = wait_with_watchdog(
      ctx, submitted, [&](std::chrono::milliseconds d) { return left.wait_for(d); }, [&] { return left.left(); });
  if (!finished) fatal_hang(ctx, name, left.left(), n, submitted.load());
  double cpu1 = cpu_seconds();
  gen.join();
  if (create_failures.load() > 0) {
    fmt::print("  std::thread creation failed {} times (retried)\n", create_failures.load());
  }
  dump_requests(ctx.opts.requests_csv, name, w);
  return summarize(name, "1/req", w, g, cpu1 - cpu0);
}

// ---------------------------------------------------------------------------------------------------------
// System (d): a fixed thread pool with one mutex/condvar queue.

Summary run_pool(const Context& ctx) {
  std::string name = "thread pool";
  const std::size_t nthreads = ctx.cores.size();
  fmt::print("\n[{}] {} std::threads, one mutex/condvar FIFO queue, confined to cores {}\n", name, nthreads,
             skyloft::format_core_list(ctx.cores));
  std::fflush(stdout);
  Workload w{ctx.plan, ctx.cal, std::vector<Record>(ctx.plan->is_long.size())};
  const auto n = static_cast<u32>(w.recs.size());
  Countdown left(n);
  std::atomic<u32> submitted{0};

  std::mutex m;
  std::condition_variable cv;
  std::deque<u32> queue;
  bool stop = false;
  std::vector<std::thread> pool;
  struct StopPool {  // on every exit path (including a failed thread creation): stop and join the pool
    std::mutex& m;
    std::condition_variable& cv;
    bool& stop;
    std::vector<std::thread>& pool;
    ~StopPool() {
      {
        std::lock_guard lk(m);
        stop = true;
      }
      cv.notify_all();
      for (auto& t : pool) t.join();
    }
  } stop_pool{m, cv, stop, pool};
  for (std::size_t t = 0; t < nthreads; ++t) {
    pool.emplace_back([&] {
      confine_to(ctx.cores);
      std::unique_lock lk(m);
      for (;;) {
        cv.wait(lk, [&] { return stop || !queue.empty(); });
        if (queue.empty()) return;  // stop requested and nothing left
        u32 i = queue.front();
        queue.pop_front();
        lk.unlock();
        w.execute(i);
        left.count_down();
        lk.lock();
      }
    });
  }

  GenResult g;
  double cpu0 = cpu_seconds();
  std::thread gen([&] {
    confine_to(ctx.cores);
    g = generate(w, submitted, [&](u32 i) {
      {
        std::lock_guard lk(m);
        queue.push_back(i);
      }
      cv.notify_one();
    });
  });
  bool finished = wait_with_watchdog(
      ctx, submitted, [&](std::chrono::milliseconds d) { return left.wait_for(d); }, [&] { return left.left(); });
  if (!finished) fatal_hang(ctx, name, left.left(), n, submitted.load());
  double cpu1 = cpu_seconds();
  gen.join();
  dump_requests(ctx.opts.requests_csv, name, w);
  return summarize(name, std::to_string(nthreads), w, g, cpu1 - cpu0);
}

// ---------------------------------------------------------------------------------------------------------
// Output.

std::string num(double v, int prec = 0) {
  if (std::isnan(v)) return "-";
  return fmt::format("{:.{}f}", v, prec);
}

void print_table(const std::vector<Summary>& rows) {
  fmt::print("\n{:<17} {:>7} {:>8} {:>9} | {:>8} {:>8} {:>8} | {:>8} {:>8} | {:>8} | {:>6} {:>8}\n", "",
             "", "", "", "short", "short", "short", "long", "long", "", "", "gen lag");
  fmt::print("{:<17} {:>7} {:>8} {:>9} | {:>8} {:>8} {:>8} | {:>8} {:>8} | {:>8} | {:>6} {:>8}\n", "system",
             "workers", "requests", "req/s", "p50", "p99", "p99.9", "p50", "p99", "max", "cpu s", "max");
  fmt::print("{:-<17} {:->7} {:->8} {:->9}-+-{:->8} {:->8} {:->8}-+-{:->8} {:->8}-+-{:->8}-+-{:->6} {:->8}\n", "",
             "", "", "", "", "", "", "", "", "", "", "");
  for (const auto& r : rows) {
    if (std::isnan(r.throughput)) {  // no numbers: skipped or hung
      fmt::print("{:<17} {}\n", r.system, r.status);
      continue;
    }
    fmt::print("{:<17} {:>7} {:>8} {:>9} | {:>8} {:>8} {:>8} | {:>8} {:>8} | {:>8} | {:>6} {:>8}\n", r.system,
               r.workers, r.completed, num(r.throughput), num(r.short_p50), num(r.short_p99),
               num(r.short_p999), num(r.long_p50), num(r.long_p99), num(r.max_us), num(r.cpu_s, 2),
               num(r.gen_lag_max_us));
    if (r.status != "ok") fmt::print("{:<17} ^ {}\n", "", r.status);
  }
  fmt::print("(microseconds; latency = completion - creation by the generator; gen lag = how late the "
             "generator created requests vs its schedule)\n");
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

void write_csv(const Context& ctx, const std::vector<Summary>& rows) {
  if (ctx.opts.csv == "-" || ctx.opts.csv.empty()) return;
  std::filesystem::path path(ctx.opts.csv);
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) {
    fmt::print(stderr, "skyloft_demo: cannot write {}: {}\n", ctx.opts.csv, std::strerror(errno));
    return;
  }
  fmt::print(f,
             "system,workers,status,cores,spin_us,seconds,load,seed,requests,completed,throughput_rps,"
             "short_p50_us,short_p99_us,short_p999_us,long_p50_us,long_p99_us,max_us,short_wait_p99_us,"
             "short_svc_p50_us,long_svc_p50_us,cpu_s,gen_lag_max_us\n");
  auto cell = [](double v) { return std::isnan(v) ? std::string() : fmt::format("{:.3f}", v); };
  for (const auto& r : rows) {
    fmt::print(f, "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", csv_field(r.system),
               csv_field(r.workers), csv_field(r.status), csv_field(skyloft::format_core_list(ctx.cores)),
               ctx.opts.spin_us, ctx.opts.seconds, ctx.opts.load, ctx.opts.seed, r.requests, r.completed,
               cell(r.throughput), cell(r.short_p50), cell(r.short_p99), cell(r.short_p999), cell(r.long_p50),
               cell(r.long_p99), cell(r.max_us), cell(r.short_wait_p99), cell(r.short_svc_p50),
               cell(r.long_svc_p50), cell(r.cpu_s), cell(r.gen_lag_max_us));
  }
  std::fclose(f);
  fmt::print("wrote {}\n", ctx.opts.csv);
}

}  // namespace

int main(int argc, char** argv) {
  Context ctx;
  try {
    ctx.base = skyloft::Config::from_env();
  } catch (const std::exception& e) {
    fmt::print(stderr, "skyloft_demo: bad SKYLOFT_* environment: {}\n", e.what());
    return 2;
  }
  ctx.opts = parse_args(argc, argv, ctx.base);
  for (int i = 0; i < argc; ++i) {
    if (i > 0) ctx.repro += ' ';
    ctx.repro += argv[i];
  }
  const Options& o = ctx.opts;

  try {
    ctx.cores = o.cores ? skyloft::parse_core_list(*o.cores) : skyloft::allowed_cores();
  } catch (const std::exception& e) {
    fmt::print(stderr, "skyloft_demo: --cores: {}\n", e.what());
    return 2;
  }
  const std::vector<int> allowed = skyloft::allowed_cores();
  for (int c : ctx.cores) {
    if (std::find(allowed.begin(), allowed.end(), c) == allowed.end()) {
      fmt::print(stderr, "skyloft_demo: --cores: core {} is not available to this process (allowed: {})\n", c,
                 skyloft::format_core_list(allowed));
      return 2;
    }
  }

  // skyloft calibrates its TSC clock (a ~20 ms sleep) on the first now_ns() call, and the first call would
  // otherwise come from the workers of the first runtime, right after its constructor returned, stalling
  // them while the first bursts arrive. Pay that cost here, before anything is measured.
  if (std::getenv("DEMO_NO_CLOCK_WARMUP") == nullptr) (void)skyloft::now_ns();
  Calibration cal = calibrate(o.short_us, o.long_us);
  Plan plan = make_plan(o, ctx.cores.size());
  ctx.plan = &plan;
  ctx.cal = &cal;
  ctx.timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(o.timeout_s));

  fmt::print("skyloft_demo: bursty mix of short and long CPU-bound requests\n");
  fmt::print("  cores under test   {} ({} core(s)); generator and baseline threads confined to them too\n",
             skyloft::format_core_list(ctx.cores), ctx.cores.size());
  fmt::print("  skyloft spin_us    {} (Config::spin_us: idle workers spin this long before parking)\n",
             o.spin_us);
  fmt::print("  requests           {:.0f}% short ~{} us ({} iters), {:.0f}% long ~{} us ({} iters); "
             "calibrated {:.3f} ns/iter\n",
             100 * (1 - o.long_frac), o.short_us, cal.short_iters, 100 * o.long_frac, o.long_us,
             cal.long_iters, cal.ns_per_iter);
  fmt::print("  arrivals           a burst every {} us for {} s: {} bursts, mean {:.1f} (max {}) requests "
             "per burst; 20% are 2.6x surges\n",
             o.period_us, o.seconds, plan.bursts.size(), plan.mean_burst, plan.max_burst);
  fmt::print("  offered load       {:.2f} of {} core(s) = {:.2f} core-s of work in {} s; {} requests "
             "({} short, {} long), seed {}\n",
             o.load, ctx.cores.size(), plan.work_core_s, o.seconds, plan.is_long.size(), plan.n_short,
             plan.n_long, o.seed);
  std::fflush(stdout);

  // The kernel-thread baselines run first: a skyloft run that hangs has to be abandoned with its tasks and
  // their stack mappings still allocated (tens of thousands of them can exhaust vm.max_map_count), and that
  // must not take the baselines down with it. The table keeps the order of --systems.
  std::vector<Summary> results(o.systems.size());
  std::vector<Summary> rows;  // finished ones, in run order (for fatal_hang)
  ctx.rows = &rows;
  for (int pass = 0; pass < 2; ++pass) {
    for (std::size_t k = 0; k < o.systems.size(); ++k) {
      const std::string& sys = o.systems[k];
      const SkyloftSystem* sky = find_skyloft_system(sys);
      bool is_skyloft = sky != nullptr;
      if (is_skyloft != (pass == 1)) continue;
      std::string name = is_skyloft ? "skyloft " + sys : sys == "threads" ? "threads (1/req)" : "thread pool";
      try {
        if (is_skyloft) results[k] = run_skyloft(ctx, *sky);
        else if (sys == "threads") results[k] = run_thread_per_request(ctx);
        else results[k] = run_pool(ctx);
      } catch (const std::exception& e) {
        fmt::print("\n[{}] failed: {}{}\n", name, e.what(),
                   ctx.hung ? " (after an abandoned hung runtime: its leaked tasks may exhaust resources)" : "");
        results[k] = no_result(name, fmt::format("error: {}", e.what()));
      }
      rows.push_back(results[k]);
      std::fflush(stdout);
    }
  }
  rows = results;

  print_table(rows);
  fmt::print("note: skyloft fifo and sq run each request to completion (no preemption), as the pool does: a "
             "~{} us request delays every short one queued behind it on its worker.\n"
             "note: skyloft rr-timer and rr-hybrid preempt (rr: a preempted task goes to the tail of its "
             "worker's queue). rr-timer: a per-worker POSIX timer interrupts a task that ran its 100 us quantum "
             "while another waits, anywhere in its code (no preempt points). rr-hybrid: on a 50 us quantum the "
             "ticker thread raises a flag that the request loop honours at skyloft::preempt_point(), called "
             "every ~1 us of work (a signal only if a task misses the {} us grace). threads (1/req) is "
             "time-sliced by the kernel.\n",
             o.long_us, ctx.base.hybrid_grace_us);
  for (const auto& r : rows) {
    if (!(r.gen_lag_max_us > 10 * o.period_us)) continue;
    fmt::print("note: on {} the generator fell up to {:.0f} ms behind its schedule (submitting requests "
               "is the bottleneck there: {} req/s achieved); that wait is not in its latencies, which start "
               "when a request is created.\n",
               r.system, r.gen_lag_max_us / 1e3, num(r.throughput));
  }
  write_csv(ctx, rows);
  if (ctx.hung) {
    // An abandoned runtime is still registered and its threads are parked: skip static destruction.
    fmt::print("exit status 3: a skyloft run hung (see the HANG row and the dump on stderr)\n");
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(3);
  }
  return 0;
}
