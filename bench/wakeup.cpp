// wakeup.cpp - a schbench-style wake-up latency benchmark: skyloft policies and preemption mechanisms
// against native Linux threads (the kernel's scheduler).
//
// Model (after schbench's default mode, as the Skyloft paper ran it): M message threads each own W/M
// workers. A worker puts itself on its message thread's list, wakes the message thread and waits on its
// own mailbox. The message thread takes its whole list, stamps the time once, and wakes every worker on it
// (mailbox flag + notify). A woken worker records
//   wake-up latency = the moment it runs again - the message thread's stamp,
// then serves one request: a naive matrix multiply calibrated at start to take about --work-us (1 ms) on
// this machine, and records
//   request latency = the moment the multiply ends - the moment it started (schbench's definition),
// and goes back to its message thread. Requests/s = requests completed in the measured window / window.
// With more workers than cores every worker is runnable most of the time, so the wake-up latency is how
// long a freshly woken thread waits for a core: the scheduler's time slice at work.
//
// skyloft: message threads and workers are skyloft tasks (spawned from the controlling thread, not
// pinned; worker i starts on core i mod cores), mailboxes are skyloft::Mutex + skyloft::CondVar. The
// multiply calls skyloft::preempt_point() once per matrix row (~N^2 multiply-adds, ~10 us) unless preempt
// points are off, so the flag and hybrid mechanisms can preempt it cooperatively; timer and dispatcher
// interrupt it with a signal wherever it is. native: std::thread, std::mutex, std::condition_variable, the
// same loop (preempt_point() is a no-op outside tasks), threads not pinned (the process's allowed cores).
// "native slice Xus": the same threads, each of which (workers and message threads) first asks the kernel
// for an EEVDF custom slice of X us (sched_attr.sched_runtime, Linux 6.12+; skyloft-loadgen's
// set_generator_slice), Linux at its best latency for the quantum. The kernel takes 100 us..100 ms, so a
// shorter quantum gets the 100 us row (its note says so); a kernel without custom slices (it ignores the
// request: read back with sched_getattr) gets rows that say "kernel lacks custom slices", and the run goes on.
//
// Experiments:
//   (b) p50/p90/p99/p99.9 wake-up and request latency and requests/s for 2..32 workers: native (default
//       slice, and a custom slice per quantum of (b)), skyloft fifo without preemption, and rr, cfs, eevdf
//       at 50 and 200 us under --mechanism (hybrid).
//   (c) quantum sweep at --sweep-workers (16) with --sweep-policy (rr): timer, dispatcher, flag, hybrid x
//       20, 50, 100, 200, 500 us; timer and dispatcher rows run WITHOUT preempt points in the work loop
//       (the signal is their only way in), flag and hybrid rows with them; native rows with the custom
//       slices of those quanta (100, 200, 500 us).
//   (h) headline at 8 workers per core: --rounds (3) rounds, each running, in an order that rotates from
//       round to round, native (default slice), native with the headline quantum as custom slice (100 us),
//       and skyloft's best preemptive configuration for this job (--headline-system, default rr/flag/50;
//       a list adds more skyloft rows to the same rounds). Prints median [min..max] over the rounds of
//       requests/s and p99 wake-up, and the two ratios against native with the custom slice (ratio of the
//       medians; per-round ratios as the spread), judged against the target: p99 >= 10x lower at >= 95% of
//       its requests/s.
//       Why rr/flag/50us (3 interleaved rounds at 16 workers on 2 cores, quiet machine): with 8 runnable
//       tasks per core rr's p99 is about 8 quanta, and Linux with 100 us slices has a p99 of ~9 ms, so the
//       target needs a quantum of at most ~100 us. rr/flag/50us: ~1470 req/s at p99 ~0.7 ms; rr/timer/100us:
//       ~1350 req/s at ~0.83 ms; rr/flag/100us: ~1520 req/s but p99 ~1 ms (under 10x); rr/hybrid/50us:
//       ~1060 req/s (its ticker also signals). The work loop has preempt points, so flag never pays for a
//       signal; a timer interrupt costs ~18 us of vCPU time on a VM.
// Per skyloft cell the tables also say where the CPU went: the policy's checks, preemptions and switches
// per second, idle time, the CPU share of the monitor thread (skyloft-sysmon) and of the preemption ticker
// (skyloft-tick: its wake-ups per second), and how often the kernel preempted the worker threads.
// Each cell: a fresh runtime (or fresh threads), --warmup-ms of warm-up whose samples are dropped, then
// --seconds measured. Tables on stdout, CSV in --csv-dir (wakeup.csv, wakeup_sweep.csv, wakeup_headline.csv
// with one row per round and system), and the PNG plots drawn by bench/plot_wakeup.py when /usr/bin/python3
// has matplotlib.
//
// Usage: skyloft_wakeup --help

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <fmt/format.h>

#include "skyloft/preempt.hpp"  // not (yet) included by skyloft.hpp
#include "skyloft/skyloft.hpp"

#include "bench_common.hpp"
#include "realtime.hpp"  // skyloft-loadgen's EEVDF custom slice request
#include "wakeup_workload.hpp"

#ifndef SKYLOFT_WAKEUP_PLOT_SCRIPT
#define SKYLOFT_WAKEUP_PLOT_SCRIPT "bench/plot_wakeup.py"
#endif

