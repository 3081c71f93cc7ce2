// micro.cpp - skyloft microbenchmarks side by side with std::thread and Boost.Fiber.
//
// Prints one table of median ns per operation (with min and max over the runs) for
//   1. spawn+join          an empty task / thread / fiber, created and joined from a task / thread / fiber
//   2. yield ping-pong     two tasks each yielding N times on one core; ns per yield (total time / 2N)
//   3. mutex uncontended   lock+unlock of skyloft::Mutex / std::mutex / boost::fibers::mutex
//   4. condvar 1 core      Mutex+CondVar ping-pong with a turn variable, both parties on one core; ns per
//                          round trip (A wakes B, B wakes A)
//   5. condvar 2 cores     the same with the two parties on two different cores
// Every measurement is calibrated so one run lasts about --target-ms, then repeated --runs times; the table
// shows the median of the per-run means and the min and max of them. Nothing is subtracted: the loop
// overhead and the clock reads (two per run) are included. Two-party rows time from the moment both parties
// have passed a start barrier (the first start timestamp) to the last party's end timestamp.
//
// Usage: skyloft_micro [--quick] [--runs N] [--target-ms MS] [--spin-us US] [--core C] [--cross-cores A,B]
//                      [--csv PATH] [--filter SUBSTR] [--timeout S]
#include <pthread.h>
#include <sched.h>
#include <sys/utsname.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <boost/fiber/all.hpp>
#include <fmt/core.h>
#include <fmt/format.h>

#include "skyloft/skyloft.hpp"

