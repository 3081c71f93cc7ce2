// barrier.cpp - reusable barrier: the last arrival resets the count, then advances the phase word that
// the others sleep on.
#include "core/fatal.hpp"
#include "skyloft/config.hpp"
#include "skyloft/sync.hpp"

namespace skyloft {

Barrier::Barrier(std::uint32_t participants) : participants_(participants) {
  if (participants == 0) throw ConfigError("Barrier needs at least one participant (got 0)");
}

bool Barrier::arrive_and_wait() {
  const std::uint32_t phase = phase_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == participants_) {
    arrived_.store(0, std::memory_order_relaxed);
    phase_.fetch_add(1, std::memory_order_seq_cst);  // publishes the reset to the next phase's arrivals
    wake_address_all(phase_);
    return true;
  }
  while (phase_.load(std::memory_order_acquire) == phase) {
    wait_address(phase_, phase, kNoDeadline, WaitReason::barrier);
  }
  return false;
}

}  // namespace skyloft
