// systems.cpp - the table of systems (systems.hpp) and their report labels.
#include "systems.hpp"

#include <fmt/core.h>

namespace demo {

const std::vector<SystemSpec>& all_systems() {
  using T = SystemSpec::Threads;
  static const std::vector<SystemSpec> k = {
      {.key = "rr", .about = "skyloft, per-worker round robin, timer preemption at --quantum-us (no preempt points)",
       .skyloft = true, .policy = "rr", .preempt = "timer", .quantum = true},
      {.key = "global-rr", .about = "skyloft, the example policy global_fifo (one shared queue), timer preemption",
       .skyloft = true, .policy = "global_fifo", .preempt = "timer", .quantum = true},
      {.key = "fifo", .about = "skyloft, per-worker FIFO queues with stealing, no preemption",
       .skyloft = true, .policy = "fifo"},
      {.key = "global-fifo", .about = "skyloft, global_fifo (one shared queue), no preemption",
       .skyloft = true, .policy = "global_fifo"},
      {.key = "rr-hybrid", .about = "skyloft, rr with the hybrid mechanism and a preempt point every ~1 us of work",
       .skyloft = true, .policy = "rr", .preempt = "hybrid", .quantum = true, .preempt_points = true},
      {.key = "sq", .about = "skyloft, the single-queue policy (a dispatcher thread on the first core), no preemption",
       .skyloft = true, .policy = "sq"},
      {.key = "pool", .about = "linux, one thread per core, a mutex/condvar FIFO queue, run to completion",
       .skyloft = false, .threads = T::per_core},
      {.key = "pool-many", .about = "linux, --linux-threads threads, a mailbox each, a request to the least loaded: the kernel time-slices them",
       .skyloft = false, .threads = T::many},
      {.key = "pool-slices", .about = "linux, pool-many with an EEVDF custom slice of --linux-slice-us per thread",
       .skyloft = false, .threads = T::many, .tuned_slice = true},
      {.key = "threads", .about = "linux, one std::thread per request",
       .skyloft = false, .threads = T::per_request},
  };
  return k;
}

const SystemSpec* find_system(std::string_view key) {
  for (const auto& s : all_systems()) {
    if (key == s.key) return &s;
  }
  return nullptr;
}

std::string label_of(const SystemSpec& s, const RunSettings& rs) {
  if (s.skyloft) {
    std::string l = fmt::format("skyloft {}", s.key);
    if (s.quantum) l += fmt::format(" ({} {}us)", s.preempt, rs.quantum_us);
    return l;
  }
  switch (s.threads) {
    case SystemSpec::Threads::per_core: return fmt::format("linux pool {} thr", rs.cores.size());
    case SystemSpec::Threads::many:
      return s.tuned_slice ? fmt::format("linux pool {} thr, {}us slice", rs.linux_threads, rs.linux_slice_us)
                           : fmt::format("linux pool {} thr", rs.linux_threads);
    case SystemSpec::Threads::per_request: break;
  }
  return "linux thread/request";
}

std::string hang_status(const RunSettings& rs, std::size_t left, std::size_t total) {
  return fmt::format("HANG: {} of {} requests unfinished, no progress for {:.1f} s", left, total,
                     std::chrono::duration<double>(rs.timeout).count());
}

}  // namespace demo