namespace {

// ---------------------------------------------------------------------------------------------------------
// Helpers

template <class T>
inline void do_not_optimize(T const& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

inline std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

bool pin_self(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

struct Options {
  bool quick = false;
  int runs = 7;
  double target_ms = 50;
  std::optional<std::uint32_t> spin_us;
  std::string csv = "results/micro.csv";
  int core = -1;                  // the core of the one-core rows (-1: last allowed core)
  std::vector<int> cross;         // the two cores of the cross-core row (default: first two allowed)
  std::string filter;             // run only benchmarks whose key contains this
  int timeout_s = 120;            // watchdog: abort when no run finishes for this long
};

Options g_opt;

[[noreturn]] void usage(const char* argv0, const std::string& error) {
  if (!error.empty()) fmt::print(stderr, "skyloft_micro: {}\n", error);
  fmt::print(stderr,
             "usage: {} [--quick] [--runs N] [--target-ms MS] [--spin-us US] [--core C]\n"
             "          [--cross-cores A,B] [--csv PATH] [--filter SUBSTR] [--timeout S]\n"
             "  --quick          CI smoke run: 3 runs of ~2 ms each\n"
             "  --runs N         repetitions per measurement (default 7)\n"
             "  --target-ms MS   duration of one run (default 50)\n"
             "  --spin-us US     skyloft Config::spin_us (idle-worker spin before parking)\n"
             "  --core C         core for the one-core rows (default: the last allowed core)\n"
             "  --cross-cores A,B  cores for the cross-core row (default: the first two allowed)\n"
             "  --csv PATH       CSV output (default results/micro.csv)\n"
             "  --filter SUBSTR  only benchmarks whose key contains SUBSTR\n"
             "                   (keys: spawn_join yield mutex condvar_1core condvar_2core)\n"
             "  --timeout S      abort when no run completes for S seconds (default 120)\n",
             argv0);
  std::exit(error.empty() ? 0 : 2);
}

long parse_long(const char* argv0, const std::string& flag, const std::string& v, long lo, long hi) {
  try {
    std::size_t pos = 0;
    long x = std::stol(v, &pos);
    if (pos != v.size() || x < lo || x > hi) throw std::out_of_range("range");
    return x;
  } catch (const std::exception&) {
    usage(argv0, fmt::format("{} needs an integer in [{}, {}], got '{}'", flag, lo, hi, v));
  }
}

void parse_args(int argc, char** argv) {
  bool runs_set = false, target_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      auto eq = a.find('=');
      if (eq != std::string::npos) return a.substr(eq + 1);
      if (i + 1 >= argc) usage(argv[0], a + " needs a value");
      return argv[++i];
    };
    auto is = [&](const char* flag) {
      std::string f = flag;
      return a == f || a.rfind(f + "=", 0) == 0;
    };
    if (a == "--help" || a == "-h") {
      usage(argv[0], "");
    } else if (a == "--quick") {
      g_opt.quick = true;
    } else if (is("--runs")) {
      g_opt.runs = static_cast<int>(parse_long(argv[0], "--runs", value(), 1, 1000));
      runs_set = true;
    } else if (is("--target-ms")) {
      g_opt.target_ms = static_cast<double>(parse_long(argv[0], "--target-ms", value(), 1, 100000));
      target_set = true;
    } else if (is("--spin-us")) {
      g_opt.spin_us = static_cast<std::uint32_t>(parse_long(argv[0], "--spin-us", value(), 0, 100000000));
    } else if (is("--core")) {
      g_opt.core = static_cast<int>(parse_long(argv[0], "--core", value(), 0, 4095));
    } else if (is("--cross-cores")) {
      std::string v = value();
      try {
        g_opt.cross = skyloft::parse_core_list(v);
      } catch (const std::exception& e) {
        usage(argv[0], fmt::format("--cross-cores: {}", e.what()));
      }
      if (g_opt.cross.size() != 2) usage(argv[0], "--cross-cores needs exactly two cores, e.g. 0,1");
    } else if (is("--csv")) {
      g_opt.csv = value();
    } else if (is("--filter")) {
      g_opt.filter = value();
    } else if (is("--timeout")) {
      g_opt.timeout_s = static_cast<int>(parse_long(argv[0], "--timeout", value(), 1, 86400));
    } else {
      usage(argv[0], "unknown argument '" + a + "'");
    }
  }
  if (g_opt.quick) {
    if (!runs_set) g_opt.runs = 3;
    if (!target_set) g_opt.target_ms = 2;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Watchdog: a runtime bug that hangs a benchmark should produce a diagnosis, not a silent CI timeout.

std::atomic<const char*> g_current{"startup"};
std::atomic<std::uint64_t> g_progress{0};
std::atomic<bool> g_stop_watchdog{false};

void watchdog() {
  std::uint64_t last = g_progress.load();
  auto last_change = std::chrono::steady_clock::now();
  while (!g_stop_watchdog.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::uint64_t p = g_progress.load();
    auto t = std::chrono::steady_clock::now();
    if (p != last) {
      last = p;
      last_change = t;
    } else if (t - last_change > std::chrono::seconds(g_opt.timeout_s)) {
      fmt::print(stderr, "\nskyloft_micro: WATCHDOG: no run of '{}' finished in {} s; aborting\n",
                 g_current.load(), g_opt.timeout_s);
      if (auto* rt = skyloft::Runtime::current()) rt->dump(stderr);
      std::fflush(stderr);
      std::_Exit(3);
    }
  }
}

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

constexpr std::uint64_t kMaxN = std::uint64_t{1} << 32;

// Calibrates n so that one run lasts about --target-ms (the calibration runs double as warm-up), then does
// --runs runs and summarizes the per-run mean ns/op. `fn` may be called on any thread/task/fiber.
Series measure(const char* label, const RunFn& fn) {
  g_current.store(label);
  const double target = g_opt.target_ms * 1e6;
  std::uint64_t n = 1;
  RunResult r = fn(n);
  ++g_progress;
  while (static_cast<double>(r.ns) < target / 10 && n < kMaxN) {
    double f = r.ns > 0 ? (target / 10) / static_cast<double>(r.ns) * 1.5 : 100.0;
    f = std::clamp(f, 2.0, 100.0);
    n = std::min(kMaxN, static_cast<std::uint64_t>(static_cast<double>(n) * f) + 1);
    r = fn(n);
    ++g_progress;
  }
  double scaled = static_cast<double>(n) * target / std::max<double>(1.0, static_cast<double>(r.ns));
  n = std::clamp<std::uint64_t>(static_cast<std::uint64_t>(scaled), 1, kMaxN);

  std::vector<double> per_op;
  Series s;
  for (int i = 0; i < g_opt.runs; ++i) {
    r = fn(n);
    ++g_progress;
    per_op.push_back(static_cast<double>(r.ns) / static_cast<double>(std::max<std::uint64_t>(1, r.ops)));
    s.ops = r.ops;
  }
  std::sort(per_op.begin(), per_op.end());
  std::size_t k = per_op.size();
  s.median = k % 2 ? per_op[k / 2] : (per_op[k / 2 - 1] + per_op[k / 2]) / 2;
  s.min = per_op.front();
  s.max = per_op.back();
  s.runs = static_cast<int>(k);
  s.measured = true;
  return s;
}

// Start barrier and timestamps shared by the two parties of a ping-pong.
struct TwoParty {
  std::atomic<int> ready{0};
  std::uint64_t start[2] = {0, 0};
  std::uint64_t end[2] = {0, 0};

  template <class Yield>
  void arrive(int id, Yield&& yield) {
    ready.fetch_add(1, std::memory_order_acq_rel);
    while (ready.load(std::memory_order_acquire) < 2) yield();
    start[id] = now_ns();
  }
  void finish(int id) { end[id] = now_ns(); }
  std::uint64_t elapsed() const {
    return std::max(end[0], end[1]) - std::min(start[0], start[1]);
  }
};

// Yield ping-pong body: n yields after the barrier.
template <class Yield>
void yield_party(TwoParty& tp, int id, std::uint64_t n, Yield&& yield) {
  tp.arrive(id, yield);
  for (std::uint64_t i = 0; i < n; ++i) yield();
  tp.finish(id);
}

// Condvar ping-pong state: party `id` waits for turn == id, hands the turn over and wakes the other.
template <class M, class CV>
struct PingPong {
  M m;
  CV cv[2];
  int turn = 0;
  // Placement tracking (skyloft cross-core row only), protected by m: the worker of the party that handed
  // over the turn last, and how many hand-overs found the receiver on the same / another worker.
  int last_worker = -1;
  std::uint64_t same_worker = 0, other_worker = 0, migrations[2] = {0, 0};
};

struct NoTrack {
  int operator()() const { return -1; }
};

// `where` returns the caller's worker for placement tracking (NoTrack: none).
template <class M, class CV, class Yield, class Where = NoTrack>
void pingpong_party(PingPong<M, CV>& pp, TwoParty& tp, int id, std::uint64_t n, Yield&& yield,
                    Where where = {}) {
  tp.arrive(id, yield);
  int mine = where();
  for (std::uint64_t i = 0; i < n; ++i) {
    std::unique_lock<M> lk(pp.m);
    pp.cv[id].wait(lk, [&] { return pp.turn == id; });
    if constexpr (!std::is_same_v<Where, NoTrack>) {
      int w = where();
      if (w != mine) ++pp.migrations[id];
      mine = w;
      if (pp.last_worker >= 0) ++(w == pp.last_worker ? pp.same_worker : pp.other_worker);
      pp.last_worker = w;
    }
    pp.turn = 1 - id;
    pp.cv[1 - id].notify_one();
  }
  tp.finish(id);
}

// ---------------------------------------------------------------------------------------------------------
// skyloft

void sky_yield() { skyloft::this_task::yield(); }

RunResult sky_spawn_join(std::uint64_t n) {
  std::uint64_t t0 = now_ns();
  for (std::uint64_t i = 0; i < n; ++i) skyloft::spawn([] {}).join();
  return {now_ns() - t0, n};
}

RunResult sky_yield_pingpong(std::uint64_t n) {
  TwoParty tp;
  auto a = skyloft::spawn([&] { yield_party(tp, 0, n, sky_yield); });
  auto b = skyloft::spawn([&] { yield_party(tp, 1, n, sky_yield); });
  a.join();
  b.join();
  return {tp.elapsed(), 2 * n};
}

RunResult sky_mutex(std::uint64_t n) {
  skyloft::Mutex m;
  std::uint64_t t0 = now_ns();
  for (std::uint64_t i = 0; i < n; ++i) {
    m.lock();
    do_not_optimize(&m);
    m.unlock();
  }
  return {now_ns() - t0, n};
}

// Where the cross-core parties actually ran, summed over all runs of the series (calibration included).
struct CrossPlacement {
  std::uint64_t same_worker = 0, other_worker = 0, migrations = 0, iterations = 0;
  int start_worker[2] = {-1, -1};  // of the last run
};
CrossPlacement g_cross_placement;

RunResult sky_condvar(std::uint64_t n, int core0, int core1) {
  PingPong<skyloft::Mutex, skyloft::CondVar> pp;
  TwoParty tp;
  const bool track = core0 != core1;
  auto where = [] { return skyloft::this_task::worker_index(); };
  auto body = [&](int id) {
    g_cross_placement.start_worker[id] = skyloft::this_task::worker_index();
    if (track) pingpong_party(pp, tp, id, n, sky_yield, where);
    else pingpong_party(pp, tp, id, n, sky_yield);
  };
  auto a = skyloft::spawn([&] { body(0); }, skyloft::SpawnOptions{.stack_size = 0, .core = core0, .pin = true});
  auto b = skyloft::spawn([&] { body(1); }, skyloft::SpawnOptions{.stack_size = 0, .core = core1, .pin = true});
  a.join();
  b.join();
  if (track) {
    g_cross_placement.same_worker += pp.same_worker;
    g_cross_placement.other_worker += pp.other_worker;
    g_cross_placement.migrations += pp.migrations[0] + pp.migrations[1];
    g_cross_placement.iterations += 2 * n;
  }
  return {tp.elapsed(), n};
}

// ---------------------------------------------------------------------------------------------------------
// std::thread

void std_yield() { std::this_thread::yield(); }

RunResult std_spawn_join(std::uint64_t n) {
  std::uint64_t t0 = now_ns();
  for (std::uint64_t i = 0; i < n; ++i) std::thread([] {}).join();
  return {now_ns() - t0, n};
}

RunResult std_yield_pingpong(std::uint64_t n, int core) {
  TwoParty tp;
  std::thread a([&] { pin_self(core); yield_party(tp, 0, n, std_yield); });
  std::thread b([&] { pin_self(core); yield_party(tp, 1, n, std_yield); });
  a.join();
  b.join();
  return {tp.elapsed(), 2 * n};
}

RunResult std_mutex(std::uint64_t n) {
  std::mutex m;
  std::uint64_t t0 = now_ns();
  for (std::uint64_t i = 0; i < n; ++i) {
    m.lock();
    do_not_optimize(&m);
    m.unlock();
  }
  return {now_ns() - t0, n};
}

RunResult std_condvar(std::uint64_t n, int core0, int core1) {
  PingPong<std::mutex, std::condition_variable> pp;
  TwoParty tp;
  std::thread a([&] { pin_self(core0); pingpong_party(pp, tp, 0, n, std_yield); });
  std::thread b([&] { pin_self(core1); pingpong_party(pp, tp, 1, n, std_yield); });
  a.join();
  b.join();
  return {tp.elapsed(), n};
}

// ---------------------------------------------------------------------------------------------------------
// Boost.Fiber (default round_robin scheduler, default fixedsize_stack allocator)

void boost_yield() { boost::this_fiber::yield(); }

RunResult boost_spawn_join(std::uint64_t n) {
  std::uint64_t t0 = now_ns();
  for (std::uint64_t i = 0; i < n; ++i) boost::fibers::fiber([] {}).join();
  return {now_ns() - t0, n};
}

RunResult boost_yield_pingpong(std::uint64_t n) {
  TwoParty tp;
  boost::fibers::fiber a([&] { yield_party(tp, 0, n, boost_yield); });
  boost::fibers::fiber b([&] { yield_party(tp, 1, n, boost_yield); });
  a.join();
  b.join();
  return {tp.elapsed(), 2 * n};
}

RunResult boost_mutex(std::uint64_t n) {
  boost::fibers::mutex m;
  std::uint64_t t0 = now_ns();
  for (std::uint64_t i = 0; i < n; ++i) {
    m.lock();
    do_not_optimize(&m);
    m.unlock();
  }
  return {now_ns() - t0, n};
}

RunResult boost_condvar_1core(std::uint64_t n) {
  PingPong<boost::fibers::mutex, boost::fibers::condition_variable> pp;
  TwoParty tp;
  boost::fibers::fiber a([&] { pingpong_party(pp, tp, 0, n, boost_yield); });
  boost::fibers::fiber b([&] { pingpong_party(pp, tp, 1, n, boost_yield); });
  a.join();
  b.join();
  return {tp.elapsed(), n};
}

// Across cores: two kernel threads, each running the party in its main fiber; Boost wakes a fiber of
// another thread through that thread's scheduler (remote ready queue + the round_robin's condition variable).
RunResult boost_condvar_2core(std::uint64_t n, int core0, int core1) {
  PingPong<boost::fibers::mutex, boost::fibers::condition_variable> pp;
  TwoParty tp;
  std::thread a([&] { pin_self(core0); pingpong_party(pp, tp, 0, n, std_yield); });
  std::thread b([&] { pin_self(core1); pingpong_party(pp, tp, 1, n, std_yield); });
  a.join();
  b.join();
  return {tp.elapsed(), n};
}

// ---------------------------------------------------------------------------------------------------------
// Rows, targets and the table

struct Row {
  std::string key;
  std::string title;
  std::string unit;
  Series sky, stdt, boost;
  std::string target;  // human-readable targets
  // Checks: description and predicate over the row; a check whose inputs are missing reads "?".
  struct Check {
    std::string what;
    std::function<std::optional<bool>(const Row&)> ok;
  };
  std::vector<Check> checks;
};

bool selected(const std::string& key) {
  return g_opt.filter.empty() || key.find(g_opt.filter) != std::string::npos;
}

// other / skyloft: how many times faster skyloft is (>1: skyloft faster).
std::optional<double> speedup(const Series& sky, const Series& other) {
  if (!sky.measured || !other.measured || sky.median <= 0) return std::nullopt;
  return other.median / sky.median;
}

std::string fmt_ns(double v) {
  if (v < 100) return fmt::format("{:.1f}", v);
  return fmt::format("{:.0f}", v);
}

std::string cell(const Series& s) {
  if (!s.measured) return s.na.empty() ? "n/a" : s.na;
  // A measured series may carry a marker in `na` pointing at a note below the table.
  return fmt::format("{}{} [{}-{}]", s.na, fmt_ns(s.median), fmt_ns(s.min), fmt_ns(s.max));
}

std::string ratio_cell(std::optional<double> r) {
  if (!r) return "-";
  if (*r >= 100) return fmt::format("{:.0f}x", *r);
  if (*r >= 10) return fmt::format("{:.1f}x", *r);
  return fmt::format("{:.2f}x", *r);
}

std::string met_cell(const Row& row) {
  if (row.checks.empty()) return "-";
  std::vector<std::string> failed, unknown;
  for (const auto& c : row.checks) {
    auto r = c.ok(row);
    if (!r) unknown.push_back(c.what);
    else if (!*r) failed.push_back(c.what);
  }
  if (failed.empty() && unknown.empty()) return "yes";
  // Failed checks are named; checks that lack a measurement (skipped / failed cells) show as "?".
  std::string out;
  if (!failed.empty()) out = fmt::format("NO: {}", fmt::join(failed, ", "));
  if (!unknown.empty()) out += out.empty() ? "?" : "; ?";
  return out;
}

std::string read_cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto c = line.find(':');
      if (c != std::string::npos) {
        auto v = line.substr(c + 1);
        v.erase(0, v.find_first_not_of(" \t"));
        return v;
      }
    }
  }
  return "unknown";
}

