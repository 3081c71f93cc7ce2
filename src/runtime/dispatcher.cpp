// dispatcher.cpp - the dispatcher thread of a centralized policy (needs_dispatcher()): it runs the
// policy's poll() and, for ticker mechanisms, their scan(), on a core of its own.
//
// With a quantum to watch (scan() returned a time) or a user poller registered (pollers.hpp) it never
// parks: it owns its core and polls, so quanta are precise and pollers run every turn. Otherwise it
// follows the idle protocol (park.hpp): spin spin_us, then park until the policy kicks it
// (kick_dispatcher).
#include <sched.h>

#include <algorithm>

#include "core/park.hpp"
#include "core/runtime_core.hpp"
#include "runtime/runtime_impl.hpp"
#include "skyloft/time.hpp"

namespace skyloft {
namespace {

constexpr std::uint64_t kRescanNs = 5'000;  // new contention is noticed within this

struct DispatcherIdle {
  RuntimeCore& rt;
  std::uint64_t next_scan = 0;  // the mechanism's next check
  std::uint64_t last_scan = 0;

  bool find() {
    const std::uint64_t now = now_ns();
    if (now >= next_scan || now - last_scan >= kRescanNs) {
      next_scan = rt.preempt->scan(now);
      last_scan = now;
    }
    rt.pollers.run(now);  // before the policy's poll: what a poller spawns is handed out this very turn
    // A registered poller counts as work (PL3): the park's re-check (P2) sees it, so an add_poller whose
    // unpark came before our intent to sleep cannot leave us parked with a poller to run.
    return rt.policy->poll() || rt.pollers.any();
  }
  bool stop() const { return rt.stopping.load(std::memory_order_acquire); }
  bool spin_more(std::uint64_t spun_ns) const {
    return next_scan != UINT64_MAX || spun_ns < std::uint64_t{rt.config.spin_us} * 1000;
  }
  std::uint64_t deadline() const { return UINT64_MAX; }
  void spinning(bool) {}
  void park_begin() {}
  void sleeping(std::uint64_t) { rt.dispatcher_parked_forever.store(true, std::memory_order_release); }
  void park_end() {
    rt.dispatcher_parked_forever.store(false, std::memory_order_relaxed);
    next_scan = 0;
  }
};

}  // namespace

void dispatcher_loop(RuntimeCore& rt) {
  if (rt.config.pin_workers) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(rt.dispatcher_core, &set);
    sched_setaffinity(0, sizeof set, &set);
  }
  DispatcherIdle idle{rt};
  while (spin_then_park(rt.dispatcher_park, idle)) {
  }
}

}  // namespace skyloft
