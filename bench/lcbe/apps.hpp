// apps.hpp - the bodies of skyloft_lcbe's two app processes (forks of the program): the LC app, which
// sweeps the loads with the synthetic server's in-process generator, and the BE app, which spins.
#pragma once

#include <string>

#include "options.hpp"
#include "workload.hpp"

namespace lcbe {

// The LC app of series `s` (a skyloft runtime of class lc on `socket`, or a Linux pool): every load of
// the plan, each point written to sh->points. Its exit status.
int lc_child(const Plan& plan, int run, Series s, Shared* sh, const std::string& socket);

// The BE app of series `s` (a skyloft runtime of class be on `socket`, or threads at nice 19 /
// SCHED_IDLE): one worker per core until sh->be_stop. Its exit status.
int be_child(const Plan& plan, Series s, Shared* sh, const std::string& socket);

}  // namespace lcbe
