// assignment.hpp - the daemon's core assignment rule, as a pure function of the registered apps.
//
// The rule (recomputed on every register, unregister and app death):
//   1. Latency-critical (LC) apps first. The LC share is the sum of the LC apps' demands, raised to
//      --min-lc-cores and capped at the managed cores; with no best-effort app registered it is every core.
//      LC apps, in registration order, each take a block of min(demand, what is left) cores; cores the
//      demands did not use go round-robin to the LC apps. An LC app that found no core left shares the LC
//      cores (eligible there, owner of none).
//   2. The rest is shared by the best-effort (BE) apps: every BE app is eligible on every BE core, and the
//      initial owner of the k-th BE core is the (k mod #BE)-th BE app.
//   3. No LC app: every core is a BE core.
//   4. Eligibility for the runtime's lcbe rule: every LC app is eligible on every core (LC priority
//      everywhere: it takes a BE app's core while it has queued work), and every BE app on every core but
//      the first --min-lc-cores (the LC reserve), so cores without LC work go back to the BE apps.
// "Eligible" means the app keeps a worker on the core; "owner" is the one whose worker the daemon makes
// active when the core has no live owner. Moving a core between eligible apps at run time is the
// runtime's handoff, not the daemon's.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "multiapp/protocol.hpp"

namespace skyloft::multiapp {

struct AppDemand {
  std::uint32_t id = 0;
  AppClass app_class = AppClass::be;
  std::uint32_t demand = 1;
};

struct CoreAssignment {
  int owner = -1;              // app id, -1: none
  std::uint32_t eligible = 0;  // bit i: app i
  bool lc = false;
};

struct Assignment {
  std::vector<CoreAssignment> cores;  // by managed-core index
  // Managed-core indices on which app i is eligible, ascending.
  std::vector<std::uint32_t> eligible_cores(std::uint32_t app_id) const;
};

// `apps` in registration order; ids must be < kMaxApps and distinct.
Assignment assign_cores(std::uint32_t ncores, std::uint32_t min_lc_cores, std::span<const AppDemand> apps);

}  // namespace skyloft::multiapp
