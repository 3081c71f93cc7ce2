// registry.cpp - preemption mechanisms by name, and the hooks the switch path calls.
#include <fmt/format.h>

#include "core/runtime_core.hpp"
#include "core/scheduler.hpp"
#include "preempt/mechanism.hpp"
#include "skyloft/config.hpp"
#include "skyloft/time.hpp"

namespace skyloft {

std::unique_ptr<PreemptMechanism> make_timer_mechanism(std::uint32_t quantum_us);
std::unique_ptr<PreemptMechanism> make_ticker_mechanism(const std::string& name, std::uint32_t quantum_us,
                                                        std::uint32_t grace_us);
[[noreturn]] void refuse_uintr();

namespace {
class NoPreemption final : public PreemptMechanism {
 public:
  const char* name() const noexcept override { return "none"; }
};
}  // namespace

std::unique_ptr<PreemptMechanism> make_preempt_mechanism(const std::string& name, std::uint32_t quantum_us,
                                                         std::uint32_t hybrid_grace_us) {
  if (name == "none") return std::make_unique<NoPreemption>();
  if (name != "timer" && name != "dispatcher" && name != "flag" && name != "hybrid" && name != "uintr") {
    throw ConfigError(fmt::format(
        "unknown preemption mechanism '{}' (known: none, timer, dispatcher, flag, hybrid, uintr)", name));
  }
  if (quantum_us == 0) throw ConfigError("quantum_us 0 is invalid: the quantum must be at least 1 microsecond");
  if (quantum_us > 1'000'000) {
    throw ConfigError(fmt::format("quantum_us {} is out of range (1..1000000 microseconds)", quantum_us));
  }
  if (name == "uintr") refuse_uintr();
  if (name == "timer") return make_timer_mechanism(quantum_us);
  if (name == "hybrid" && (hybrid_grace_us == 0 || hybrid_grace_us > 1'000'000)) {
    throw ConfigError(fmt::format("hybrid_grace_us {} is out of range (1..1000000 microseconds)", hybrid_grace_us));
  }
  return make_ticker_mechanism(name, quantum_us, hybrid_grace_us);
}

void preempt_on_dispatch(Worker* w) noexcept {
  w->preempt_flag.store(0, std::memory_order_relaxed);  // a request for the previous run is stale now
  if (w->track_run_start) {
    w->run_seq.store(w->run_seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    w->run_start_ns.store(now_ns(), std::memory_order_release);
  }
  w->rt.preempt->on_dispatch(*w);
}

void preempt_on_idle(Worker* w) noexcept {
  if (w->track_run_start) w->run_start_ns.store(0, std::memory_order_release);
  w->rt.preempt->on_idle(*w);
}

}  // namespace skyloft
