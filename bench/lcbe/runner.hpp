// runner.hpp - running one series of one run of skyloft_lcbe: the daemon (skyloft series), the BE app and
// the LC app as child processes, watched against deadlines and stopped on every exit path, and what the
// series yields (its points, or why it failed, and other processes' CPU share meanwhile).
#pragma once

#include <string>
#include <vector>

#include "options.hpp"
#include "workload.hpp"

namespace lcbe {

// One series of one run: daemon (skyloft series), BE app, LC app sweeping every load. Returns the points,
// or an error message. Everything it started is stopped before it returns.
struct SeriesResult {
  std::vector<PointOut> points;
  std::string error;
  double others_pct = -1;  // other processes' share of the machine's CPU meanwhile
};

SeriesResult run_series(const Plan& plan, int run, Series s, Shared* sh);

// The handler of SIGINT / SIGTERM / SIGHUP: kills the live children, removes the daemon's socket and
// directory, then dies of `sig`.
void on_signal(int sig);

}  // namespace lcbe
