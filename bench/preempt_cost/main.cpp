// main.cpp - skyloft_preempt_cost: what one preemption costs, per mechanism and quantum, next to bare signals.
//
// Every cell runs CPU-bound busy loops on ONE core (default: the last allowed core) for a fixed wall time T
// and counts loop iterations. The loop is K=256 iterations of an empty body (or of skyloft::preempt_point()
// for the "+pp" rows), then one rdtsc, one load of a marker word and one store of the timestamp per chunk
// (~90 ns), so every row runs the very same code.
//
//   baseline rows   the loop alone with no events: in a pinned pthread (for the bare rows), and in a skyloft
//                   task under preempt "none", without and with preempt_point() per iteration (for the
//                   skyloft rows). preempt_point() cost = difference of the two skyloft baselines per iteration.
//   bare timer      a pthread pinned to the core, timer_create(CLOCK_MONOTONIC, SIGEV_THREAD_ID -> itself,
//                   SIGUSR1), periodic at the quantum; the handler only stores rdtsc and si_overrun.
//                   latency = ideal expiry -> handler entry.
//   bare tgkill self   the busy loop itself calls tgkill(self, SIGUSR1) once per quantum (syscall included).
//   bare tgkill cross  a sender thread pinned on the other core waits for the next slot (one per quantum),
//                   reads rdtsc, calls tgkill on the busy thread, and waits for the handler's ack before the
//                   next slot (so the rate drops below 1/quantum when latency > quantum). Latencies from the
//                   sender's rdtsc: "stop" = the busy loop's last timestamp before the interruption,
//                   "handler" = handler entry, "run" = the busy loop runs again after sigreturn.
//   skyloft rows    a Runtime with cores = that one core (fifo policy) runs two pinned tasks that both run the
//                   busy loop; with a mechanism on, they alternate at the quantum. Events = preempt_checks +
//                   preempt_deferred from Runtime::stats() (each is one interrupt or one honoured flag).
//                   The ticker of dispatcher/flag/hybrid either floats (dispatcher_core -1: it sleeps in
//                   clock_nanosleep until the next deadline) or is pinned on the other core (it polls).
//                   Each task notices a switch-in at its first chunk after it (the marker names the task that
//                   ran last). The task switched in reads the other task's slice start S (its first timestamp
//                   after its own switch-in) and last timestamp L, and records: slice = L - S; for ticker
//                   mechanisms, with expiry E = S + quantum: "stop" = L - E (quantum expiry -> the preempted
//                   task's last progress) and "run" = now - E (quantum expiry -> the next task runs), and
//                   "gap" = now - L (the core's time between the two tasks: interrupt, signal delivery,
//                   handler, sigreturn, trampoline/xsave, policy tick, context switch). The runtime's own
//                   expiry is run_start + quantum with run_start taken at dispatch, slightly before S (by the
//                   switch tail), so stop/run are underestimated by that (~0.1 us). A timer row's expiries
//                   are periodic, not tied to the switch, so it gets slice and gap only.
//                   The handler entry of a skyloft signal lies between "stop" and "run"; so the dispatcher's
//                   send-to-handler latency is bracketed by [stop, run] (measured from the quantum expiry, so
//                   it includes the ticker noticing the expiry).
// lost % = 1 - rate / baseline rate of the same run and quantum (pthread baseline for bare rows, the skyloft
// baseline with the same loop for skyloft rows); cost per event = lost * T / events. It includes everything
// the core spends per event: interrupt, signal frame, handler, and for skyloft the trampoline, policy tick,
// context switch and cache effects. Cells show the median over the runs of per-run values ([min-max] for
// the cost); latency percentiles are per run, then the median over runs.
//
// Usage: skyloft_preempt_cost [--quick] [--runs N] [--ms MS] [--quanta 5,10,...] [--core C] [--other-core C]
//                             [--csv PATH] [--filter SUBSTR] [--timeout S] [--retries N] [--max-other PCT]
//                             [--wait-quiet S] [--nice N]
// The machine may be shared: each run samples /proc/stat and is re-run (--retries) when other processes used
// more than --max-other % of all CPUs meanwhile; runs still disturbed are counted in the table.
//
// This file holds the options and the orchestration (cells, runs, retries); the loop and the calibrations
// are in workload.hpp, one run of one cell in runner.hpp, the summaries, tables and CSV in report.hpp.
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <fmt/format.h>

