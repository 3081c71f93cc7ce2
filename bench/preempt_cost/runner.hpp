// runner.hpp - running one cell of skyloft_preempt_cost: the options a run reads, one run of a bare-signal
// cell (POSIX timer, tgkill self / cross-core, no runtime alive) or of a skyloft cell (a Runtime with one
// mechanism at one quantum), what one run yields (RunOut), the cells themselves, and the watchdog.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "workload.hpp"

namespace preempt_cost {

constexpr int kGuardMs = 20;  // a run not finished this long after its deadline is declared livelocked

// ---------------------------------------------------------------------------------------------------------
// Options

// quick, runs, core (the busy core; -1: last allowed), csv, filter (only cells whose key contains this;
// baselines always run) and timeout_s come from RunOptions.
struct Options : RunOptions {
  Options() : RunOptions(5, "results/preempt_cost.csv", 60) {}

  int ms = 300;
  std::vector<int> quanta = {5, 10, 20, 50, 100};
  int other = -1;       // sender / pinned ticker core (-1: first allowed core != core)
  int retries = 2;          // re-run a disturbed run up to this many times
  double max_other = 5;     // a run is disturbed when other processes used more than this % of the machine
  double wait_quiet_s = 0;  // before each run, wait up to this long for other processes to go quiet
  int nice = 0;             // setpriority() of the whole process (threads inherit it); -20 shields a shared machine
};
extern Options g_opt;  // written by main() (parse_args) before any run

// ---------------------------------------------------------------------------------------------------------
// Watchdog: a runtime bug that hangs a cell should produce a diagnosis, not a silent CI timeout.

// main()'s loop writes current and progress (wait_quiet() bumps progress too) and stop; watchdog() reads them.
extern ProgressWatchdog g_watchdog;

// The watchdog thread's body (pinned on `core` when it is >= 0).
void watchdog(int core);

// ---------------------------------------------------------------------------------------------------------
// Other processes: a shared machine disturbs a run; /proc/stat tells how much CPU others used meanwhile.

// Waits up to max_s for other processes to use less than --max-other % of the machine (0.2 s samples).
double wait_quiet(double max_s);

// ---------------------------------------------------------------------------------------------------------
// Results of one run of one cell.

struct Pcts {
  double p50 = kNaN, p99 = kNaN;
};

// p50 = v[n / 2] and p99 = v[floor(0.99 n)] of the sorted samples.
Pcts percentiles(std::vector<double> v);

struct RunOut {
  bool ok = false;
  std::string error;
  double window_ns = 0;
  std::uint64_t iters = 0;
  double rate = 0;                 // iterations per ns
  std::uint64_t events = 0;        // interrupts / honoured flags / handler calls
  std::uint64_t preemptions = 0;   // skyloft: the tick said yes
  std::uint64_t deferred = 0;      // skyloft: interrupts at unsafe points
  std::uint64_t overruns = 0;      // bare timer: coalesced expiries
  std::uint64_t switches_seen = 0; // skyloft: switch-ins noticed by the tasks
  bool livelock = false;           // the guard had to stop a signal storm (see run_bare / run_sky)
  double other_pct = -1;           // CPU used by other processes during the run, % of the machine
  long nivcsw = 0;                 // involuntary context switches of the busy kernel thread during the run
  double wait_ns = 0;              // time the busy kernel thread waited for its core (other threads ran)
  double excess_ns = 0;            // time lost in chunks slower than kGapFactor x normal (interruptions)
  double gap_cost_us = kNaN;       // (excess - wait) / events
  bool uses_other = false;         // the cell needs the other core too (sender, ticker)
  int attempts = 1;
  Pcts stop, handler, run, gap, slice, sys;  // us
  // filled in after the baseline is known
  double lost = kNaN;              // fraction
  double cost_us = kNaN;
};

// ---------------------------------------------------------------------------------------------------------
// Bare signal cells (no runtime alive).

// Installs the bare cells' SIGUSR1 handler (once, before any run).
void install_bare_handler();

enum class Bare { none, timer, self, cross };

RunOut run_bare(Bare kind, int core, int other, int q_us);

// ---------------------------------------------------------------------------------------------------------
// skyloft cells

struct SkySpec {
  std::string mech;   // "none", "timer", "dispatcher", "flag", "hybrid"
  bool pinned = false;
  bool pp = false;    // loop with preempt_point()
  bool two = true;    // two tasks (false: the baseline, one task)
};

RunOut run_sky(const SkySpec& spec, int core, int other, int q_us);

// ---------------------------------------------------------------------------------------------------------
// Cells

enum class Base { thread, sky, sky_pp };

struct Cell {
  std::string key;
  std::string label;
  std::string ticker;  // "-", "float", "pin cN"
  Base base;           // which baseline its loss is measured against
  std::function<RunOut(int q)> run;
  bool is_baseline = false;
  std::map<int, std::vector<RunOut>> runs;  // by quantum
};

// A run is disturbed when another thread took the busy core (involuntary switches of the busy kernel
// thread), or, for cells that also need the other core, when other processes used > --max-other % of the
// machine during it.
bool disturbed(const RunOut& o);

// Whether a cell runs: baselines always, the others when their key contains --filter.
bool selected(const Cell& c);

}  // namespace preempt_cost