std::string kernel_string() {
  utsname u{};
  if (uname(&u) != 0) return "unknown";
  return fmt::format("{} {} {}", u.sysname, u.release, u.machine);
}

skyloft::Config make_config(const std::string& cores) {
  skyloft::Config cfg = skyloft::Config::from_env();
  cfg.policy = "fifo";
  cfg.cores = cores;
  if (g_opt.spin_us) cfg.spin_us = *g_opt.spin_us;
  return cfg;
}

void report_shutdown(skyloft::Runtime& rt, const char* what) {
  auto rep = rt.shutdown();
  if (!rep.clean()) fmt::print(stderr, "skyloft_micro: {} runtime did not shut down clean: {}\n", what, rep.describe());
}

// Runs one measurement inside a skyloft task, converting exceptions into a "failed" cell.
Series sky_measure(skyloft::Runtime& rt, const char* label, const RunFn& fn) {
  Series s;
  try {
    rt.block_on([&] { s = measure(label, fn); });
  } catch (const std::exception& e) {
    fmt::print(stderr, "skyloft_micro: {} failed: {}\n", label, e.what());
    s.measured = false;
    s.na = "FAILED";
  }
  return s;
}

template <class F>
Series guarded(const char* label, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    fmt::print(stderr, "skyloft_micro: {} failed: {}\n", label, e.what());
    Series s;
    s.na = "FAILED";
    return s;
  }
}

}  // namespace