#include "report.hpp"
#include "runner.hpp"
#include "workload.hpp"

namespace {

using namespace preempt_cost;

constexpr const char* kUsage =
    "usage: {} [--quick] [--runs N] [--ms MS] [--quanta LIST] [--core C] [--other-core C]\n"
    "          [--csv PATH] [--filter SUBSTR] [--timeout S] [--retries N] [--max-other PCT]\n"
    "          [--wait-quiet S] [--nice N]\n"
    "  --quick           CI smoke run: 3 runs of 30 ms per cell\n"
    "  --runs N          runs per cell (default 5)\n"
    "  --ms MS           wall time of one run of one cell (default 300)\n"
    "  --quanta LIST     quanta in microseconds (default 5,10,20,50,100)\n"
    "  --core C          the busy core (default: the last allowed core)\n"
    "  --other-core C    core of the tgkill sender and of the pinned ticker (default: another allowed core)\n"
    "  --csv PATH        CSV output (default results/preempt_cost.csv)\n"
    "  --filter SUBSTR   only cells whose key contains SUBSTR (baselines always run); keys:\n"
    "                    bare_timer bare_tgkill_self bare_tgkill_cross sky_timer sky_dispatcher_{{float,pinned}}\n"
    "                    sky_flag_pp_{{float,pinned}} sky_hybrid_pp_{{float,pinned}} sky_hybrid_nopp_{{float,pinned}}\n"
    "  --timeout S       abort when one run of a cell takes longer than S seconds (default 60)\n"
    "  --retries N       re-run a run disturbed by other processes up to N times (default 2)\n"
    "  --max-other PCT   a run is disturbed when other processes used > PCT % of all CPUs (default 5)\n"
    "  --wait-quiet S    before each run wait up to S s until other processes use < PCT % (default 0)\n"
    "  --nice N          run every thread at nice N (-20..19; default 0). On a shared machine -20 keeps\n"
    "                    other processes' CFS threads from taking the busy core (needs CAP_SYS_NICE)\n";

// --quanta LIST: comma-separated microseconds, each in [1, 1000000] (an empty item is an error).
std::vector<int> quanta_value(skyloft::bench::Args& args) {
  std::string v = args.value();
  std::vector<int> out;
  std::size_t p = 0;
  while (p <= v.size()) {
    std::size_t c = v.find(',', p);
    if (c == std::string::npos) c = v.size();
    out.push_back(static_cast<int>(args.parse_long("--quanta", v.substr(p, c - p), 1, 1000000)));
    p = c + 1;
  }
  return out;
}

void parse_args(int argc, char** argv) {
  skyloft::bench::Args args(argc, argv, "skyloft_preempt_cost", kUsage);
  std::optional<int> ms;  // --ms, when given
  parse_run_args(args, g_opt, [&] {
    if (args.is("--quanta")) g_opt.quanta = quanta_value(args);
    else if (args.is("--ms")) ms = static_cast<int>(args.long_value("--ms", 5, 100000));
    else if (args.is("--other-core")) g_opt.other = static_cast<int>(args.long_value("--other-core", 0, 4095));
    else if (args.is("--retries")) g_opt.retries = static_cast<int>(args.long_value("--retries", 0, 100));
    else if (args.is("--max-other")) g_opt.max_other = static_cast<double>(args.long_value("--max-other", 0, 100));
    else if (args.is("--wait-quiet")) g_opt.wait_quiet_s = static_cast<double>(args.long_value("--wait-quiet", 0, 86400));
    else if (args.is("--nice")) g_opt.nice = static_cast<int>(args.long_value("--nice", -20, 19));
    else return false;
    return true;
  });
  // --quick: 3 runs of 30 ms unless --runs / --ms say otherwise.
  if (g_opt.quick && !g_opt.runs_set) g_opt.runs = 3;
  g_opt.ms = ms.value_or(g_opt.quick ? 30 : g_opt.ms);
}

}  // namespace

