// lcbe.cpp - LC + BE co-location (issue 10, benchmark 7b): a latency-critical server and a best-effort
// batch job on the same cores, under skyloftd's lcbe rule and under Linux's two best-effort settings.
// Table on stdout, CSV with --csv, PNG with --png (bench/plot_lcbe.py, /usr/bin/python3 + matplotlib).
//
// The LC app serves a Poisson stream from the in-process generator of the synthetic server
// (synthetic/inprocess.hpp: the same schedule, request slots and Linux pool), 99.5% 4 us / 0.5% 10 ms of
// spinning service (synthetic/spin.hpp). The BE app spins in units of a fixed amount of arithmetic, one
// worker per core, and counts them. Each is a process of its own (forks of this program):
//
//   sky-alone   skyloftd + the LC app (skyloft, rr with a 30 us preemption quantum)
//   sky+be      skyloftd + the BE app (skyloft, class be) + the LC app (class lc)
//   nice19      the LC app as a Linux thread pool with one FIFO, the BE app as plain threads at nice 19
//   idle        the same, the BE threads at SCHED_IDLE
//
// Load: a fraction of capacity, computed from the mix: cores / mean service time.
// BE CPU share: the BE app's units per second in the measured window over the units one core does per
// second of CPU time (measured at the start of each run by one pinned thread, by its own CPU clock, so
// other processes do not lower it), i.e. cores' worth of BE work; "of spare" divides by the cores the LC
// load leaves, cores x (1 - load). Other processes' CPU share during each series is printed beside it.
// Core acquisition (a request finding the LC app with nothing in flight, so that under sky+be every core
// is the BE app's): from the generator's submit to the request's start (its completion minus its service,
// which it spins on-core), 4 us requests only. Under sky+be that is the LC wake-up, the nudge, the BE
// worker's poll point, the handover and the LC dispatch; sky-alone shows the same path without a BE owner.
//
// Every child gets PR_SET_PDEATHSIG, and the parent stops the daemon and the apps on every exit path
// (normal end, an error, a hung child past its deadline, SIGINT / SIGTERM).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench_common.hpp"
#include "inprocess.hpp"
#include "spin.hpp"
#include "realtime.hpp"
#include "skyloft/skyloft.hpp"
#include "units.hpp"

namespace {

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
};

struct Shared {
  std::atomic<std::uint32_t> be_ready{0};  // BE child: its workers count
  std::atomic<std::uint32_t> be_stop{0};   // parent
  std::atomic<std::uint32_t> npoints{0};   // LC child, after each point
  char error[512] = {};                    // a child that fails says why here
  Counter be_units[kMaxCores];
  PointOut points[kMaxPoints];
};

void set_error(Shared* sh, const std::string& e) {
  std::snprintf(sh->error, sizeof sh->error, "%s", e.c_str());
}

std::uint64_t be_units_sum(const Shared* sh) {
  std::uint64_t s = 0;
  for (const Counter& c : sh->be_units) s += c.v.load(std::memory_order_relaxed);
  return s;
}

