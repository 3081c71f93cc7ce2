// sysmon.hpp (internal) - the runtime's monitor thread (Go's sysmon): hands processors whose kernel
// thread blocks in the kernel to spare threads (handoff.cpp), keeps work conserving (a processor that
// leaves queued work untaken is marked stalled and a parked peer is woken to steal it: W2 in sysmon.cpp),
// reports stalls (the stall watchdog), and under a daemon wakes a processor waiting for its core when its
// request is to be re-sent (app_core.hpp O3s, O3r).
//
// It sleeps while nothing needs it: its period starts at kMinPeriod and doubles up to kMaxPeriod while
// every contended processor keeps making progress, and drops back to kMinPeriod when one does not, or when
// a BlockingSection starts on a processor that others wait for. So a runtime under steady load pays one
// wake-up every few milliseconds, and a blocked thread is taken over within about handoff_us (marked) or
// kMaxPeriod + handoff_us (unmarked).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "core/os_thread.hpp"
#include "core/park.hpp"

namespace skyloft {

struct Processor;
struct RuntimeCore;

class Sysmon {
 public:
  static constexpr std::uint64_t kMinPeriodNs = 50'000;
  static constexpr std::uint64_t kMaxPeriodNs = 2'000'000;

  explicit Sysmon(RuntimeCore& rt);
  ~Sysmon();
  void start();
  void stop();
  // A BlockingSection began on `p` (its thread calls this): wakes the monitor early if it sleeps long and
  // tasks wait for p. One load when the monitor is already watching closely.
  void blocking_started(Processor& p) noexcept;
  std::uint64_t stalls_reported() const noexcept { return stalls_.load(std::memory_order_relaxed); }

 private:
  struct ProcWatch {
    std::uint64_t progress = 0;   // tasks_run + switches at the last look
    std::uint64_t since = 0;      // when progress last changed
    std::uint64_t peer_woken = 0; // when check() last woke a parked peer for this processor's queue (W2)
    bool reported = false;        // a stall of this episode was reported
  };
  void loop();
  // One look at every processor; returns true if some contended processor made no progress.
  bool check(std::uint64_t now);
  void report_stall(Processor& p, std::uint64_t stalled_ns);
  // Unparks one parked processor other than p; false when none is parked.
  bool wake_parked_peer(const Processor& p) noexcept;

  RuntimeCore& rt_;
  const std::uint64_t handoff_ns_;
  const std::uint64_t stall_ns_;           // 0: no stall watchdog
  std::unique_ptr<ProcWatch[]> watch_;     // owned by the monitor thread
  OsThread thread_;
  ParkWord park_;
  std::atomic<bool> sleeping_long_{false}; // the monitor writes; blocking_started reads
  std::atomic<bool> hurry_{false};         // blocking_started asks for a close look
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> stalls_{0};  // the monitor writes; stats read
};

}  // namespace skyloft
