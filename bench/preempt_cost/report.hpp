// report.hpp - the output of skyloft_preempt_cost: the summary of a cell's runs at one quantum (medians
// over runs), the baseline table, one table per quantum, the column notes, the target lines and the CSV.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "runner.hpp"

namespace preempt_cost {

struct Summary {
  bool ok = false;
  int runs = 0;
  int livelocks = 0;   // runs where the guard had to stop a signal storm
  int disturbed = 0;   // runs during which other processes used > --max-other % (after the retries)
  double events_s = kNaN, preempt_s = kNaN, deferred_s = kNaN, overrun_s = kNaN, lost_pct = kNaN, cost_us = kNaN,
         cost_min = kNaN, cost_max = kNaN, rate = kNaN, switches_s = kNaN, gap_cost = kNaN, gap_min = kNaN,
         gap_max = kNaN, wait_pct = kNaN;
  Pcts stop, handler, run, gap, slice, sys;
};
Summary summarize(const std::vector<RunOut>& rs);

// By cell key, then quantum.
using Summaries = std::map<std::string, std::map<int, Summary>>;

// The baseline table and the preempt_point() line; returns preempt_point()'s cost, ns (NaN: unknown).
double print_baselines(const std::vector<Cell>& cells);

// One table per quantum of the selected non-baseline cells.
void print_quantum_tables(const std::vector<Cell>& cells, Summaries& sum);

// What the columns mean, and how many runs were re-run.
void print_columns(int retried);

// The target lines (printed, not asserted).
void print_targets(Summaries& sum);

// The CSV (--csv), one line per cell and quantum; false (after saying why on stderr) when it fails.
bool write_csv(const std::vector<Cell>& cells, Summaries& sum, double preempt_point_ns);

}  // namespace preempt_cost
