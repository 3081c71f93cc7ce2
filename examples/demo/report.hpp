// report.hpp - the demo's statistics and output: per-run numbers, the summary over rounds (median
// [min..max]), the headline comparison, the CSVs and the latency-distribution points the PNG is drawn from.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "systems.hpp"

namespace demo {

// One system in one round. Latencies in microseconds from the scheduled arrival.
struct RunStats {
  std::size_t requests = 0, completed = 0;
  double throughput = 0;  // completed / (last completion - first arrival)
  double short_p50 = 0, short_p99 = 0, short_p999 = 0;
  double long_p50 = 0, long_p99 = 0;
  double max_us = 0;
  double gen_lag_max_us = 0;
  double cpu_s = 0;
};
RunStats summarize(const RunOutcome& r);

// Everything measured of one system over the rounds.
struct SystemResults {
  const SystemSpec* spec = nullptr;
  std::string label, workers;
  std::vector<RunStats> rounds;      // rounds that produced numbers
  std::vector<std::string> problems; // statuses of rounds that were not clean ("round 2: ...")
  std::vector<double> short_lat, long_lat;  // every round's latencies pooled (for the distribution plot)
  void add(int round, const RunOutcome& r);
};

struct ReportFiles {
  std::string csv;      // per-round rows ("" or "-": none)
  std::string cdf_csv;  // latency quantiles per system and class, for the PNG ("" or "-": none)
};

// One compact line per system and round while the demo runs.
void print_run_line(int round, const RunOutcome& r, const RunStats& s);
// The summary table (median [min..max] over the rounds), the headline and its one-sentence conclusion.
// Returns false when the headline could not be judged (a missing system or round).
bool print_summary(const std::vector<SystemResults>& systems, const std::string& headline_key, double target_ratio,
                   double period_us);
void write_files(const ReportFiles& files, const std::vector<SystemResults>& systems, const std::string& settings_csv);

}  // namespace demo