namespace {

using namespace skyloft::bench;
using wakeup::Pct;
using wakeup::calibrate;

// ---------------------------------------------------------------------------------------------------------
// Options

struct Options {
  bool quick = false;
  double seconds = 5.0;          // measured time per cell
  double warmup_ms = 400;        // warm-up per cell (samples dropped)
  double work_us = 1000;         // target duration of one matrix multiply
  int message_threads = 0;       // 0: one per core
  std::vector<int> workers = {2, 4, 8, 16, 32};
  std::string mechanism = "hybrid";  // (b)'s mechanism for rr/cfs/eevdf
  std::vector<int> b_quanta = {50, 200};
  std::vector<std::string> b_policies = {"rr", "cfs", "eevdf"};
  std::vector<std::string> sweep_mechanisms = {"timer", "dispatcher", "flag", "hybrid"};
  std::vector<int> sweep_quanta = {20, 50, 100, 200, 500};
  int sweep_workers = 16;
  std::string sweep_policy = "rr";
  bool no_preempt_points = false;  // force the work loop without preempt points everywhere
  bool tune_slices = true;         // set each policy's slice to the quantum
  std::vector<std::pair<std::string, std::string>> params;  // --param: set after the tuning, every skyloft row
  std::optional<std::uint32_t> spin_us;
  std::optional<std::uint32_t> handoff_us;
  std::string csv_dir = "results";
  bool plot = true;
  bool run_b = true, run_c = true, run_h = true;
  int rounds = 3;                              // (h): rounds of the headline
  std::string headline_system = "rr/flag/50";  // (h): the skyloft side(s); the first one is judged
  double wait_quiet_s = 0;  // before each cell, wait up to this long for other processes to go quiet
  int timeout_s = 60;  // watchdog: a cell that takes this much longer than planned aborts the program
};

Options g_opt;

constexpr const char* kUsage =
    "usage: {} [options]\n"
    "  --quick               CI smoke run (~35 s): 0.25 s cells, workers 2,16, quanta 50,200\n"
    "  --seconds S           measured seconds per cell (default 5)\n"
    "  --warmup-ms MS        warm-up per cell, samples dropped (default 400)\n"
    "  --work-us US          target time of one matrix multiply (default 1000)\n"
    "  --message-threads M   message threads (default: one per core)\n"
    "  --workers LIST        worker counts for (b), e.g. 2,4,8,16,32\n"
    "  --mechanism NAME      mechanism of (b)'s rr/cfs/eevdf rows: hybrid (default), flag, timer,\n"
    "                        dispatcher\n"
    "  --quanta LIST         quanta (us) of (b)'s rr/cfs/eevdf rows (default 50,200)\n"
    "  --policies LIST       preemptive policies of (b) (default rr,cfs,eevdf)\n"
    "  --sweep-mechanisms L  mechanisms of (c) (default timer,dispatcher,flag,hybrid)\n"
    "  --sweep-quanta LIST   quanta (us) of (c) (default 20,50,100,200,500)\n"
    "  --sweep-workers N     workers of (c) (default 16)\n"
    "  --sweep-policy NAME   policy of (c) (default rr)\n"
    "  --no-preempt-points   the work loop never calls skyloft::preempt_point() (all rows)\n"
    "  --no-tune-slices      leave the policies' slice parameters at their defaults\n"
    "  --param KEY=VALUE     set a policy parameter in every skyloft row, after the tuning (repeatable;\n"
    "                        e.g. slice_us=100000 with rr: checks every quantum, preempts every 100 ms)\n"
    "  --spin-us US          skyloft Config::spin_us\n"
    "  --handoff-us US       skyloft Config::handoff_us (0: no hand-off, and no monitor thread)\n"
    "  --only b|c|h          run one experiment (h: the headline)\n"
    "  --headline            run the headline only (as --only h)\n"
    "  --rounds R            rounds of the headline, systems interleaved in each (default 3)\n"
    "  --headline-system S   skyloft side of the headline, POLICY/MECHANISM/QUANTUM_US[:KEY=VALUE...]\n"
    "                        (handoff_us=N: Config::handoff_us; other keys: policy parameters)\n"
    "                        (default rr/flag/50); a comma-separated list adds more skyloft rows to the\n"
    "                        same rounds for comparison, the first one is judged against the target\n"
    "  --csv-dir DIR         CSV and PNG directory (default results)\n"
    "  --no-plot             do not run bench/plot_wakeup.py\n"
    "  --wait-quiet S        shared machine: per cell, spend up to S s waiting for other processes\n"
    "                        to use < 5% CPU and rerunning a disturbed cell (the quietest is kept)\n"
    "  --timeout S           abort when a cell overruns its plan by S seconds (default 60)\n";

std::vector<std::string> split(const std::string& s, char sep = ',') {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// A comma-separated list of integers in [lo, hi] (each parsed as a number and truncated), not empty.
std::vector<int> int_list_value(skyloft::bench::Args& args, const std::string& flag, int lo, int hi) {
  std::vector<int> out;
  for (const auto& s : split(args.value())) out.push_back(static_cast<int>(args.parse_double(flag, s, lo, hi)));
  if (out.empty()) args.usage(flag + " needs a non-empty list");
  return out;
}

void parse_args(int argc, char** argv) {
  skyloft::bench::Args args(argc, argv, "skyloft_wakeup", kUsage);
  bool seconds_set = false, warmup_set = false, workers_set = false, quanta_set = false, sweepq_set = false;
  while (args.next()) {
    const std::string& a = args.arg();
    if (a == "--quick") {
      g_opt.quick = true;
    } else if (args.is("--seconds")) {
      g_opt.seconds = args.double_value("--seconds", 0.01, 3600);
      seconds_set = true;
    } else if (args.is("--warmup-ms")) {
      g_opt.warmup_ms = args.double_value("--warmup-ms", 0, 600000);
      warmup_set = true;
    } else if (args.is("--work-us")) {
      g_opt.work_us = args.double_value("--work-us", 10, 1e6);
    } else if (args.is("--message-threads")) {
      g_opt.message_threads = static_cast<int>(args.double_value("--message-threads", 1, 64));
    } else if (args.is("--workers")) {
      g_opt.workers = int_list_value(args, "--workers", 1, 4096);
      workers_set = true;
    } else if (args.is("--mechanism")) {
      g_opt.mechanism = args.value();
    } else if (args.is("--quanta")) {
      g_opt.b_quanta = int_list_value(args, "--quanta", 1, 1000000);
      quanta_set = true;
    } else if (args.is("--policies")) {
      g_opt.b_policies = split(args.value());
    } else if (args.is("--sweep-mechanisms")) {
      g_opt.sweep_mechanisms = split(args.value());
    } else if (args.is("--sweep-quanta")) {
      g_opt.sweep_quanta = int_list_value(args, "--sweep-quanta", 1, 1000000);
      sweepq_set = true;
    } else if (args.is("--sweep-workers")) {
      g_opt.sweep_workers = static_cast<int>(args.double_value("--sweep-workers", 1, 4096));
    } else if (args.is("--sweep-policy")) {
      g_opt.sweep_policy = args.value();
    } else if (a == "--no-preempt-points") {
      g_opt.no_preempt_points = true;
    } else if (a == "--no-tune-slices") {
      g_opt.tune_slices = false;
    } else if (args.is("--param")) {
      const std::string v = args.value();
      const auto eq = v.find('=');
      if (eq == std::string::npos || eq == 0) args.usage("--param needs KEY=VALUE, got '" + v + "'");
      g_opt.params.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else if (args.is("--spin-us")) {
      g_opt.spin_us = static_cast<std::uint32_t>(args.double_value("--spin-us", 0, 1e8));
    } else if (args.is("--handoff-us")) {
      g_opt.handoff_us = static_cast<std::uint32_t>(args.double_value("--handoff-us", 0, 1e6));
    } else if (args.is("--only") || a == "--headline") {
      std::string v = a == "--headline" ? "h" : args.value();
      if (v != "b" && v != "c" && v != "h") args.usage("--only needs b, c or h");
      g_opt.run_b = v == "b";
      g_opt.run_c = v == "c";
      g_opt.run_h = v == "h";
    } else if (args.is("--rounds")) {
      g_opt.rounds = static_cast<int>(args.long_value("--rounds", 1, 1000));
    } else if (args.is("--headline-system")) {
      g_opt.headline_system = args.value();
    } else if (args.is("--csv-dir")) {
      g_opt.csv_dir = args.value();
    } else if (a == "--no-plot") {
      g_opt.plot = false;
    } else if (args.is("--wait-quiet")) {
      g_opt.wait_quiet_s = args.double_value("--wait-quiet", 0, 86400);
    } else if (args.is("--timeout")) {
      g_opt.timeout_s = static_cast<int>(args.double_value("--timeout", 1, 86400));
    } else {
      args.usage("unknown argument '" + a + "'");
    }
  }
  if (g_opt.quick) {
    if (!seconds_set) g_opt.seconds = 0.25;
    if (!warmup_set) g_opt.warmup_ms = 50;
    if (!workers_set) g_opt.workers = {2, 16};
    if (!quanta_set) g_opt.b_quanta = {50, 200};
    if (!sweepq_set) g_opt.sweep_quanta = {50, 200};
  }
}

// Waits (up to max_s) until other processes use less than 5% of the machine over a 0.5 s sample.
double wait_quiet(double max_s) { return skyloft::bench::wait_quiet(max_s, 5, std::chrono::milliseconds(500)); }

// ---------------------------------------------------------------------------------------------------------
// Where the CPU goes in a skyloft cell: each thread's time on a CPU (/proc/self/task/*/schedstat, ns) and
// its involuntary context switches (the kernel gave its core to another thread), summed by the runtime's
// thread names: workers (skyloft-w*, and the hand-off's skyloft-spare*), the monitor (skyloft-sysmon), the
// preemption ticker or dispatcher (skyloft-tick*, skyloft-disp*).

enum Role { kWorker, kSysmon, kTicker, kOther, kRoles };

struct ThreadSnap {
  Role role = kOther;
  std::uint64_t cpu_ns = 0, involuntary = 0, voluntary = 0;  // voluntary: it slept (a ticker's wake-ups)
};

std::map<int, ThreadSnap> thread_snap() {
  std::map<int, ThreadSnap> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    ThreadSnap t;
    std::string comm;
    std::ifstream(e.path() / "comm") >> comm;
    if (comm.rfind("skyloft-w", 0) == 0 || comm.rfind("skyloft-spare", 0) == 0) t.role = kWorker;
    else if (comm.rfind("skyloft-sysmon", 0) == 0) t.role = kSysmon;
    else if (comm.rfind("skyloft-tick", 0) == 0 || comm.rfind("skyloft-disp", 0) == 0) t.role = kTicker;
    if (!(std::ifstream(e.path() / "schedstat") >> t.cpu_ns)) continue;
    std::ifstream status(e.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) t.involuntary = std::stoull(line.substr(27));
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) t.voluntary = std::stoull(line.substr(24));
    }
    try {
      out[std::stoi(e.path().filename().string())] = t;
    } catch (const std::exception&) {
    }
  }
  return out;
}

