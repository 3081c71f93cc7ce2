// registry.cpp - preemption mechanisms by name.
#include <fmt/format.h>

#include <algorithm>

#include "preempt/mechanism.hpp"
#include "skyloft/config.hpp"

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
  const std::vector<std::string> known = mechanism_names();
  if (std::find(known.begin(), known.end(), name) == known.end()) {
    throw ConfigError(fmt::format("unknown preemption mechanism '{}' (known: {})", name, fmt::join(known, ", ")));
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

std::vector<std::string> mechanism_names() { return {"none", "timer", "dispatcher", "flag", "hybrid", "uintr"}; }

}  // namespace skyloft
