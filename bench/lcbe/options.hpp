// options.hpp - skyloft_lcbe's plan: the cores, loads, runs and point lengths, the daemon's path and the
// output files, from the command line (--help lists the flags), and the synthetic server options of a run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "workload.hpp"

namespace lcbe {

struct Plan {
  std::vector<int> cores;
  std::string cores_text;
  std::vector<int> allowed;   // the cores this process may run on
  std::vector<double> loads;  // fractions of capacity
  int runs = 3;
  std::uint64_t warmup_ns = 200'000'000, duration_ns = 1'000'000'000, drain_ns = 500'000'000;
  std::string skyloftd = SKYLOFTD_DEFAULT_PATH;
  std::string csv, png;
  bool quick = false;
  double capacity_rps = 0;
  std::string mix_text = "bimodal:0.995:4us:10ms";
};

// The plan from the command line (--quick's defaults included; capacity_rps is left to the caller);
// prints the usage and exits on --help (0) or a bad flag (2).
Plan parse_plan(int argc, char** argv);

syn::ServerOptions point_options(const Plan& plan, int run);

}  // namespace lcbe
