// report.hpp - skyloft_lcbe's output: the header, one line per series of each run with its CSV rows, and
// at the end the tables (LC latency, BE CPU share, core acquisition; medians [min-max] over the runs) and
// the targets.
#pragma once

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "options.hpp"
#include "runner.hpp"
#include "workload.hpp"

namespace lcbe {

// What the runs yield, accumulated series by series.
struct Results {
  std::map<Series, std::vector<std::vector<PointOut>>> points;  // [series][point] = one PointOut per run
  std::map<Series, std::vector<std::vector<double>>> be_spare, be_machine;  // BE share, same indexing
};

// The lines at the top of the report: what runs where, the machine, the LC and BE apps.
void print_header(const Plan& plan, const skyloft::loadgen::RequestMix& mix);

// The CSV at `path` with its header line (bench::open_csv: throws when it cannot be opened).
std::ofstream open_results_csv(const std::string& path);

// Adds series `s` of run `run` (0-based) to `res`, with the BE share computed from `unit_rate` (BE units
// per core per CPU second) over `ncores` cores; prints its line and writes its CSV rows when csv is open.
void add_series(Results& res, std::ofstream& csv, int run, Series s, const SeriesResult& r, double unit_rate,
                double ncores);

// The tables and the targets, over all runs.
void print_report(const Plan& plan, Results& res);

}  // namespace lcbe