// Per role over a window: CPU time in % of the machine, involuntary switches per second.
struct RoleUse {
  double cpu_pct[kRoles] = {};
  double involuntary_per_s[kRoles] = {};
  double voluntary_per_s[kRoles] = {};
  bool ok = false;
};

RoleUse role_use(const std::map<int, ThreadSnap>& a, const std::map<int, ThreadSnap>& b, double window_s, int ncores) {
  RoleUse u;
  if (window_s <= 0 || ncores <= 0) return u;
  for (const auto& [tid, t] : b) {
    auto it = a.find(tid);
    const ThreadSnap base = it != a.end() ? it->second : ThreadSnap{};
    u.cpu_pct[t.role] += 100.0 * static_cast<double>(t.cpu_ns - std::min(t.cpu_ns, base.cpu_ns)) / (window_s * 1e9 * ncores);
    u.involuntary_per_s[t.role] += static_cast<double>(t.involuntary - std::min(t.involuntary, base.involuntary)) / window_s;
    u.voluntary_per_s[t.role] += static_cast<double>(t.voluntary - std::min(t.voluntary, base.voluntary)) / window_s;
  }
  u.ok = true;
  return u;
}

// ---------------------------------------------------------------------------------------------------------
// Results (the workload, its loop and percentiles: wakeup_workload.hpp)

struct System {
  std::string label;      // e.g. "native", "native slice 100us", "fifo", "rr/hybrid/50us"
  bool native = false;
  std::string policy;     // skyloft policy
  std::string mechanism;  // none, timer, ...
  int quantum_us = 0;     // 0: none
  bool preempt_points = true;
  int slice_us = 0;        // native: the custom slice every thread asks for (0: the kernel's default)
  std::string slice_note;  // native: which quanta the slice stands for when the kernel's range clamped them
  std::optional<std::uint32_t> handoff_us;  // skyloft: Config::handoff_us for this row (else --handoff-us)
  std::vector<std::pair<std::string, std::string>> params;  // skyloft: policy parameters of this row
};

System native_system(int slice_us) {
  System s;
  s.label = slice_us > 0 ? fmt::format("native slice {}us", slice_us) : "native";
  s.native = true;
  s.mechanism = "kernel";
  s.preempt_points = !g_opt.no_preempt_points;
  s.slice_us = slice_us;
  return s;
}

// Native rows whose custom slices stand for skyloft quanta: one per distinct slice, the quanta clamped to
// the range the kernel takes; the note names the quanta a clamped row stands for.
std::vector<System> native_slice_systems(const std::vector<int>& quanta) {
  using skyloft::loadgen::kMaxSliceUs;
  using skyloft::loadgen::kMinSliceUs;
  std::map<int, std::vector<int>> by_slice;
  for (int q : quanta) by_slice[std::clamp(q, static_cast<int>(kMinSliceUs), static_cast<int>(kMaxSliceUs))].push_back(q);
  std::vector<System> out;
  for (const auto& [slice, qs] : by_slice) {
    System s = native_system(slice);
    if (qs.size() > 1 || qs[0] != slice) {
      s.slice_note = fmt::format("slice for quanta {} us (the kernel takes custom slices of {}..{} us)",
                                 fmt::join(qs, ","), kMinSliceUs, kMaxSliceUs);
    }
    out.push_back(s);
  }
  return out;
}

// A skyloft row; quantum 0: no preemption (label POLICY/none). Timer and dispatcher rows run the work loop
// without preempt points (the signal is their only way in).
System skyloft_system(const std::string& policy, const std::string& mech, int quantum_us) {
  System s;
  s.label = quantum_us > 0 ? fmt::format("{}/{}/{}us", policy, mech, quantum_us) : fmt::format("{}/{}", policy, mech);
  s.policy = policy;
  s.mechanism = mech;
  s.quantum_us = quantum_us;
  s.preempt_points = !g_opt.no_preempt_points && mech != "timer" && mech != "dispatcher";
  return s;
}

struct CellResult {
  System sys;
  int workers = 0;
  int message_threads = 0;
  bool ok = false;
  std::string note;  // why not ok, or a remark
  Pct wake, req;
  double rps = 0;
  double window_s = 0;
  std::size_t wake_samples = 0, requests = 0;
  std::uint64_t preemptions = 0, deferred = 0, checks = 0;  // skyloft: WorkerStats over the window, all workers
  std::uint64_t switches = 0, steals = 0, idle_ns = 0;
  int cores = 0;          // skyloft: workers whose stats are summed
  double other_pct = -1;  // CPU share used by other processes during the window (percent of the machine)
  int round = 0;          // (h): the round (1..R); 0 elsewhere
  RoleUse use;            // skyloft: CPU by thread role during the window
};

// ---------------------------------------------------------------------------------------------------------
// Watchdog

std::atomic<std::uint64_t> g_deadline_ns{0};  // 0: none
std::atomic<bool> g_stop_watchdog{false};
std::string g_current_cell;  // written before the deadline is armed
std::mutex g_current_mutex;

void watchdog() {
  while (!g_stop_watchdog.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::uint64_t d = g_deadline_ns.load();
    if (d != 0 && now_ns() > d) {
      std::string cell;
      {
        std::lock_guard g(g_current_mutex);
        cell = g_current_cell;
      }
      fmt::print(stderr, "\nskyloft_wakeup: WATCHDOG: cell '{}' overran its plan by {} s; aborting\n", cell,
                 g_opt.timeout_s);
      if (auto* rt = skyloft::Runtime::current()) rt->dump(stderr);
      std::fflush(stderr);
      std::_Exit(3);
    }
  }
}

void arm_watchdog(const std::string& cell) {
  {
    std::lock_guard g(g_current_mutex);
    g_current_cell = cell;
  }
  double planned = g_opt.seconds + g_opt.warmup_ms / 1e3;
  g_deadline_ns.store(now_ns() + static_cast<std::uint64_t>((planned + g_opt.timeout_s) * 1e9));
}
void disarm_watchdog() { g_deadline_ns.store(0); }

// ---------------------------------------------------------------------------------------------------------
// Running a cell

// The preempt point the work calls once per matrix row (a function, so the shared workload takes its address).
void skyloft_preempt_point() noexcept { skyloft::preempt_point(); }

std::size_t sample_reserve(int nworkers) {
  return static_cast<std::size_t>(
      std::max(64.0, (g_opt.seconds + 1) * 4e6 / std::max(1.0, g_opt.work_us) / std::max(1, nworkers)));
}

// Runs the measured part of a cell whose threads or tasks are running: warm-up, window, stop; records the
// window and the CPU share other processes took during it.
template <class C, class OnWindow>
void drive(C& cell, CellResult& r, OnWindow&& on_window) {
  CpuSnap c0;
  r.window_s = cell.drive(g_opt.warmup_ms / 1e3, g_opt.seconds, [&](bool start) {
    if (start) {
      on_window(true);
      c0 = cpu_snap();
    } else {
      r.other_pct = other_cpu_pct(c0, cpu_snap());
      on_window(false);
    }
  });
}

template <class C>
void collect(C& cell, CellResult& r) {
  wakeup::Measured m = cell.collect(r.window_s);
  r.wake_samples = m.wake_samples;
  r.requests = m.requests;
  r.wake = m.wake;
  r.req = m.req;
  r.rps = m.rps;
  r.ok = m.requests > 0;
  if (!r.ok) r.note = "no requests completed";
}