int main(int argc, char** argv) {
  parse_args(argc, argv);
  std::vector<int> allowed;
  if (!resolve_core("skyloft_preempt_cost", allowed, g_opt.core, "--core {} is not allowed (allowed: {})\n")) return 2;
  if (g_opt.other < 0) {
    for (int c : allowed)
      if (c != g_opt.core) {
        g_opt.other = c;
        break;
      }
  } else if (g_opt.other == g_opt.core ||
             std::find(allowed.begin(), allowed.end(), g_opt.other) == allowed.end()) {
    fmt::print(stderr, "skyloft_preempt_cost: --other-core {} must be an allowed core other than {}\n", g_opt.other,
               g_opt.core);
    return 2;
  }
  const int core = g_opt.core, other = g_opt.other;
  const bool have_other = other >= 0;

  if (g_opt.nice != 0 && setpriority(PRIO_PROCESS, 0, g_opt.nice) != 0) {  // this thread; later threads inherit
    fmt::print(stderr, "skyloft_preempt_cost: setpriority({}) failed: {}\n", g_opt.nice, std::strerror(errno));
    return 2;
  }
  calibrate_tsc(g_opt.quick ? 20 : 100);
  install_bare_handler();
  calibrate_chunk(core);
  skyloft::Config env = skyloft::Config::from_env();

  // ---- header ----
  fmt::print("skyloft preemption cost\n");
  print_machine(skyloft::format_core_list(allowed), fmt::format(", TSC {:.4f} ticks/ns", g_ticks_per_ns));
  fmt::print("  setup   : busy core {}, other core {} (tgkill sender, pinned ticker); skyloft policy fifo, 1 worker,\n"
             "            spin_us {}, hybrid_grace_us {}; bare signals use SIGUSR1, skyloft uses SIGURG\n",
             core, have_other ? std::to_string(other) : "none", env.spin_us, env.hybrid_grace_us);
  fmt::print("  method  : {} runs per cell x {} ms wall time{}; loop = {} iterations + rdtsc per chunk; quanta {} us\n",
             g_opt.runs, g_opt.ms, g_opt.quick ? " (--quick)" : "", kChunk, fmt::join(g_opt.quanta, ","));
  CpuSnap load0 = cpu_snap();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  double load_pct = other_cpu_pct(load0, cpu_snap());
  fmt::print("  sharing : nice {}; other processes used {:.0f}% of the machine just before the run; a disturbed run is\n"
             "            re-run up to {} times{}\n",
             g_opt.nice, load_pct, g_opt.retries,
             g_opt.wait_quiet_s > 0 ? fmt::format(", after waiting up to {:.0f} s for a quiet machine", g_opt.wait_quiet_s) : "");
  std::fflush(stdout);

  std::thread dog(watchdog, other);

  // ---- cells ----
  std::vector<Cell> cells;
  auto add_bare = [&](std::string key, std::string label, Bare kind, bool baseline = false) {
    Cell c{key, label, "-", Base::thread,
           [=](int q) { return run_bare(kind, core, other, q); }, baseline, {}};
    cells.push_back(std::move(c));
  };
  auto add_sky = [&](std::string key, std::string label, SkySpec spec, bool baseline = false) {
    std::string ticker = "-";
    if (spec.mech == "dispatcher" || spec.mech == "flag" || spec.mech == "hybrid")
      ticker = spec.pinned ? fmt::format("pin c{}", other) : "float";
    Cell c{key, label, ticker, spec.pp ? Base::sky_pp : Base::sky,
           [=](int q) { return run_sky(spec, core, other, q); }, baseline, {}};
    cells.push_back(std::move(c));
  };
  add_bare("base_thread", "baseline: pthread loop", Bare::none, true);
  add_sky("base_sky", "baseline: skyloft none", SkySpec{"none", false, false, false}, true);
  add_sky("base_sky_pp", "baseline: skyloft none +pp", SkySpec{"none", false, true, false}, true);
  add_bare("bare_timer", "bare POSIX timer", Bare::timer);
  add_bare("bare_tgkill_self", "bare tgkill self", Bare::self);
  if (have_other) add_bare("bare_tgkill_cross", "bare tgkill cross-core", Bare::cross);
  add_sky("sky_timer", "skyloft timer", SkySpec{"timer", false, false});
  add_sky("sky_dispatcher_float", "skyloft dispatcher", SkySpec{"dispatcher", false, false});
  if (have_other) add_sky("sky_dispatcher_pinned", "skyloft dispatcher", SkySpec{"dispatcher", true, false});
  add_sky("sky_flag_pp_float", "skyloft flag +pp", SkySpec{"flag", false, true});
  if (have_other) add_sky("sky_flag_pp_pinned", "skyloft flag +pp", SkySpec{"flag", true, true});
  add_sky("sky_hybrid_pp_float", "skyloft hybrid +pp", SkySpec{"hybrid", false, true});
  if (have_other) add_sky("sky_hybrid_pp_pinned", "skyloft hybrid +pp", SkySpec{"hybrid", true, true});
  add_sky("sky_hybrid_nopp_float", "skyloft hybrid no pp", SkySpec{"hybrid", false, false});
  if (have_other) add_sky("sky_hybrid_nopp_pinned", "skyloft hybrid no pp", SkySpec{"hybrid", true, false});

  // Runs are the outer loop so that drift over the whole run hits every cell alike; within a run and
  // quantum the baselines come first, and every loss is taken against the baseline of the same block.
  auto t_begin = std::chrono::steady_clock::now();
  int retried = 0;
  for (int r = 0; r < g_opt.runs; ++r) {
    for (int q : g_opt.quanta) {
      std::map<Base, double> base_rate, base_excess;
      for (auto& c : cells) {
        if (!selected(c)) continue;
        std::string label = fmt::format("{} q={}us run {}", c.key, q, r + 1);
        g_watchdog.current.store(c.key.c_str());
        RunOut o;
        for (int attempt = 0;; ++attempt) {
          if (g_opt.wait_quiet_s > 0) wait_quiet(g_opt.wait_quiet_s);
          CpuSnap a = cpu_snap();
          o = c.run(q);
          o.other_pct = other_cpu_pct(a, cpu_snap());
          o.attempts = attempt + 1;
          ++g_watchdog.progress;
          if (!o.ok || !disturbed(o) || attempt >= g_opt.retries) break;
          ++retried;
        }
        if (!o.ok) fmt::print(stderr, "skyloft_preempt_cost: {} failed: {}\n", label, o.error);
        if (o.ok && c.is_baseline) {
          base_rate[c.base] = o.rate;
          base_excess[c.base] = std::max(0.0, o.excess_ns - o.wait_ns) / o.window_ns;  // host noise, per ns
        }
        if (o.ok && !c.is_baseline && base_rate.count(c.base) && !o.livelock) {
          o.lost = 1.0 - o.rate / base_rate[c.base];
          o.cost_us = o.events && !o.livelock ? o.lost * o.window_ns / static_cast<double>(o.events) / 1000.0 : kNaN;
        }
        if (o.ok && !c.is_baseline && !o.livelock && o.events) {
          double noise = base_excess.count(c.base) ? base_excess[c.base] * o.window_ns : 0;
          o.gap_cost_us = (o.excess_ns - o.wait_ns - noise) / static_cast<double>(o.events) / 1000.0;
        }
        c.runs[q].push_back(std::move(o));
      }
    }
  }
  double elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_begin).count();
  g_watchdog.stop.store(true);
  dog.join();

  // ---- summaries ----
  Summaries sum;
  for (auto& c : cells)
    for (auto& [q, rs] : c.runs) sum[c.key][q] = summarize(rs);

  // ---- output ----
  const double preempt_point_ns = print_baselines(cells);
  print_quantum_tables(cells, sum);
  print_columns(retried);
  print_targets(sum);
  fmt::print("Whole run: {:.1f} s\n", elapsed_s);
  return write_csv(cells, sum, preempt_point_ns) ? 0 : 1;
}
