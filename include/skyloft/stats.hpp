// stats.hpp - per-worker counters, readable while the runtime runs.
#pragma once

#include <cstdint>

namespace skyloft {

struct WorkerStats {
  int worker = 0;            // worker index, 0..num_workers-1
  int core = 0;              // the core it is pinned to
  std::uint64_t tasks_run = 0;   // times a task was dispatched onto this worker
  std::uint64_t switches = 0;    // context switches performed on this worker (task<->task and task<->loop)
  std::uint64_t steals = 0;      // successful balance() calls that found work elsewhere
  std::uint64_t parks = 0;       // times the worker parked on its futex
  std::uint64_t idle_ns = 0;     // time spent looking for work (spinning or parked)
  std::uint64_t spawned = 0;     // tasks spawned by tasks running here
  std::uint64_t exited = 0;      // tasks that finished here
  std::uint64_t preempt_checks = 0;    // quantum expiries acted on (the policy's tick was asked)
  std::uint64_t preemptions = 0;       // tasks preempted (the tick said yes)
  std::uint64_t preempt_deferred = 0;  // interrupts that found the task unpreemptible (retried later)
  std::uint64_t handoffs = 0;          // times this worker's core moved to a spare kernel thread because its
                                       // thread blocked in the kernel (BlockingSection or found asleep), or
                                       // (escapes) its task kept running code that may not be interrupted
  std::uint64_t escapes = 0;           // of those: hand-offs by the preemption handler of a task stuck in
                                       // unpreemptible code (libc, no_preempt_libs) while others waited
  std::uint64_t io_nudges = 0;         // times another worker interrupted this worker's thread so that it
                                       // delivered I/O completions the kernel held for it while one of its
                                       // tasks ran without reaching a scheduling point (io_uring backend)
};

}  // namespace skyloft