// Asks the kernel for a custom slice of `slice_us` for the calling thread and reads it back: "" or why it
// did not take effect (an older kernel accepts the request and ignores it).
std::string apply_slice(int slice_us) {
  const auto want = static_cast<std::uint32_t>(slice_us);
  std::string e = skyloft::loadgen::set_generator_slice(want);
  if (!e.empty()) return e;
  const std::uint32_t got = skyloft::loadgen::current_slice_us();
  if (got == 0) return "the kernel ignored sched_runtime (EEVDF custom slices need Linux 6.12+)";
  if (got != want) return fmt::format("asked for {} us, the kernel reports {} us", want, got);
  return "";
}

// Whether this kernel takes custom slices (a scratch thread asks for the minimum): "" or why not.
std::string probe_custom_slices() {
  std::string why;
  std::thread([&why] { why = apply_slice(static_cast<int>(skyloft::loadgen::kMinSliceUs)); }).join();
  return why;
}

std::string g_no_slices;  // probe_custom_slices() at start, before any cell; read-only afterwards

CellResult run_native(const System& sys, int nworkers, int nmsg, std::size_t matrix_n) {
  CellResult r;
  r.sys = sys;
  r.workers = nworkers;
  r.message_threads = nmsg;
  if (sys.slice_us > 0 && !g_no_slices.empty()) {
    r.note = "kernel lacks custom slices: " + g_no_slices;
    return r;
  }
  using C = wakeup::Cell<std::mutex, std::condition_variable>;
  C cell(nworkers, nmsg, matrix_n, sys.preempt_points ? &skyloft_preempt_point : nullptr, sample_reserve(nworkers));
  // Every thread of the loop asks for the slice before it starts; one that cannot spoils the cell.
  std::mutex slice_mutex;
  std::string slice_error;  // protected by slice_mutex
  auto enter = [&] {
    if (sys.slice_us <= 0) return;
    std::string e = apply_slice(sys.slice_us);
    if (e.empty()) return;
    std::lock_guard g(slice_mutex);
    slice_error = e;
  };
  std::vector<std::thread> threads;
  for (auto& m : cell.msgs) threads.emplace_back([&enter, p = m.get()] { enter(), p->run(); });
  for (auto& w : cell.workers) threads.emplace_back([&enter, p = w.get(), &cell] { enter(), p->run(cell.sh); });
  drive(cell, r, [](bool) {});
  for (auto& t : threads) t.join();
  collect(cell, r);
  if (!slice_error.empty()) {
    r.ok = false;
    r.note = "kernel lacks custom slices: " + slice_error;
  } else if (r.ok) {
    r.note = sys.slice_note;
  }
  return r;
}

void tune_policy(skyloft::Runtime& rt, const System& sys, std::string& note) {
  std::vector<std::pair<std::string, std::string>> params;
  const std::string q = std::to_string(sys.quantum_us);
  if (g_opt.tune_slices && sys.quantum_us > 0) {
    if (sys.policy == "rr") params = {{"slice_us", "0"}};
    else if (sys.policy == "cfs") params = {{"min_granularity_us", q}, {"latency_us", q}};
    else if (sys.policy == "eevdf") params = {{"slice_us", q}};
  }
  if (sys.quantum_us > 0) params.insert(params.end(), g_opt.params.begin(), g_opt.params.end());
  params.insert(params.end(), sys.params.begin(), sys.params.end());
  for (const auto& [k, v] : params) {
    try {
      rt.set_policy_param(k, v);
    } catch (const std::exception& e) {
      note += fmt::format("{}{}={} rejected ({})", note.empty() ? "" : "; ", k, v, e.what());
    }
  }
}

CellResult run_skyloft(const System& sys, int nworkers, int nmsg, std::size_t matrix_n, const std::string& cores) {
  CellResult r;
  r.sys = sys;
  r.workers = nworkers;
  r.message_threads = nmsg;
  skyloft::Config cfg = skyloft::Config::from_env();
  cfg.policy = sys.policy;
  cfg.cores = cores;
  cfg.preempt = sys.mechanism;
  if (sys.quantum_us > 0) cfg.quantum_us = static_cast<std::uint32_t>(sys.quantum_us);
  if (g_opt.spin_us) cfg.spin_us = *g_opt.spin_us;
  if (g_opt.handoff_us) cfg.handoff_us = *g_opt.handoff_us;
  if (sys.handoff_us) cfg.handoff_us = *sys.handoff_us;
  std::unique_ptr<skyloft::Runtime> rt;
  try {
    rt = std::make_unique<skyloft::Runtime>(cfg);
  } catch (const skyloft::ConfigError& e) {
    r.note = fmt::format("skipped: {}", e.what());
    return r;
  }
  tune_policy(*rt, sys, r.note);
  using C = wakeup::Cell<skyloft::Mutex, skyloft::CondVar>;
  C cell(nworkers, nmsg, matrix_n, sys.preempt_points ? &skyloft_preempt_point : nullptr, sample_reserve(nworkers));
  const auto worker_cores = rt->worker_cores();
  const int ncores = static_cast<int>(worker_cores.size());
  std::vector<skyloft::JoinHandle> handles;
  try {
    for (std::size_t i = 0; i < cell.msgs.size(); ++i) {
      skyloft::SpawnOptions o;
      o.core = worker_cores[i % static_cast<std::size_t>(ncores)];
      handles.push_back(skyloft::spawn([p = cell.msgs[i].get()] { p->run(); }, o));
    }
    for (std::size_t i = 0; i < cell.workers.size(); ++i) {
      skyloft::SpawnOptions o;
      o.core = worker_cores[i % static_cast<std::size_t>(ncores)];
      handles.push_back(skyloft::spawn([p = cell.workers[i].get(), &cell] { p->run(cell.sh); }, o));
    }
  } catch (const std::exception& e) {
    // Tasks already spawned would wait forever: stop them before giving up.
    cell.sh.stop.store(true);
    r.note = fmt::format("spawn failed: {}", e.what());
  }
  std::vector<skyloft::WorkerStats> before, after;
  std::map<int, ThreadSnap> threads_before, threads_after;
  if (r.note.rfind("spawn failed", 0) != 0) {
    drive(cell, r, [&](bool start) {
      (start ? before : after) = rt->stats();
      (start ? threads_before : threads_after) = thread_snap();
    });
  }
  for (auto& h : handles) h.join();
  auto rep = rt->shutdown();
  if (!rep.clean()) r.note += fmt::format("{}runtime did not shut down clean: {}", r.note.empty() ? "" : "; ", rep.describe());
  for (std::size_t i = 0; i < after.size() && i < before.size(); ++i) {
    r.preemptions += after[i].preemptions - before[i].preemptions;
    r.deferred += after[i].preempt_deferred - before[i].preempt_deferred;
    r.checks += after[i].preempt_checks - before[i].preempt_checks;
    r.switches += after[i].switches - before[i].switches;
    r.steals += after[i].steals - before[i].steals;
    r.idle_ns += after[i].idle_ns - before[i].idle_ns;
  }
  r.cores = static_cast<int>(std::min(after.size(), before.size()));
  r.use = role_use(threads_before, threads_after, r.window_s, static_cast<int>(worker_cores.size()));
  if (r.note.rfind("spawn failed", 0) == 0) return r;
  collect(cell, r);
  return r;
}

// ---------------------------------------------------------------------------------------------------------
// Tables and CSV

// Percent of the workers' time spent looking for work (spinning or parked) during the window.
double idle_pct(const CellResult& r) {
  return r.window_s > 0 && r.cores > 0 ? 100.0 * static_cast<double>(r.idle_ns) / (r.window_s * 1e9 * r.cores) : 0;
}

// A role's CPU % of the machine (or its involuntary switches per second) in a skyloft cell; "-" elsewhere.
std::string use_text(const CellResult& r, Role role, bool involuntary) {
  if (r.sys.native || !r.use.ok) return "-";
  return involuntary ? fmt::format("{:.0f}", r.use.involuntary_per_s[role]) : fmt::format("{:.1f}", r.use.cpu_pct[role]);
}

