// view.hpp - skyloft-stat's samples of the shared region and their two renderings (table, JSON).
//
// A sample is a consistent copy of the control file (sequence lock) plus the app-written counters read
// with relaxed atomic loads; rates (CPU share) are differences between two samples of the same region.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "multiapp/shm_layout.hpp"
#include "multiapp/shm_region.hpp"

namespace skyloft_stat {

struct AppSample {
  std::uint32_t id = 0;
  std::uint32_t generation = 0;
  std::string name;
  skyloft::multiapp::AppClass app_class = skyloft::multiapp::AppClass::be;
  std::uint32_t pid = 0;
  std::uint32_t run_state = 0;
  std::uint32_t cores = 0;   // eligible cores
  std::uint64_t tasks = 0;
  std::uint64_t runqueue = 0;
  std::uint64_t switches_in = 0, switches_out = 0, preemptions = 0, cpu_ns = 0;
};

struct CoreSample {
  std::uint32_t cpu = 0;
  bool lc = false;
  int granted = -1;  // app id or -1
  int running = -1;  // app id named by the owner word (live apps only) or -1
  std::uint32_t active = 0, violations = 0;
  std::uint64_t handoffs = 0, reclaims = 0;
};

struct Sample {
  std::uint64_t taken_ns = 0;
  std::uint32_t epoch = 0;
  std::vector<CoreSample> cores;
  std::vector<AppSample> apps;  // registered apps, by id
};

// false if the control file gave no consistent copy (the daemon died mid-publication).
bool take_sample(const skyloft::multiapp::MappedRegion& region, Sample& out);

struct Header {
  std::string socket;
  std::uint32_t daemon_pid = 0;
  double interval_s = 0;
};

// `prev` may be null (no rates yet) or from another epoch (rates left out).
std::string render_table(const Header& h, const Sample& now, const Sample* prev);
std::string render_json(const Header& h, const Sample& now, const Sample* prev);

}  // namespace skyloft_stat
