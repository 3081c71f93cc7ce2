// options.hpp - skyloft_wakeup's command-line flags (--help lists them) and the parsed options every part
// of the program reads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace skyloft::bench::wakeup {

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

// Parsed by parse_args() at start, read-only afterwards.
extern Options g_opt;

// The non-empty items of a `sep`-separated list.
std::vector<std::string> split(const std::string& s, char sep = ',');

// Fills g_opt from the command line; a usage error exits with status 2, --help with 0.
void parse_args(int argc, char** argv);

}  // namespace skyloft::bench::wakeup