std::string us(double v) {
  if (v <= 0) return "0";
  if (v < 10) return fmt::format("{:.1f}", v);
  return fmt::format("{:.0f}", v);
}

std::vector<std::string> detail_row(const CellResult& r, bool with_system) {
  std::vector<std::string> row;
  if (with_system) row.push_back(r.sys.label);
  row.push_back(std::to_string(r.workers));
  if (!r.ok) {
    row.push_back(r.note.empty() ? "FAILED" : r.note);
    return row;
  }
  const double preempt_rate = r.window_s > 0 ? static_cast<double>(r.preemptions) / r.window_s : 0;
  for (double v : {r.wake.p50, r.wake.p90, r.wake.p99, r.wake.p999, r.wake.max}) row.push_back(us(v));
  for (double v : {r.req.p50, r.req.p90, r.req.p99, r.req.p999}) row.push_back(us(v));
  row.push_back(fmt::format("{:.0f}", r.rps));
  row.push_back(r.sys.native ? "-" : fmt::format("{:.0f}", preempt_rate));
  row.push_back(std::to_string(r.wake_samples));
  row.push_back(r.other_pct < 0 ? "?" : fmt::format("{:.0f}", r.other_pct));
  return row;
}

const std::vector<std::string> kDetailHead = {"wake p50", "p90", "p99", "p99.9", "max", "req p50", "p90",
                                              "p99", "p99.9", "req/s", "preempt/s", "samples", "other%"};

void write_csv(const std::string& path, const std::vector<CellResult>& cells, const std::string& experiment) {
  std::ofstream out = open_csv(path,
      "experiment,round,system,native,policy,mechanism,quantum_us,slice_us,preempt_points,workers,"
         "message_threads,ok,wake_p50_us,wake_p90_us,wake_p99_us,wake_p999_us,wake_max_us,req_p50_us,req_p90_us,"
         "req_p99_us,req_p999_us,rps,window_s,wake_samples,requests,preempt_checks,preemptions,preempt_deferred,"
         "switches,steals,idle_pct,worker_cpu_pct,sysmon_cpu_pct,ticker_cpu_pct,ticker_wakeups_per_s,worker_involuntary_per_s,"
         "other_cpu_pct,note\n");
  for (const auto& r : cells) {
    std::string note = r.note;
    std::replace(note.begin(), note.end(), ',', ';');
    std::replace(note.begin(), note.end(), '\n', ' ');
    out << fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{:.2f},{:.2f},{:.2f},{:.2f},{:.2f},{:.2f},{:.2f},{:.2f},"
                       "{:.2f},{:.1f},{:.3f},{},{},{},{},{},{},{},{:.2f},{:.2f},{:.2f},{:.2f},{:.0f},{:.0f},{:.1f},\"{}\"\n",
                       experiment, r.round, r.sys.label, r.sys.native ? 1 : 0, r.sys.native ? "linux" : r.sys.policy,
                       r.sys.native ? "kernel" : r.sys.mechanism, r.sys.quantum_us, r.sys.slice_us,
                       r.sys.preempt_points ? 1 : 0,
                       r.workers, r.message_threads, r.ok ? 1 : 0, r.wake.p50, r.wake.p90, r.wake.p99,
                       r.wake.p999, r.wake.max, r.req.p50, r.req.p90, r.req.p99, r.req.p999, r.rps, r.window_s,
                       r.wake_samples, r.requests, r.checks, r.preemptions, r.deferred, r.switches, r.steals, idle_pct(r),
                       r.use.cpu_pct[kWorker], r.use.cpu_pct[kSysmon], r.use.cpu_pct[kTicker],
                       r.use.voluntary_per_s[kTicker], r.use.involuntary_per_s[kWorker], r.other_pct, note);
  }
}

