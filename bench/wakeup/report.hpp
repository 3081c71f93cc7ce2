// report.hpp - skyloft_wakeup's output: the header, the tables of (b) and (c), the disturbance warning, the
// targets, the headline (h) with its ratios and verdict, the CSVs and the PNG plots.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "runner.hpp"
#include "systems.hpp"

namespace skyloft::bench::wakeup {

// Every cell a run measured.
struct Cells {
  std::vector<CellResult> b_cells, c_cells, c_native_cells, h_cells;
  std::optional<CellResult> native_sweep;  // native (default slice) at --sweep-workers: the targets' reference
};

// A latency in microseconds as the tables write it ("0", one decimal under 10, else none).
std::string us(double v);

// The report's header: the machine, the work, the model, the configurations and the plan of the run.
void print_header(const std::string& cores, int nmsg, std::size_t matrix_n, double work_us, std::size_t planned_cells);

// The tables of (b) and (c), the disturbance warning and the targets, for the experiments that ran.
void print_tables(const std::vector<System>& b_systems, const Cells& cells, int ncores);

// (h): median [min..max] over the rounds for each system (native default, native with the custom slice,
// skyloft), then skyloft's ratios against the custom-slice row, the target's reference, judged against
// the target; the ratios against the default slice for context. Ratios are ratios of the medians; the
// per-round ratios (same round, both sides) give their spread.
void print_headline(const std::vector<System>& systems, const std::vector<CellResult>& cells, int ncores, int workers);

// Writes the CSVs of the experiments that ran into --csv-dir and draws the plots (unless --no-plot);
// returns the exit status (1 when writing or plotting failed).
int write_csv_and_plots(const Cells& cells);

}  // namespace skyloft::bench::wakeup