// One BE unit: a chain of multiplies the compiler cannot shorten.
std::uint64_t be_unit(std::uint64_t x) {
  for (int i = 0; i < kUnitRounds; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
  return x;
}

// A BE worker's loop: units until told to stop, counted in its own slot; a preempt point per unit (the
// revocation under a daemon is seen there; outside a task it is a no-op).
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

// BE units per second of CPU time, of one thread pinned to `core` (the best of three 100 ms windows of
// its own CPU time, so that other processes on the core do not lower it).
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

// ---- the plan ----

struct Plan {
  std::vector<int> cores;
  std::string cores_text;
  std::vector<double> loads;  // fractions of capacity
  int runs = 3;
  std::uint64_t warmup_ns = 200'000'000, duration_ns = 1'000'000'000, drain_ns = 500'000'000;
  std::string skyloftd = SKYLOFTD_DEFAULT_PATH;
  std::string csv, png;
  bool quick = false;
  double capacity_rps = 0;
  std::string mix_text = "bimodal:0.995:4us:10ms";
};

syn::ServerOptions point_options(const Plan& plan, int run) {
  syn::ServerOptions o;
  o.serve = syn::serve_request;  // the synthetic spin
  o.mix = skyloft::loadgen::RequestMix::parse(plan.mix_text);
  o.warmup_ns = plan.warmup_ns;
  o.duration_ns = plan.duration_ns;
  o.drain_ns = plan.drain_ns;
  o.seed = static_cast<std::uint64_t>(run) + 1;
  o.threads = static_cast<int>(plan.cores.size());
  return o;
}

// ---- the LC child ----

// One load point: the generator loop (this thread), with the BE counters sampled between submits and the
// acquisition samples taken from the finished slots.
PointOut measure_point(const syn::ServerOptions& o, double load, double rate, Shared* sh,
                       const std::function<void(syn::PointState*, std::size_t)>& serve) {
  std::vector<std::uint64_t> submitted;
  std::vector<std::uint8_t> idle;  // nothing in flight when it was submitted
  struct BeSample {
    std::uint64_t t, units;
  };
  std::vector<BeSample> be;
  be.reserve(4096);
  auto submit = [&](syn::PointState* s, std::size_t slot) {
    if (slot == 0) {  // the whole schedule is drawn before the first submit
      submitted.assign(s->intended.size(), 0);
      idle.assign(s->intended.size(), 0);
    }
    const std::uint64_t t = skyloft::now_ns();
    submitted[slot] = t;
    idle[slot] = s->finished.load(std::memory_order_acquire) == slot;
    if (be.empty() || t - be.back().t >= kBeSampleNs) be.push_back({t, be_units_sum(sh)});
    serve(s, slot);
  };
  std::vector<double> acq;
  double be_rate = NAN;
  auto inspect = [&](const syn::PointState& s) {
    for (std::size_t i = 0; i < s.intended.size(); ++i) {
      if (!idle[i] || s.service[i] >= kShortServiceNs || s.done_at[i] == syn::kNotDone) continue;
      if (s.intended[i] < s.measure_from || s.intended[i] >= s.send_end) continue;
      const std::uint64_t start = s.done_at[i] - std::min(s.done_at[i], s.service[i]);
      acq.push_back(start > submitted[i] ? static_cast<double>(start - submitted[i]) / 1000.0 : 0.0);
    }
    const BeSample* a = nullptr;
    const BeSample* b = nullptr;
    for (const BeSample& x : be) {
      if (x.t >= s.measure_from && a == nullptr) a = &x;
      if (x.t <= s.send_end) b = &x;
    }
    if (a != nullptr && b != nullptr && b->t > a->t) {
      be_rate = static_cast<double>(b->units - a->units) * 1e9 / static_cast<double>(b->t - a->t);
    }
  };
  skyloft::loadgen::PointResult r = syn::run_point(o, rate, submit, inspect);
  PointOut p;
  p.load = load;
  p.rate = rate;
  p.achieved = r.achieved_rps();
  p.sent = r.sent;
  p.completed = r.completed;
  p.unanswered = r.unanswered;
  p.p50_us = static_cast<double>(r.latency_ns.quantile(0.50)) / 1000.0;
  p.p99_us = static_cast<double>(r.latency_ns.quantile(0.99)) / 1000.0;
  p.p999_us = static_cast<double>(r.latency_ns.quantile(0.999)) / 1000.0;
  p.lag_p99_us = static_cast<double>(r.send_lag_ns.quantile(0.99)) / 1000.0;
  p.be_units_per_s = be_rate;
  std::sort(acq.begin(), acq.end());
  p.acq_n = acq.size();
  if (!acq.empty()) {
    p.acq_p50_us = bench::nearest_rank(acq, 0.50);
    p.acq_p99_us = bench::nearest_rank(acq, 0.99);
    p.acq_max_us = acq.back();
  }
  return p;
}

// The sweep on its own generator thread (its short slice must not be inherited by the server's threads).
void sweep(const Plan& plan, int run, Shared* sh, const std::function<void(syn::PointState*, std::size_t)>& serve) {
  std::thread([&] {
    (void)skyloft::loadgen::set_generator_slice(kGeneratorSliceUs);  // an older kernel: the default slice
    const syn::ServerOptions o = point_options(plan, run);
    for (double load : plan.loads) {
      const std::uint32_t k = sh->npoints.load();
      sh->points[k] = measure_point(o, load, load * plan.capacity_rps, sh, serve);
      sh->npoints.store(k + 1);
    }
  }).join();
}

int lc_child(const Plan& plan, int run, Series s, Shared* sh, const std::string& socket) {
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  try {
    if (on_skyloft(s)) {
      skyloft::Config cfg;
      cfg.daemon = socket;
      cfg.app_class = "lc";
      cfg.app_name = "lcbe-lc";
      cfg.policy = "rr";
      cfg.preempt = "flag";
      cfg.quantum_us = 30;
      skyloft::Runtime rt(cfg);
      sweep(plan, run, sh, [](syn::PointState* st, std::size_t slot) { skyloft::spawn([st, slot] { st->run(slot); }).detach(); });
      rt.shutdown();
    } else {
      syn::LinuxPool pool(point_options(plan, run));
      sweep(plan, run, sh, [&pool](syn::PointState* st, std::size_t slot) { pool.submit(st, slot); });
    }
  } catch (const std::exception& e) {
    set_error(sh, fmt::format("LC app: {}", e.what()));
    return 1;
  }
  return 0;
}

// ---- the BE child ----

int be_child(const Plan& plan, Series s, Shared* sh, const std::string& socket) {
  const int n = static_cast<int>(plan.cores.size());
  try {
    if (on_skyloft(s)) {
      skyloft::Config cfg;
      cfg.daemon = socket;
      cfg.app_class = "be";
      cfg.app_name = "lcbe-be";
      skyloft::Runtime rt(cfg);
      std::vector<skyloft::JoinHandle> tasks;
      for (int i = 0; i < static_cast<int>(rt.num_workers()) && i < kMaxCores; ++i) {
        tasks.push_back(skyloft::spawn([sh, i] { be_loop(sh, i); }));
      }
      sh->be_ready.store(1);
      for (auto& t : tasks) t.join();
      rt.shutdown();
    } else {
      std::vector<std::thread> threads;
      std::atomic<int> failed{0};
      for (int i = 0; i < n && i < kMaxCores; ++i) {
        threads.emplace_back([&, i] {
          int rc;
          if (s == Series::nice19) {
            rc = setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19);
          } else {
            sched_param sp{};
            rc = sched_setscheduler(0, SCHED_IDLE, &sp);  // this thread only (Linux: per thread)
          }
          if (rc != 0) failed.store(errno);
          be_loop(sh, i);
        });
      }
      while (be_units_sum(sh) == 0 && sh->be_stop.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (failed.load() != 0) {
        set_error(sh, fmt::format("BE app: cannot set {}: {}", series_name(s), std::strerror(failed.load())));
        sh->be_stop.store(1);
      }
      sh->be_ready.store(1);
      for (auto& t : threads) t.join();
      if (sh->error[0] != '\0') return 1;
    }
  } catch (const std::exception& e) {
    set_error(sh, fmt::format("BE app: {}", e.what()));
    sh->be_ready.store(1);
    return 1;
  }
  return 0;
}

// ---- children: started, watched, stopped on every path ----

// The live children and the daemon's directory, for the signal handler (async-signal-safe use only).
volatile sig_atomic_t g_pids[3] = {0, 0, 0};
char g_socket[256] = {};
char g_dir[256] = {};

void kill_children_now() {
  for (auto& p : g_pids) {
    if (p > 0) ::kill(p, SIGKILL);
  }
  if (g_socket[0] != '\0') ::unlink(g_socket);
  if (g_dir[0] != '\0') ::rmdir(g_dir);
}

void on_signal(int sig) {
  kill_children_now();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

pid_t spawn_child(int slot, const std::function<int()>& body) {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    _exit(body());
  }
  if (pid > 0) g_pids[slot] = pid;
  return pid;
}

// Waits for `pid` until `deadline_ns`; its exit status, or nullopt when it is still running.
std::optional<int> wait_until(pid_t pid, std::uint64_t deadline_ns) {
  for (;;) {
    int st = 0;
    const pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (r < 0 && errno != EINTR) return -1;
    if (bench::now_ns() >= deadline_ns) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// Stops child `slot`: lets it end by itself for `grace_ms`, then sends `sig`, then SIGKILL after a
// second; reaps it.
void stop_child(int slot, int grace_ms, int sig) {
  const pid_t pid = g_pids[slot];
  if (pid <= 0) return;
  if (wait_until(pid, bench::now_ns() + static_cast<std::uint64_t>(grace_ms) * 1'000'000)) {
    g_pids[slot] = 0;
    return;
  }
  ::kill(pid, sig);
  if (!wait_until(pid, bench::now_ns() + 1'000'000'000)) {
    ::kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  g_pids[slot] = 0;
}

enum Slot { kDaemon = 0, kBe = 1, kLc = 2 };

// One series of one run: daemon (skyloft series), BE app, LC app sweeping every load. Returns the points,
// or an error message. Everything it started is stopped before it returns.
struct SeriesResult {
  std::vector<PointOut> points;
  std::string error;
  double others_pct = -1;  // other processes' share of the machine's CPU meanwhile
};

SeriesResult run_series(const Plan& plan, int run, Series s, Shared* sh) {
  SeriesResult out;
  new (sh) Shared();
  std::string socket;
  const bench::CpuSnap before = bench::cpu_snap();
  rusage ru0{};
  getrusage(RUSAGE_CHILDREN, &ru0);
  auto cleanup = [&] {
    sh->be_stop.store(1);
    stop_child(kLc, 0, SIGKILL);     // only still running on an error path
    stop_child(kBe, 2000, SIGTERM);  // told to stop: its tasks return and it unregisters
    stop_child(kDaemon, 0, SIGTERM);
    if (g_socket[0] != '\0') ::unlink(g_socket);
    if (g_dir[0] != '\0') ::rmdir(g_dir);
    g_socket[0] = g_dir[0] = '\0';
  };
  auto fail = [&](std::string e) {
    if (sh->error[0] != '\0') e += std::string(": ") + sh->error;
    cleanup();
    out.error = std::move(e);
    return out;
  };
  if (on_skyloft(s)) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/skyloft-lcbe-XXXXXX";
    if (tmpl.size() >= sizeof g_dir - 16 || mkdtemp(tmpl.data()) == nullptr) return fail("cannot create a directory for the daemon's socket");
    std::snprintf(g_dir, sizeof g_dir, "%s", tmpl.c_str());
    socket = tmpl + "/skyloftd.sock";
    std::snprintf(g_socket, sizeof g_socket, "%s", socket.c_str());
    const std::string log = tmpl + "/skyloftd.log";
    spawn_child(kDaemon, [&] {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0) dup2(fd, 2);
      execl(plan.skyloftd.c_str(), plan.skyloftd.c_str(), "--cores", plan.cores_text.c_str(), "--socket", socket.c_str(), nullptr);
      std::fprintf(stderr, "cannot run %s: %s\n", plan.skyloftd.c_str(), std::strerror(errno));
      return 127;
    });
    const std::uint64_t deadline = bench::now_ns() + 5'000'000'000;
    while (access(socket.c_str(), F_OK) != 0) {
      if (wait_until(g_pids[kDaemon], bench::now_ns()).has_value() || bench::now_ns() > deadline) {
        g_pids[kDaemon] = 0;
        std::string why;
        std::ifstream in(log);
        std::getline(in, why);
        ::unlink(log.c_str());
        return fail(fmt::format("skyloftd ({}) did not start{}", plan.skyloftd, why.empty() ? "" : ": " + why));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ::unlink(log.c_str());  // open in the daemon still; gone with it
  }
  if (has_be(s)) {
    spawn_child(kBe, [&] { return be_child(plan, s, sh, socket); });
    const std::uint64_t deadline = bench::now_ns() + 10'000'000'000;
    while (sh->be_ready.load() == 0 || be_units_sum(sh) == 0) {
      if (sh->error[0] != '\0' || bench::now_ns() > deadline || wait_until(g_pids[kBe], bench::now_ns()).has_value()) {
        g_pids[kBe] = 0;
        return fail("the BE app did not start");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  spawn_child(kLc, [&] { return lc_child(plan, run, s, sh, socket); });
  const double point_s = static_cast<double>(plan.warmup_ns + plan.duration_ns + plan.drain_ns) / 1e9 + 0.05;
  const auto budget_ns = static_cast<std::uint64_t>((static_cast<double>(plan.loads.size()) * point_s * 3 + 20) * 1e9);
  std::optional<int> rc = wait_until(g_pids[kLc], bench::now_ns() + budget_ns);
  if (!rc) return fail(fmt::format("the LC app did not finish within {:.0f} s ({} of {} points done)",
                                   static_cast<double>(budget_ns) / 1e9, sh->npoints.load(), plan.loads.size()));
  g_pids[kLc] = 0;
  if (*rc != 0) return fail(fmt::format("the LC app exited with status {}", *rc));
  cleanup();
  if (sh->error[0] != '\0') {
    out.error = sh->error;
    return out;
  }
  for (std::uint32_t i = 0; i < sh->npoints.load() && i < kMaxPoints; ++i) out.points.push_back(sh->points[i]);
  const bench::CpuSnap after = bench::cpu_snap();
  rusage ru1{};
  getrusage(RUSAGE_CHILDREN, &ru1);
  auto secs = [](const rusage& r) {
    return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
  };
  if (before.ok && after.ok && after.total > before.total) {
    const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double ours = (secs(ru1) - secs(ru0)) * tick + static_cast<double>(after.self - before.self);
    const double busy = static_cast<double>(after.busy - before.busy);
    out.others_pct = std::max(0.0, 100.0 * (busy - ours) / static_cast<double>(after.total - before.total));
  }
  return out;
}

// ---- report ----

std::string us(double v) { return std::isnan(v) ? "-" : v >= 100 ? fmt::format("{:.0f}", v) : fmt::format("{:.1f}", v); }
std::string pct(double v) { return std::isnan(v) ? "-" : fmt::format("{:.0f}%", 100 * v); }
// "median [min-max]" of one cell over the runs (just the value for one run).
std::string cell(const std::vector<double>& v, const std::function<std::string(double)>& f) {
  bench::Spread sp = bench::spread(v);
  if (std::isnan(sp.median)) return "-";
  if (v.size() < 2) return f(sp.median);
  return fmt::format("{} [{}-{}]", f(sp.median), f(sp.min), f(sp.max));
}

constexpr const char* kUsage =
    "usage: {} [--quick] [--runs N] [--loads PCT,...] [--duration-ms MS] [--warmup-ms MS] [--cores LIST]\n"
    "          [--skyloftd PATH] [--csv PATH] [--png PATH]\n"
    "  LC + BE co-location: LC p50/p99, BE CPU share and core acquisition for each LC load (percent of\n"
    "  capacity = cores / mean service), under skyloftd (LC alone, LC + BE) and under Linux (BE at nice 19,\n"
    "  BE at SCHED_IDLE). Defaults: 3 runs, loads 10,20,...,90, 1000 ms points after 200 ms of warm-up, all\n"
    "  allowed cores. --quick: 1 run, loads 10,50,90, 300 ms points (CI). --png needs /usr/bin/python3 with\n"
    "  matplotlib (default: the CSV's path with .png, when --csv is given).\n";

}  // namespace

int main(int argc, char** argv) {
  Plan plan;
  bench::Args args(argc, argv, "skyloft_lcbe", kUsage);
  std::string loads_text;
  bool runs_set = false, duration_set = false, warmup_set = false;
  while (args.next()) {
    if (args.arg() == "--quick") {
      plan.quick = true;
    } else if (args.is("--runs")) {
      plan.runs = static_cast<int>(args.long_value("--runs", 1, 100));
      runs_set = true;
    } else if (args.is("--loads")) {
      loads_text = args.value();
    } else if (args.is("--duration-ms")) {
      plan.duration_ns = static_cast<std::uint64_t>(args.long_value("--duration-ms", 50, 600'000)) * 1'000'000;
      duration_set = true;
    } else if (args.is("--warmup-ms")) {
      plan.warmup_ns = static_cast<std::uint64_t>(args.long_value("--warmup-ms", 0, 60'000)) * 1'000'000;
      warmup_set = true;
    } else if (args.is("--cores")) {
      plan.cores_text = args.value();
      try {
        plan.cores = skyloft::parse_core_list(plan.cores_text);
      } catch (const std::exception& e) {
        args.usage(fmt::format("--cores '{}': {}", plan.cores_text, e.what()));
      }
    } else if (args.is("--skyloftd")) {
      plan.skyloftd = args.value();
    } else if (args.is("--csv")) {
      plan.csv = args.value();
    } else if (args.is("--png")) {
      plan.png = args.value();
    } else {
      args.usage("unknown argument '" + args.arg() + "'");
    }
  }
  if (plan.quick) {
    if (!runs_set) plan.runs = 1;
    if (!duration_set) plan.duration_ns = 300'000'000;
    if (!warmup_set) plan.warmup_ns = 100'000'000;
    plan.drain_ns = 200'000'000;
    if (loads_text.empty()) loads_text = "10,50,90";
  }
  if (loads_text.empty()) loads_text = "10,20,30,40,50,60,70,80,90";
  for (std::size_t pos = 0; pos <= loads_text.size();) {
    const std::size_t comma = std::min(loads_text.find(',', pos), loads_text.size());
    plan.loads.push_back(args.parse_double("--loads", loads_text.substr(pos, comma - pos), 1, 100) / 100.0);
    pos = comma + 1;
  }
  if (plan.loads.size() > kMaxPoints) args.usage(fmt::format("--loads: at most {} points", kMaxPoints));
  const std::vector<int> allowed = skyloft::allowed_cores();
  if (plan.cores.empty()) plan.cores = allowed;
  for (int c : plan.cores) {
    if (std::find(allowed.begin(), allowed.end(), c) == allowed.end()) {
      args.usage(fmt::format("--cores: core {} is not one this process may run on ({})", c, skyloft::format_core_list(allowed)));
    }
  }
  if (plan.cores.empty() || plan.cores.size() > kMaxCores) args.usage("--cores: need 1..64 cores");
  plan.cores_text = skyloft::format_core_list(plan.cores);
  if (access(plan.skyloftd.c_str(), X_OK) != 0) args.usage(fmt::format("--skyloftd: cannot run '{}'", plan.skyloftd));
  if (plan.png.empty() && !plan.csv.empty()) {
    plan.png = plan.csv;
    const std::size_t dot = plan.png.rfind('.');
    if (dot != std::string::npos && plan.png.find('/', dot) == std::string::npos) plan.png.resize(dot);
    plan.png += ".png";
  }
  const skyloft::loadgen::RequestMix mix = skyloft::loadgen::RequestMix::parse(plan.mix_text);
  const double ncores = static_cast<double>(plan.cores.size());
  plan.capacity_rps = ncores * 1e9 / mix.mean_ns();

  // The children inherit the cores: the Linux series run on the same ones as the daemon's.
  {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c : plan.cores) CPU_SET(c, &set);
    sched_setaffinity(0, sizeof set, &set);
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);

  fmt::print("skyloft_lcbe: LC + BE co-location on cores {} ({} runs; one shared machine: indicative)\n", plan.cores_text, plan.runs);
  bench::print_machine(skyloft::format_core_list(allowed));
  fmt::print("  LC: Poisson arrivals, mix {} (mean {:.2f} us), capacity {:.0f} rps on {} cores; skyloft rr, 30 us quantum (flag);\n"
             "      Linux: a pool of {} threads with one FIFO. Points: {} ms after {} ms of warm-up.\n"
             "  BE: {} workers spinning in units of work; share = units/s over the units one core does per CPU second.\n",
             mix.describe(), mix.mean_ns() / 1000.0, plan.capacity_rps, plan.cores.size(),
             plan.cores.size(), plan.duration_ns / 1'000'000, plan.warmup_ns / 1'000'000, plan.cores.size());

  auto* sh = static_cast<Shared*>(mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (sh == MAP_FAILED) {
    fmt::print(stderr, "skyloft_lcbe: mmap: {}\n", std::strerror(errno));
    return 1;
  }
  std::ofstream csv;
  if (!plan.csv.empty()) {
    csv = bench::open_csv(plan.csv,
                          "run,series,load_pct,rate_rps,achieved_rps,sent,completed,unanswered,lc_p50_us,lc_p99_us,lc_p999_us,"
                          "send_lag_p99_us,be_cores,be_share_machine,be_share_spare,acq_n,acq_p50_us,acq_p99_us,acq_max_us,"
                          "others_cpu_pct,unit_rate_per_core\n");
  }
  // results[series][point] = one PointOut per run; be share filled in below.
  std::map<Series, std::vector<std::vector<PointOut>>> results;
  std::map<Series, std::vector<std::vector<double>>> be_spare, be_machine;
  std::vector<double> unit_rates;
  for (int run = 0; run < plan.runs; ++run) {
    const double unit_rate = unit_rate_per_core(plan.cores.front());
    unit_rates.push_back(unit_rate);
    fmt::print("\nrun {}: one core does {:.2f} M BE units per CPU second\n", run + 1, unit_rate / 1e6);
    for (Series s : kSeries) {
      fmt::print(stderr, "skyloft_lcbe: run {} {} ...\n", run + 1, series_name(s));
      SeriesResult r = run_series(plan, run, s, sh);
      if (!r.error.empty()) {
        fmt::print(stderr, "skyloft_lcbe: {}: {}\n", series_name(s), r.error);
        return 1;
      }
      auto& per_point = results[s];
      auto& spare = be_spare[s];
      auto& machine = be_machine[s];
      per_point.resize(r.points.size());
      spare.resize(r.points.size());
      machine.resize(r.points.size());
      std::string line = fmt::format("  {:<9}", series_name(s));
      for (std::size_t i = 0; i < r.points.size(); ++i) {
        const PointOut& p = r.points[i];
        per_point[i].push_back(p);
        const double be_cores = p.be_units_per_s / unit_rate;
        const double sm = be_cores / ncores, ss = be_cores / (ncores * (1 - p.load));
        spare[i].push_back(ss);
        machine[i].push_back(sm);
        line += fmt::format(" {:.0f}%:{}/{}", 100 * p.load, us(p.p99_us), pct(ss));
        if (csv.is_open()) {
          csv << fmt::format("{},{},{:.0f},{:.0f},{:.0f},{},{},{},{:.2f},{:.2f},{:.2f},{:.2f},{:.4f},{:.4f},{:.4f},{},{:.2f},{:.2f},{:.2f},{:.1f},{:.0f}\n",
                             run + 1, series_name(s), 100 * p.load, p.rate, p.achieved, p.sent, p.completed, p.unanswered,
                             p.p50_us, p.p99_us, p.p999_us, p.lag_p99_us, be_cores, sm, ss, p.acq_n, p.acq_p50_us,
                             p.acq_p99_us, p.acq_max_us, r.others_pct, unit_rate);
        }
      }
      fmt::print("{}   (p99 us / BE share of spare; others {:.0f}% CPU)\n", line, r.others_pct);
      std::fflush(stdout);
    }
  }
  munmap(sh, sizeof(Shared));
  if (csv.is_open()) csv.close();

  // Medians over the runs, [min-max] when there are several.
  auto col = [&](Series s, std::size_t i, auto field) {
    std::vector<double> v;
    for (const PointOut& p : results[s][i]) v.push_back(field(p));
    return v;
  };
  auto p50 = [](const PointOut& p) { return p.p50_us; };
  auto p99 = [](const PointOut& p) { return p.p99_us; };
  auto acq99 = [](const PointOut& p) { return p.acq_p99_us; };
  auto acq50 = [](const PointOut& p) { return p.acq_p50_us; };
  const std::size_t npts = results[Series::sky_be].size();
  fmt::print("\nLC latency (us), median of {} run(s) [min-max]\n", plan.runs);
  std::vector<std::vector<std::string>> rows;
  for (std::size_t i = 0; i < npts; ++i) {
    const PointOut& p0 = results[Series::sky_be][i].front();
    rows.push_back({fmt::format("{:.0f}%", 100 * p0.load), fmt::format("{:.0f}", p0.rate),
                    cell(col(Series::sky_alone, i, p50), us), cell(col(Series::sky_alone, i, p99), us),
                    cell(col(Series::sky_be, i, p50), us), cell(col(Series::sky_be, i, p99), us),
                    cell(col(Series::nice19, i, p50), us), cell(col(Series::nice19, i, p99), us),
                    cell(col(Series::idle, i, p50), us), cell(col(Series::idle, i, p99), us)});
  }
  bench::print_table({"load", "rps", "alone p50", "alone p99", "sky+be p50", "sky+be p99", "nice19 p50", "nice19 p99",
                      "idle p50", "idle p99"},
                     rows, 2);
  fmt::print("\nBE CPU share of the spare CPU (cores x (1 - load)); of the whole machine in ()\n");
  rows.clear();
  for (std::size_t i = 0; i < npts; ++i) {
    const PointOut& p0 = results[Series::sky_be][i].front();
    std::vector<std::string> r{fmt::format("{:.0f}%", 100 * p0.load)};
    for (Series s : {Series::sky_be, Series::nice19, Series::idle}) {
      r.push_back(cell(be_spare[s][i], pct) + " (" + pct(bench::median(be_machine[s][i])) + ")");
    }
    rows.push_back(r);
  }
  bench::print_table({"load", "sky+be", "nice19", "idle"}, rows, 1);
  fmt::print("\nCore acquisition (us): submit to start of a 4 us request that found the LC app with nothing in flight\n");
  rows.clear();
  std::vector<double> all_acq_p99;
  for (std::size_t i = 0; i < npts; ++i) {
    const PointOut& p0 = results[Series::sky_be][i].front();
    std::uint64_t n = 0;
    for (const PointOut& p : results[Series::sky_be][i]) n += p.acq_n;
    for (double v : col(Series::sky_be, i, acq99)) all_acq_p99.push_back(v);
    rows.push_back({fmt::format("{:.0f}%", 100 * p0.load), std::to_string(n), cell(col(Series::sky_be, i, acq50), us),
                    cell(col(Series::sky_be, i, acq99), us), cell(col(Series::sky_alone, i, acq99), us),
                    cell(col(Series::nice19, i, acq99), us), cell(col(Series::idle, i, acq99), us)});
  }
  bench::print_table({"load", "sky+be n", "sky+be p50", "sky+be p99", "alone p99", "nice19 p99", "idle p99"}, rows, 1);

  // Targets (medians).
  fmt::print("\nTargets (medians over the runs)\n");
  auto met = [](bool ok) { return ok ? "met" : "NOT met"; };
  if (npts > 0) {
    const double sky10 = bench::median(be_spare[Series::sky_be][0]);
    const double lin10 = std::max(bench::median(be_spare[Series::nice19][0]), bench::median(be_spare[Series::idle][0]));
    fmt::print("  at {:.0f}% LC load BE gets >= 70% of spare CPU and no less than under Linux: {} ({} vs nice19 {} / idle {})\n",
               100 * results[Series::sky_be][0].front().load, met(sky10 >= 0.70 && sky10 >= lin10), pct(sky10),
               pct(bench::median(be_spare[Series::nice19][0])), pct(bench::median(be_spare[Series::idle][0])));
  }
  std::string within, below;
  bool ok_within = true, ok_below = true;
  for (std::size_t i = 0; i < npts; ++i) {
    const double load = results[Series::sky_be][i].front().load;
    const double be = bench::median(col(Series::sky_be, i, p99));
    const double alone = bench::median(col(Series::sky_alone, i, p99));
    const double lin = std::min(bench::median(col(Series::nice19, i, p99)), bench::median(col(Series::idle, i, p99)));
    if (load <= 0.70 + 1e-9) {
      const bool ok = be <= 1.5 * alone;
      ok_within = ok_within && ok;
      within += fmt::format(" {:.0f}%:{:.2f}x{}", 100 * load, be / alone, ok ? "" : "!");
    }
    const bool ok = be <= lin;
    ok_below = ok_below && ok;
    below += fmt::format(" {:.0f}%:{}/{}{}", 100 * load, us(be), us(lin), ok ? "" : "!");
  }
  fmt::print("  LC p99 with BE within 1.5x of alone up to 70% load: {} (sky+be / alone:{})\n", met(ok_within), within);
  fmt::print("  LC p99 with BE at or below the better Linux series: {} (sky+be / best Linux, us:{})\n", met(ok_below), below);
  const double acq = bench::median(all_acq_p99);
  fmt::print("  core acquisition <= 50 us at p99: {} (median over points and runs of the per-point p99: {} us; worst point {} us)\n",
             met(acq <= 50), us(acq), us(bench::spread(all_acq_p99).max));

  if (!plan.png.empty()) {
    fmt::print("\n");
    if (plan.csv.empty()) fmt::print("plot: skipped (--png needs --csv)\n");
    else bench::run_plot("plot", SKYLOFT_LCBE_PLOT_SCRIPT, {plan.csv, plan.png}, plan.png);
  }
  return 0;
}