// A headline skyloft row from POLICY/MECHANISM/QUANTUM_US[:KEY=VALUE...]: handoff_us sets
// Config::handoff_us, any other key is a policy parameter (set after the tuning); nullopt when malformed.
std::optional<System> parse_headline_system(const std::string& spec) {
  const auto opts = split(spec, ':');
  if (opts.empty()) return std::nullopt;
  const auto parts = split(opts[0], '/');
  try {
    if (parts.size() != 3) return std::nullopt;
    std::size_t used = 0;
    const int q = std::stoi(parts[2], &used);
    if (used != parts[2].size() || q < 1 || q > 1000000) return std::nullopt;
    System s = skyloft_system(parts[0], parts[1], q);
    for (std::size_t i = 1; i < opts.size(); ++i) {
      const auto eq = opts[i].find('=');
      if (eq == std::string::npos || eq == 0) return std::nullopt;
      const std::string key = opts[i].substr(0, eq), value = opts[i].substr(eq + 1);
      if (key == "handoff_us") {
        const long h = std::stol(value, &used);
        if (used != value.size() || h < 0 || h > 1000000) return std::nullopt;
        s.handoff_us = static_cast<std::uint32_t>(h);
      } else {
        s.params.emplace_back(key, value);
      }
      s.label += " " + opts[i];
    }
    return s;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// "min..max" and "median [min..max]" of a spread, each value written by `f`; "n/a" when no round gave one.
template <class F>
std::string range_text(const Spread& s, F&& f) {
  return std::isnan(s.min) ? "n/a" : fmt::format("{}..{}", f(s.min), f(s.max));
}
template <class F>
std::string spread_text(const Spread& s, F&& f) {
  return std::isnan(s.median) ? "n/a" : fmt::format("{} [{}]", f(s.median), range_text(s, f));
}

// (h): median [min..max] over the rounds for each system (native default, native with the custom slice,
// skyloft), then skyloft's ratios against the custom-slice row, the target's reference, judged against
// the target; the ratios against the default slice for context. Ratios are ratios of the medians; the
// per-round ratios (same round, both sides) give their spread.
void print_headline(const std::vector<System>& systems, const std::vector<CellResult>& cells, int ncores, int workers) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  // One value per round (NaN where the cell failed), in round order.
  auto per_round = [&](const System& s, auto value) {
    std::vector<double> v(static_cast<std::size_t>(g_opt.rounds), kNaN);
    for (const auto& r : cells) {
      if (r.sys.label == s.label && r.ok && r.round >= 1) v[static_cast<std::size_t>(r.round - 1)] = value(r);
    }
    return v;
  };
  const auto rps = [](const CellResult& r) { return r.rps; };
  const auto p99 = [](const CellResult& r) { return r.wake.p99; };
  const auto p50 = [](const CellResult& r) { return r.wake.p50; };
  const auto rate = [](std::uint64_t CellResult::*n) {
    return [n](const CellResult& r) { return r.window_s > 0 ? static_cast<double>(r.*n) / r.window_s : 0.0; };
  };
  const auto role_pct = [](Role role) { return [role](const CellResult& r) { return r.use.cpu_pct[role]; }; };
  const auto num = [](double v) { return fmt::format("{:.0f}", v); };
  const auto lat = [](double v) { return us(v); };

  fmt::print("\n(h) headline: {} workers = {} per core on {} cores, {} round(s) of {:.2f} s cells, the systems taking\n"
             "    turns in each round (first one rotating); median [min..max] over the rounds\n",
             workers, workers / std::max(1, ncores), ncores, g_opt.rounds, g_opt.seconds);
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> notes;
  for (const auto& s : systems) {
    const auto ok = per_round(s, [](const CellResult&) { return 1.0; });
    const auto n_ok = std::count_if(ok.begin(), ok.end(), [](double x) { return !std::isnan(x); });
    std::vector<double> other;
    for (const auto& r : cells) {
      if (r.sys.label == s.label) {
        other.push_back(r.other_pct);
        if (!r.ok) notes.push_back(fmt::format("{} round {}: {}", s.label, r.round, r.note.empty() ? "FAILED" : r.note));
      }
    }
    if (!s.slice_note.empty()) notes.push_back(fmt::format("{}: {}", s.label, s.slice_note));
    rows.push_back({s.label, fmt::format("{}/{}", n_ok, g_opt.rounds), spread_text(spread(per_round(s, rps)), num),
                    spread_text(spread(per_round(s, p99)), lat), spread_text(spread(per_round(s, p50)), lat),
                    s.native ? "-" : spread_text(spread(per_round(s, rate(&CellResult::preemptions))), num),
                    s.native ? "-" : spread_text(spread(per_round(s, rate(&CellResult::switches))), num),
                    s.native ? "-" : fmt::format("{:.1f}", median(per_round(s, idle_pct))),
                    s.native ? "-" : fmt::format("{:.1f}", median(per_round(s, role_pct(kSysmon)))),
                    s.native ? "-" : fmt::format("{:.1f}", median(per_round(s, role_pct(kTicker)))),
                    s.native ? "-" : fmt::format("{:.0f}", median(per_round(s, [](const CellResult& r) {
                                       return r.use.voluntary_per_s[kTicker];
                                     }))),
                    s.native ? "-" : fmt::format("{:.0f}", median(per_round(s, [](const CellResult& r) {
                                       return r.use.involuntary_per_s[kWorker];
                                     }))),
                    other.empty() ? "?" : fmt::format("{:.0f}", *std::max_element(other.begin(), other.end()))});
  }
  print_table({"system", "rounds ok", "req/s", "wake p99 (us)", "wake p50 (us)", "preempt/s", "switch/s", "idle%",
               "sysmon%", "ticker%", "tick wakes/s", "w invol/s", "other% max"},
              rows, 1);
  for (const auto& n : notes) fmt::print("  {}\n", n);
  if (systems.size() < 3) return;

  // p99: reference / skyloft ("x lower"); req/s: skyloft / reference.
  auto ratio = [&](const System& sky, const System& ref, auto value, bool lower_is_better) -> std::pair<double, Spread> {
    const auto a = per_round(ref, value), b = per_round(sky, value);
    std::vector<double> rounds;
    for (std::size_t i = 0; i < a.size(); ++i) rounds.push_back(lower_is_better ? a[i] / b[i] : b[i] / a[i]);
    const double ma = median(a), mb = median(b);
    return {lower_is_better ? ma / mb : mb / ma, spread(rounds)};
  };
  constexpr double kNeedP99 = 10, kNeedRps = 0.95;  // the target: p99 >= 10x lower at >= 95% of req/s
  fmt::print("ratios of the medians ([min..max] of the per-round ratios):\n");
  bool met = false;
  // The judged row against the custom slice, then against the default slice; further rows for comparison.
  std::vector<std::pair<std::size_t, std::size_t>> pairs = {{2, 1}, {2, 0}};
  for (std::size_t k = 3; k < systems.size(); ++k) pairs.emplace_back(k, 1);
  for (const auto& [i, k] : pairs) {
    const System& sky = systems[i];
    const System& ref = systems[k];
    auto [lr, ls] = ratio(sky, ref, p99, true);
    auto [tr, ts] = ratio(sky, ref, rps, false);
    if (std::isnan(lr) || std::isnan(tr)) {
      fmt::print("  {} vs {}: not measured\n", sky.label, ref.label);
      continue;
    }
    const auto x = [](double v) { return fmt::format("{:.1f}", v); };
    const auto pct = [](double v) { return fmt::format("{:.1f}%", 100 * v); };
    const bool judged = i == 2 && k == 1;
    fmt::print("  {} vs {}: p99 wake-up {}x lower [{}], req/s {} [{}]{}\n", sky.label, ref.label, x(lr),
               range_text(ls, x), pct(tr), range_text(ts, pct),
               judged ? fmt::format(" (target: >= {:.0f}x at >= {:.0f}%)", kNeedP99, 100 * kNeedRps)
                      : std::string(i == 2 ? " (for reference)" : " (comparison)"));
    if (judged) met = lr >= kNeedP99 && tr >= kNeedRps;
  }
  fmt::print("-> target {} by {}: p99 wake-up >= {:.0f}x lower than Linux with custom slices ({}) at >= {:.0f}% of\n"
             "   its requests/s, {} workers per core, median of {} round(s){}\n",
             met ? "met" : "NOT met", systems[2].label, kNeedP99, systems[1].label, 100 * kNeedRps, workers / std::max(1, ncores),
             g_opt.rounds, g_opt.rounds < 3 ? " (the target asks for >= 3)" : "");
}

}  // namespace

