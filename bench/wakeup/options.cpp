// options.cpp - skyloft_wakeup's usage text and command-line parsing (--quick's defaults included).
#include "options.hpp"

#include <sstream>

#include "bench_common.hpp"

namespace skyloft::bench::wakeup {

Options g_opt;

namespace {

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

// A comma-separated list of integers in [lo, hi] (each parsed as a number and truncated), not empty.
std::vector<int> int_list_value(skyloft::bench::Args& args, const std::string& flag, int lo, int hi) {
  std::vector<int> out;
  for (const auto& s : split(args.value())) out.push_back(static_cast<int>(args.parse_double(flag, s, lo, hi)));
  if (out.empty()) args.usage(flag + " needs a non-empty list");
  return out;
}

}  // namespace

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
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

}  // namespace skyloft::bench::wakeup
