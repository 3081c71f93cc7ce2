// runner.hpp - running one cell of skyloft_wakeup (one system at one worker count): native threads or a
// fresh skyloft runtime, native custom slices, where the CPU went, and the watchdog that aborts a cell
// that hangs. The workload itself, its loop and percentiles: wakeup_workload.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>

#include "systems.hpp"
#include "thread_cpu.hpp"
#include "wakeup_workload.hpp"

namespace skyloft::bench::wakeup {

struct CellResult {
  System sys;
  int workers = 0;
  int message_threads = 0;
  bool ok = false;
  std::string note;  // why not ok, or a remark
  Pct wake, req;
  double rps = 0;
  double window_s = 0;
  std::size_t wake_samples = 0, requests = 0;
  std::uint64_t preemptions = 0, deferred = 0, checks = 0;  // skyloft: WorkerStats over the window, all workers
  std::uint64_t switches = 0, steals = 0, idle_ns = 0;
  int cores = 0;          // skyloft: workers whose stats are summed
  double other_pct = -1;  // CPU share used by other processes during the window (percent of the machine)
  int round = 0;          // (h): the round (1..R); 0 elsewhere
  RoleUse use;            // skyloft: CPU by thread role during the window
};

// Whether this kernel takes custom slices (a scratch thread asks for the minimum): "" or why not.
std::string probe_custom_slices();

extern std::string g_no_slices;  // probe_custom_slices() at start, before any cell; read-only afterwards

// Runs `sys` with `nworkers` workers and min(nmsg, nworkers) message threads under the watchdog (skyloft
// rows on `cores`); a failure is a result that is not ok, with its note. With --wait-quiet it waits for a
// quiet machine and reruns a disturbed cell. Prints one progress line to stderr.
CellResult run_cell(const System& sys, int nworkers, int nmsg, std::size_t matrix_n, const std::string& cores);

// The watchdog thread: run_cell() arms it for each cell; a cell that overruns its plan by --timeout
// seconds aborts the program (status 3) after dumping the runtime. stop_watchdog() ends and joins it.
std::thread start_watchdog();
void stop_watchdog(std::thread& dog);

}  // namespace skyloft::bench::wakeup