int main(int argc, char** argv) {
  parse_args(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  std::vector<int> allowed = skyloft::allowed_cores();
  if (allowed.empty()) {
    fmt::print(stderr, "skyloft_wakeup: no allowed cores\n");
    return 2;
  }
  const std::string cores = skyloft::format_core_list(allowed);
  const int ncores = static_cast<int>(allowed.size());
  const int nmsg = g_opt.message_threads > 0 ? g_opt.message_threads : ncores;

  auto [matrix_n, work_us] = calibrate(g_opt.work_us);

  // ---- the systems ----
  g_no_slices = probe_custom_slices();
  std::vector<System> b_systems;
  b_systems.push_back(native_system(0));
  for (const auto& s : native_slice_systems(g_opt.b_quanta)) b_systems.push_back(s);
  b_systems.push_back(skyloft_system("fifo", "none", 0));
  for (const auto& pol : g_opt.b_policies) {
    for (int q : g_opt.b_quanta) b_systems.push_back(skyloft_system(pol, g_opt.mechanism, q));
  }
  std::vector<System> c_native = {native_system(0)};  // (c)'s native rows: default slice first
  for (const auto& s : native_slice_systems(g_opt.sweep_quanta)) c_native.push_back(s);
  std::vector<System> c_systems;
  for (const auto& mech : g_opt.sweep_mechanisms) {
    for (int q : g_opt.sweep_quanta) c_systems.push_back(skyloft_system(g_opt.sweep_policy, mech, q));
  }
  // (h): native default, native with the headline quantum as custom slice, skyloft's configuration.
  std::vector<System> h_systems;
  const int h_workers = 8 * ncores;
  if (g_opt.run_h) {
    for (const auto& spec : split(g_opt.headline_system)) {
      auto sky = parse_headline_system(spec);
      if (!sky) {
        fmt::print(stderr, "skyloft_wakeup: --headline-system needs POLICY/MECHANISM/QUANTUM_US[:KEY=VALUE...], "
                           "got '{}'\n", spec);
        return 2;
      }
      if (h_systems.empty()) h_systems = {native_system(0), native_slice_systems({sky->quantum_us}).front()};
      h_systems.push_back(*sky);
    }
    if (h_systems.empty()) {
      fmt::print(stderr, "skyloft_wakeup: --headline-system needs at least one system\n");
      return 2;
    }
  }
  auto measured_in_b = [&](const std::string& label, int workers) {
    return g_opt.run_b && std::find(g_opt.workers.begin(), g_opt.workers.end(), workers) != g_opt.workers.end() &&
           std::any_of(b_systems.begin(), b_systems.end(), [&](const System& s) { return s.label == label; });
  };
  std::size_t planned_cells = (g_opt.run_b ? b_systems.size() * g_opt.workers.size() : 0) +
                              (g_opt.run_c ? c_systems.size() : 0) +
                              (g_opt.run_h ? h_systems.size() * static_cast<std::size_t>(g_opt.rounds) : 0);
  for (const auto& s : c_native) planned_cells += g_opt.run_c && !measured_in_b(s.label, g_opt.sweep_workers) ? 1 : 0;

  skyloft::Config probe = skyloft::Config::from_env();
  if (g_opt.spin_us) probe.spin_us = *g_opt.spin_us;
  if (g_opt.handoff_us) probe.handoff_us = *g_opt.handoff_us;

  // ---- header ----
  fmt::print("skyloft wake-up latency benchmark (schbench-style)\n");
  print_machine(cores);
  fmt::print("  work    : {}x{} unsigned-long matrix multiply = {:.0f} us (median of 15, target {:.0f} us); "
             "{} matrix rows per request\n",
             matrix_n, matrix_n, work_us, g_opt.work_us, matrix_n);
  fmt::print("  model   : {} message thread(s), workers split evenly; wake-up = run - message thread's stamp;\n"
             "            request = multiply end - start; req/s = requests completed in the window / window\n",
             nmsg);
  fmt::print("  preempt : skyloft rows call skyloft::preempt_point() once per matrix row (~{:.0f} us) except rows\n"
             "            marked 'no points' (timer and dispatcher rows of (c){}); native: Linux's scheduler\n",
             work_us / static_cast<double>(matrix_n), g_opt.no_preempt_points ? ", and every row: --no-preempt-points" : "");
  fmt::print("  skyloft : cores {}, spin_us {}, handoff_us {}, stack {} KiB, tasks unpinned (start core = index mod\n"
             "            cores);\n"
             "            slices {}\n",
             cores, probe.spin_us, probe.handoff_us, probe.stack_size / 1024,
             g_opt.tune_slices ? "tuned to the quantum: rr slice_us=0 (one quantum), cfs min_granularity_us=Q and "
                                 "latency_us=Q, eevdf slice_us=Q"
                               : "left at the policies' defaults (--no-tune-slices)");
  fmt::print("  native  : {}\n",
             g_no_slices.empty()
                 ? fmt::format("rows 'native slice Xus': every thread asks for an EEVDF custom slice of X us "
                               "(sched_runtime; the kernel takes {}..{} us)",
                               skyloft::loadgen::kMinSliceUs, skyloft::loadgen::kMaxSliceUs)
                 : "kernel lacks custom slices (" + g_no_slices + "): the 'native slice' rows are not measured");
  fmt::print("  method  : per cell {:.0f} ms warm-up (dropped) + {:.2f} s measured{}; {} cells, about {:.0f} s{}\n",
             g_opt.warmup_ms, g_opt.seconds, g_opt.quick ? " (--quick)" : "", planned_cells,
             static_cast<double>(planned_cells) * (g_opt.seconds + g_opt.warmup_ms / 1e3 + 0.05),
             g_opt.wait_quiet_s > 0 ? fmt::format(" plus waits for a quiet machine (<= {:.0f} s per cell)", g_opt.wait_quiet_s)
                                    : std::string());
  std::fflush(stdout);

  std::thread dog(watchdog);

  auto run_cell = [&](const System& sys, int nworkers) {
    const std::string name = fmt::format("{} x{}", sys.label, nworkers);
    // On a shared machine: wait for other processes to go quiet, and rerun a cell they disturbed, within
    // --wait-quiet seconds per cell; the least disturbed attempt is kept.
    const std::uint64_t quiet_deadline = now_ns() + static_cast<std::uint64_t>(g_opt.wait_quiet_s * 1e9);
    std::optional<CellResult> best;
    for (int attempt = 1;; ++attempt) {
      if (g_opt.wait_quiet_s > 0) {
        double left = static_cast<double>(quiet_deadline - std::min(quiet_deadline, now_ns())) / 1e9;
        if (left > 0.5) wait_quiet(left);
      }
      arm_watchdog(name);
      CellResult r;
      try {
        r = sys.native ? run_native(sys, nworkers, std::min(nmsg, nworkers), matrix_n)
                       : run_skyloft(sys, nworkers, std::min(nmsg, nworkers), matrix_n, cores);
      } catch (const std::exception& e) {
        r.sys = sys;
        r.workers = nworkers;
        r.note = fmt::format("FAILED: {}", e.what());
      }
      disarm_watchdog();
      const bool quiet = r.other_pct >= 0 && r.other_pct < 5;
      if (!best || (r.ok && (!best->ok || r.other_pct < best->other_pct))) best = r;
      if (!r.ok || quiet || g_opt.wait_quiet_s <= 0 || now_ns() >= quiet_deadline) break;
      fmt::print(stderr, "  [{}] attempt {} disturbed ({:.0f}% other CPU); retrying\n", name, attempt, r.other_pct);
    }
    CellResult r = *best;
    if (!r.ok) fmt::print(stderr, "skyloft_wakeup: {}: {}\n", name, r.note);
    else if (!r.note.empty()) fmt::print(stderr, "skyloft_wakeup: {}: note: {}\n", name, r.note);
    fmt::print(stderr, "  [{}] wake p99 {} us, req/s {:.0f}, other CPU {:.0f}%\n", name, us(r.wake.p99), r.rps,
               r.other_pct);
    return r;
  };

  std::vector<CellResult> b_cells, c_cells, c_native_cells, h_cells;
  std::optional<CellResult> native_sweep;

  // ---- (b) ----
  if (g_opt.run_b) {
    for (const auto& sys : b_systems) {
      for (int w : g_opt.workers) b_cells.push_back(run_cell(sys, w));
    }
    for (const auto& r : b_cells) {
      if (r.sys.native && r.sys.slice_us == 0 && r.workers == g_opt.sweep_workers && r.ok) native_sweep = r;
    }
  }
  // ---- (c) ----
  if (g_opt.run_c) {
    // Native rows at the sweep's worker count: taken from (b) when it measured them.
    for (const auto& sys : c_native) {
      auto it = std::find_if(b_cells.begin(), b_cells.end(), [&](const CellResult& r) {
        return r.sys.label == sys.label && r.workers == g_opt.sweep_workers;
      });
      c_native_cells.push_back(it != b_cells.end() ? *it : run_cell(sys, g_opt.sweep_workers));
    }
    if (c_native_cells.front().ok) native_sweep = c_native_cells.front();
    for (const auto& sys : c_systems) c_cells.push_back(run_cell(sys, g_opt.sweep_workers));
  }
  // ---- (h) ----  the systems take turns within each round, the first one rotating from round to round
  for (int round = 1; g_opt.run_h && round <= g_opt.rounds; ++round) {
    for (std::size_t k = 0; k < h_systems.size(); ++k) {
      CellResult r = run_cell(h_systems[(k + static_cast<std::size_t>(round - 1)) % h_systems.size()], h_workers);
      r.round = round;
      h_cells.push_back(r);
    }
  }
  g_stop_watchdog.store(true);
  dog.join();

  // ---- tables ----
  if (g_opt.run_b) {
    fmt::print("\n(b) wake-up latency vs workers on {} cores (us; req/s = requests per second)\n", ncores);
    std::vector<std::string> head = {"system", "workers"};
    head.insert(head.end(), kDetailHead.begin(), kDetailHead.end());
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : b_cells) rows.push_back(detail_row(r, true));
    print_table(head, rows, 1);

    fmt::print("\n(b) summary: p99 wake-up latency (us) / requests per second\n");
    std::vector<std::string> h2 = {"system"};
    for (int w : g_opt.workers) h2.push_back(fmt::format("{} workers", w));
    std::vector<std::vector<std::string>> rows2;
    for (const auto& sys : b_systems) {
      std::vector<std::string> row = {sys.label};
      for (int w : g_opt.workers) {
        auto it = std::find_if(b_cells.begin(), b_cells.end(),
                               [&](const CellResult& r) { return r.sys.label == sys.label && r.workers == w; });
        if (it == b_cells.end() || !it->ok) row.push_back(it == b_cells.end() ? "-" : "n/a");
        else row.push_back(fmt::format("{} / {:.0f}", us(it->wake.p99), it->rps));
      }
      rows2.push_back(row);
    }
    print_table(h2, rows2, 1);
  }

  const double native_p99 = native_sweep && native_sweep->ok ? native_sweep->wake.p99 : 0;
  const double native_rps = native_sweep && native_sweep->ok ? native_sweep->rps : 0;
  auto ratios = [&](const CellResult& r) -> std::pair<double, double> {
    if (!r.ok || native_p99 <= 0 || r.wake.p99 <= 0 || native_rps <= 0) return {0, 0};
    return {native_p99 / r.wake.p99, r.rps / native_rps};
  };

  if (g_opt.run_c) {
    fmt::print("\n(c) quantum sweep: {} at {} workers on {} cores (us); native reference: wake p99 {} us, {:.0f} req/s\n",
               g_opt.sweep_policy, g_opt.sweep_workers, ncores, us(native_p99), native_rps);
    std::vector<std::string> head = {"mechanism", "quantum", "points", "wake p50", "p99", "p99.9", "req p99",
                                     "req/s", "p99 vs native", "req/s vs native", "checks/s", "preempt/s",
                                     "deferred/s", "switch/s", "idle%", "sysmon%", "ticker%", "w invol/s",
                                     "other%"};
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> notes;
    // Native rows with custom slices first (Linux at its best latency), then skyloft's.
    std::vector<const CellResult*> shown;
    for (const auto& r : c_native_cells) {
      if (r.sys.slice_us > 0) shown.push_back(&r);
    }
    for (const auto& r : c_cells) shown.push_back(&r);
    for (const auto* rp : shown) {
      const CellResult& r = *rp;
      std::vector<std::string> row;
      if (r.sys.native) row = {"linux", fmt::format("slice {}us", r.sys.slice_us), "-"};
      else row = {r.sys.mechanism, fmt::format("{}us", r.sys.quantum_us), r.sys.preempt_points ? "yes" : "no points"};
      if (!r.ok) {
        row.push_back(r.note.empty() ? "FAILED" : r.note);
      } else {
        auto [lat, thr] = ratios(r);
        const auto per_s = [&](std::uint64_t n) {
          return r.sys.native ? std::string("-") : fmt::format("{:.0f}", static_cast<double>(n) / r.window_s);
        };
        row.insert(row.end(), {us(r.wake.p50), us(r.wake.p99), us(r.wake.p999), us(r.req.p99),
                               fmt::format("{:.0f}", r.rps), fmt::format("{:.1f}x lower", lat),
                               fmt::format("{:.1f}%", 100 * thr), per_s(r.checks), per_s(r.preemptions),
                               per_s(r.deferred), per_s(r.switches),
                               r.sys.native ? "-" : fmt::format("{:.1f}", idle_pct(r)), use_text(r, kSysmon, false),
                               use_text(r, kTicker, false), use_text(r, kWorker, true),
                               r.other_pct < 0 ? "?" : fmt::format("{:.0f}", r.other_pct)});
        if (!r.sys.slice_note.empty()) notes.push_back(fmt::format("{}: {}", r.sys.label, r.sys.slice_note));
      }
      rows.push_back(row);
    }
    print_table(head, rows, 3);
    for (const auto& n : notes) fmt::print("  {}\n", n);
  }

  // ---- disturbance ----
  {
    std::vector<std::string> busy;
    std::vector<const CellResult*> every;
    for (const auto& r : b_cells) every.push_back(&r);
    if (!g_opt.run_b) {
      for (const auto& r : c_native_cells) every.push_back(&r);
    }
    for (const auto& r : c_cells) every.push_back(&r);
    for (const auto& r : h_cells) every.push_back(&r);
    for (const auto* r : every) {
      if (r->other_pct >= 5) busy.push_back(fmt::format("{} x{} ({:.0f}%)", r->sys.label, r->workers, r->other_pct));
    }
    fmt::print("\nother%: CPU used by other processes during the window, in % of all {} cores (0 = quiet machine).\n",
               ncores);
    if (!busy.empty()) {
      fmt::print("WARNING: {} cell(s) ran while other processes used >= 5% of the machine; their numbers are\n"
                 "  disturbed (rerun on a quiet machine, or with --wait-quiet S): {}\n",
                 busy.size(), fmt::join(busy, ", "));
    }
  }

  // ---- targets ----
  if (g_opt.run_b || g_opt.run_c) {
    const int per_core = ncores > 0 ? g_opt.sweep_workers / ncores : 0;
    fmt::print("\ntargets (at {} workers = {} per core; ratios against native in this run: wake p99 {} us, {:.0f} req/s)\n",
               g_opt.sweep_workers, per_core, us(native_p99), native_rps);
    if (per_core != 8) fmt::print("  note: the targets are stated for 8 workers per core; this run has {}\n", per_core);
    std::vector<const CellResult*> all;
    for (const auto& r : b_cells) {
      if (r.workers == g_opt.sweep_workers && !r.sys.native) all.push_back(&r);
    }
    for (const auto& r : c_cells) all.push_back(&r);
    auto best_of = [&](auto pred, double min_thr) -> std::pair<const CellResult*, bool> {
      const CellResult* best = nullptr;
      const CellResult* best_ok = nullptr;
      for (const auto* r : all) {
        if (!r->ok || !pred(*r)) continue;
        auto [lat, thr] = ratios(*r);
        if (!best || lat > ratios(*best).first) best = r;
        if (thr >= min_thr && (!best_ok || lat > ratios(*best_ok).first)) best_ok = r;
      }
      return {best_ok ? best_ok : best, best_ok != nullptr};
    };
    auto report = [&](const char* title, double need_lat, double min_thr, auto pred) {
      auto [r, thr_ok] = best_of(pred, min_thr);
      if (!r || native_p99 <= 0) {
        fmt::print("  {}: not measured\n", title);
        return;
      }
      auto [lat, thr] = ratios(*r);
      bool met = thr_ok && lat >= need_lat;
      fmt::print("  {}:\n    best row {} ({}): wake p99 {} us = {:.1f}x lower than native (need >= {:.0f}x), "
                 "req/s {:.1f}% of native (need >= {:.0f}%) -> {}\n",
                 title, r->sys.label, r->sys.preempt_points ? "preempt points" : "no preempt points", us(r->wake.p99),
                 lat, need_lat, 100 * thr, 100 * min_thr, met ? "MET" : "NOT MET");
    };
    report("1. flag or hybrid (work loop with preempt points): p99 wake >= 10x lower, req/s within 5%", 10, 0.95,
           [](const CellResult& r) {
             return (r.sys.mechanism == "flag" || r.sys.mechanism == "hybrid") && r.sys.preempt_points;
           });
    report("2. timer (no preempt points in the work loop), some quantum: p99 wake >= 5x lower, req/s within 15%", 5,
           0.85, [](const CellResult& r) { return r.sys.mechanism == "timer" && !r.sys.preempt_points; });
    fmt::print("  (best row = the largest p99 ratio among the rows that keep req/s within the bound, or among all\n"
               "   rows when none does; rows come from (b) at {} workers and from (c))\n",
               g_opt.sweep_workers);
  }

  if (g_opt.run_h) print_headline(h_systems, h_cells, ncores, h_workers);

  // ---- CSV ----
  int rc = 0;
  try {
    std::vector<std::string> written;
    if (g_opt.run_b) {
      write_csv(g_opt.csv_dir + "/wakeup.csv", b_cells, "workers");
      written.push_back(g_opt.csv_dir + "/wakeup.csv");
    }
    if (g_opt.run_c) {
      std::vector<CellResult> cs = c_native_cells;
      cs.insert(cs.end(), c_cells.begin(), c_cells.end());
      write_csv(g_opt.csv_dir + "/wakeup_sweep.csv", cs, "sweep");
      written.push_back(g_opt.csv_dir + "/wakeup_sweep.csv");
    }
    if (g_opt.run_h) {
      write_csv(g_opt.csv_dir + "/wakeup_headline.csv", h_cells, "headline");
      written.push_back(g_opt.csv_dir + "/wakeup_headline.csv");
    }
    fmt::print("\nCSV: {}\n", fmt::join(written, ", "));
  } catch (const std::exception& e) {
    fmt::print(stderr, "skyloft_wakeup: writing CSV failed: {}\n", e.what());
    return 1;
  }

  // ---- plots ----
  if (g_opt.plot && (g_opt.run_b || g_opt.run_c) && skyloft::bench::run_plot("plots", SKYLOFT_WAKEUP_PLOT_SCRIPT, {"--csv-dir", g_opt.csv_dir},
                                     "written under " + g_opt.csv_dir) == skyloft::bench::PlotResult::failed) {
    rc = 1;
  }
  return rc;
}