int main(int argc, char** argv) {
  parse_args(argc, argv);

  std::vector<int> allowed = skyloft::allowed_cores();
  if (allowed.empty()) {
    fmt::print(stderr, "skyloft_micro: no allowed cores\n");
    return 2;
  }
  if (g_opt.core < 0) g_opt.core = allowed.back();
  if (std::find(allowed.begin(), allowed.end(), g_opt.core) == allowed.end()) {
    fmt::print(stderr, "skyloft_micro: --core {} is not in the allowed cores {}\n", g_opt.core,
               skyloft::format_core_list(allowed));
    return 2;
  }
  bool have_cross = true;
  if (g_opt.cross.empty()) {
    if (allowed.size() >= 2) g_opt.cross = {allowed[0], allowed[1]};
    else have_cross = false;
  }
  const int core = g_opt.core;
  const int c0 = have_cross ? g_opt.cross[0] : -1;
  const int c1 = have_cross ? g_opt.cross[1] : -1;

  skyloft::Config base = make_config(std::to_string(core));

  // ---- header ----
  fmt::print("skyloft microbenchmarks\n");
  fmt::print("  machine : nproc {} (allowed cores {}), CPU {}, kernel {}\n", std::thread::hardware_concurrency(),
             skyloft::format_core_list(allowed), read_cpu_model(), kernel_string());
  fmt::print("  compiler: g++ {}{}\n", __VERSION__,
#ifdef NDEBUG
             ", NDEBUG"
#else
             ", assertions ON (not a release build?)"
#endif
  );
  fmt::print("  skyloft : policy fifo, spin_us {}{}, stack {} KiB; one-core rows on core {}, cross-core row on cores {},{}\n",
             base.spin_us, g_opt.spin_us ? " (--spin-us)" : " (default/SKYLOFT_SPIN_US)", base.stack_size / 1024, core,
             have_cross ? std::to_string(c0) : "-", have_cross ? std::to_string(c1) : "-");
  fmt::print("  method  : {} runs per cell, each calibrated to ~{} ms{}; cell = median [min-max] of per-run mean ns/op\n",
             g_opt.runs, g_opt.target_ms, g_opt.quick ? " (--quick)" : "");
  std::fflush(stdout);

  std::thread dog(watchdog);

  std::vector<Row> rows;
  rows.push_back({"spawn_join", "spawn+join (empty)", "ns/spawn+join", {}, {}, {},
                  "<=100ns, >=2.5x Boost, >=300x std",
                  {{"<=100ns", [](const Row& r) -> std::optional<bool> {
                      if (!r.sky.measured) return std::nullopt;
                      return r.sky.median <= 100; }},
                   {">=2.5x Boost", [](const Row& r) -> std::optional<bool> {
                      auto s = speedup(r.sky, r.boost); if (!s) return std::nullopt; return *s >= 2.5; }},
                   {">=300x std", [](const Row& r) -> std::optional<bool> {
                      auto s = speedup(r.sky, r.stdt); if (!s) return std::nullopt; return *s >= 300; }}}});
  rows.push_back({"yield", "yield ping-pong, 1 core", "ns/yield", {}, {}, {},
                  "<=20ns, >=3x Boost",
                  {{"<=20ns", [](const Row& r) -> std::optional<bool> {
                      if (!r.sky.measured) return std::nullopt;
                      return r.sky.median <= 20; }},
                   {">=3x Boost", [](const Row& r) -> std::optional<bool> {
                      auto s = speedup(r.sky, r.boost); if (!s) return std::nullopt; return *s >= 3; }}}});
  rows.push_back({"mutex", "mutex lock+unlock, uncont.", "ns/lock+unlock", {}, {}, {},
                  "<=1.5x std::mutex",
                  {{"<=1.5x std", [](const Row& r) -> std::optional<bool> {
                      auto s = speedup(r.sky, r.stdt); if (!s) return std::nullopt; return *s >= 1.0 / 1.5; }}}});
  rows.push_back({"condvar_1core", "condvar ping-pong, 1 core", "ns/round trip", {}, {}, {},
                  ">=3x Boost, >=300x std",
                  {{">=3x Boost", [](const Row& r) -> std::optional<bool> {
                      auto s = speedup(r.sky, r.boost); if (!s) return std::nullopt; return *s >= 3; }},
                   {">=300x std", [](const Row& r) -> std::optional<bool> {
                      auto s = speedup(r.sky, r.stdt); if (!s) return std::nullopt; return *s >= 300; }}}});
  rows.push_back({"condvar_2core", "condvar ping-pong, 2 cores", "ns/round trip", {}, {}, {}, "-", {}});
  Row& r_spawn = rows[0];
  Row& r_yield = rows[1];
  Row& r_mutex = rows[2];
  Row& r_cv1 = rows[3];
  Row& r_cv2 = rows[4];
  for (auto& r : rows) {
    if (!selected(r.key)) r.sky.na = r.stdt.na = r.boost.na = "skipped";
  }
  if (!have_cross) r_cv2.sky.na = r_cv2.stdt.na = r_cv2.boost.na = "n/a (1 core)";

  // ---- skyloft, one core ----
  if (selected("spawn_join") || selected("yield") || selected("mutex") || selected("condvar_1core")) {
    try {
      skyloft::Runtime rt(base);
      if (selected("spawn_join")) r_spawn.sky = sky_measure(rt, "skyloft spawn_join", sky_spawn_join);
      if (selected("yield")) r_yield.sky = sky_measure(rt, "skyloft yield", sky_yield_pingpong);
      if (selected("mutex")) r_mutex.sky = sky_measure(rt, "skyloft mutex", sky_mutex);
      if (selected("condvar_1core"))
        r_cv1.sky = sky_measure(rt, "skyloft condvar_1core",
                                [core](std::uint64_t n) { return sky_condvar(n, core, core); });
      report_shutdown(rt, "one-core");
    } catch (const std::exception& e) {
      fmt::print(stderr, "skyloft_micro: one-core runtime failed: {}\n", e.what());
    }
  }

  // ---- skyloft, two cores ----
  std::string cross_note;
  if (have_cross && selected("condvar_2core")) {
    try {
      skyloft::Config cfg = make_config(fmt::format("{},{}", c0, c1));
      skyloft::Runtime rt(cfg);
      auto before = rt.stats();
      r_cv2.sky = sky_measure(rt, "skyloft condvar_2core",
                              [c0, c1](std::uint64_t n) { return sky_condvar(n, c0, c1); });
      auto after = rt.stats();
      std::vector<int> cores = rt.worker_cores();
      std::vector<std::string> parts;
      for (std::size_t w = 0; w < after.size() && w < before.size(); ++w) {
        parts.push_back(fmt::format("w{}(core {}): switches {}, parks {}, steals {}", w, after[w].core,
                                    after[w].switches - before[w].switches, after[w].parks - before[w].parks,
                                    after[w].steals - before[w].steals));
      }
      const auto& pl = g_cross_placement;
      auto wc = [&](int w) { return w >= 0 && static_cast<std::size_t>(w) < cores.size() ? cores[w] : -1; };
      const std::uint64_t handoffs = pl.same_worker + pl.other_worker;
      const double cross_pct = handoffs ? 100.0 * static_cast<double>(pl.other_worker) / static_cast<double>(handoffs) : 0;
      cross_note = fmt::format(
          "* skyloft 2-core condvar placement: parties started on cores {} and {} (hints {} and {}); over the series\n"
          "  {:.1f}% of {} hand-overs crossed cores ({} same-core){}; {} task migrations in {} wake-ups\n"
          "  worker stats over the series: {}",
          wc(pl.start_worker[0]), wc(pl.start_worker[1]), c0, c1, cross_pct, handoffs, pl.same_worker,
          cross_pct < 90 ? "  <-- the row is NOT a pure cross-core measurement" : "", pl.migrations,
          pl.iterations, fmt::join(parts, "; "));
      if (cross_pct < 90 && r_cv2.sky.measured) r_cv2.sky.na = "*";  // flag the cell; see the note
      report_shutdown(rt, "two-core");
    } catch (const std::exception& e) {
      fmt::print(stderr, "skyloft_micro: two-core runtime failed: {}\n", e.what());
    }
  }

  // ---- std::thread and Boost.Fiber ----
  // The one-core rows run with the main thread pinned to `core` (threads it creates inherit that), like the
  // one-core skyloft runtime; the affinity is restored afterwards.
  cpu_set_t saved;
  CPU_ZERO(&saved);
  pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved);
  pin_self(core);

  if (selected("spawn_join")) {
    r_spawn.stdt = guarded("std spawn_join", [] { return measure("std spawn_join", std_spawn_join); });
    r_spawn.boost = guarded("boost spawn_join", [] { return measure("boost spawn_join", boost_spawn_join); });
  }
  if (selected("yield")) {
    r_yield.stdt = guarded("std yield", [core] {
      return measure("std yield", [core](std::uint64_t n) { return std_yield_pingpong(n, core); });
    });
    r_yield.boost = guarded("boost yield", [] { return measure("boost yield", boost_yield_pingpong); });
  }
  if (selected("mutex")) {
    r_mutex.stdt = guarded("std mutex", [] { return measure("std mutex", std_mutex); });
    r_mutex.boost = guarded("boost mutex", [] { return measure("boost mutex", boost_mutex); });
  }
  if (selected("condvar_1core")) {
    r_cv1.stdt = guarded("std condvar_1core", [core] {
      return measure("std condvar_1core", [core](std::uint64_t n) { return std_condvar(n, core, core); });
    });
    r_cv1.boost = guarded("boost condvar_1core", [] { return measure("boost condvar_1core", boost_condvar_1core); });
  }
  pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);

  if (have_cross && selected("condvar_2core")) {
    r_cv2.stdt = guarded("std condvar_2core", [c0, c1] {
      return measure("std condvar_2core", [c0, c1](std::uint64_t n) { return std_condvar(n, c0, c1); });
    });
    r_cv2.boost = guarded("boost condvar_2core", [c0, c1] {
      return measure("boost condvar_2core", [c0, c1](std::uint64_t n) { return boost_condvar_2core(n, c0, c1); });
    });
  }

  g_stop_watchdog.store(true);
  dog.join();

  // ---- the table ----
  std::vector<std::vector<std::string>> cells;
  std::vector<std::string> head = {"benchmark (unit)", "skyloft", "std::thread", "Boost.Fiber",
                                   "vs Boost", "vs std", "target", "met"};
  for (const auto& r : rows) {
    cells.push_back({fmt::format("{} ({})", r.title, r.unit), cell(r.sky), cell(r.stdt), cell(r.boost),
                     ratio_cell(speedup(r.sky, r.boost)), ratio_cell(speedup(r.sky, r.stdt)), r.target,
                     met_cell(r)});
  }
  std::vector<std::size_t> w(head.size());
  for (std::size_t i = 0; i < head.size(); ++i) {
    w[i] = head[i].size();
    for (const auto& c : cells) w[i] = std::max(w[i], c[i].size());
  }
  auto print_line = [&](const std::vector<std::string>& c) {
    std::string line;
    for (std::size_t i = 0; i < c.size(); ++i) {
      if (i == 0 || i >= 6) line += fmt::format("{:<{}}", c[i], w[i]);
      else line += fmt::format("{:>{}}", c[i], w[i]);
      if (i + 1 < c.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    fmt::print("{}\n", line);
  };
  fmt::print("\n");
  print_line(head);
  std::size_t total = 0;
  for (auto x : w) total += x + 2;
  fmt::print("{}\n", std::string(total - 2, '-'));
  for (const auto& c : cells) print_line(c);
  fmt::print("\n");
  fmt::print("vs Boost / vs std = other median / skyloft median (>1: skyloft faster). Nothing subtracted.\n");
  fmt::print("std::thread: yield = std::this_thread::yield (sched_yield) with both threads pinned to core {};\n"
             "  spawn+join, mutex and 1-core condvar run on core {} too; 2-core condvar pins the threads to {} and {}.\n",
             core, core, c0, c1);
  fmt::print("Boost.Fiber: round_robin scheduler, fibers on one thread pinned to core {}; the 2-core condvar row\n"
             "  uses two kernel threads (cores {},{}) each running one party in its main fiber with\n"
             "  boost::fibers::mutex/condition_variable across threads.\n",
             core, c0, c1);
  if (!cross_note.empty()) fmt::print("{}\n", cross_note);

  // ---- CSV ----
  try {
    std::filesystem::path p(g_opt.csv);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p);
    if (!out) throw std::runtime_error("cannot open " + g_opt.csv);
    out << "benchmark,system,median_ns,min_ns,max_ns,runs,ops_per_run\n";
    for (const auto& r : rows) {
      const std::pair<const char*, const Series*> sys[] = {
          {"skyloft", &r.sky}, {"std_thread", &r.stdt}, {"boost_fiber", &r.boost}};
      for (const auto& [name, s] : sys) {
        if (!s->measured) continue;
        out << fmt::format("{},{},{:.3f},{:.3f},{:.3f},{},{}\n", r.key, name, s->median, s->min, s->max, s->runs,
                           s->ops);
      }
    }
    fmt::print("CSV: {}\n", g_opt.csv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "skyloft_micro: writing CSV failed: {}\n", e.what());
    return 1;
  }
  return 0;
}
