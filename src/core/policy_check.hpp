// policy_check.hpp (internal) - policing the policy contract (include/skyloft/policy.hpp) in checked builds.
//
// Every task the core hands to a policy (spawn, wakeup, yield) must come back exactly once, from pick_next
// or balance, before the core hands it again; block and task_finish see only tasks the policy does not
// hold. With SKYLOFT_CONTRACT_CHECKS (the debug, asan and tsan presets) each Task carries a token that the
// core flips at every hand-over, and a count of tasks the policy holds is checked at shutdown; a violation
// is a fatal error naming the policy and the task. Without it these compile to nothing.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "core/fatal.hpp"
#include "core/task.hpp"

namespace skyloft {

#if SKYLOFT_CONTRACT_CHECKS
inline constexpr bool kContractChecks = true;
// Tasks the policy holds right now (handed and not yet returned); checked when the runtime stops.
inline std::atomic<std::int64_t> g_policy_held{0};

[[noreturn]] void policy_contract_violation(const Task* t, const char* what) noexcept;

// The core hands `t` to the policy (spawn, wakeup, yield).
inline void policy_hand(Task* t) noexcept {
  if (t->policy_owned.exchange(1, std::memory_order_acq_rel) != 0) {
    policy_contract_violation(t, "was handed to the policy while the policy already held it");
  }
  g_policy_held.fetch_add(1, std::memory_order_relaxed);
}
// The policy returned `t` (pick_next, balance). nullptr: nothing returned.
inline Task* policy_took(Task* t) noexcept {
  if (t == nullptr) return t;
  if (t->policy_owned.exchange(0, std::memory_order_acq_rel) != 1) {
    policy_contract_violation(t, "was returned by pick_next/balance although the policy did not hold it "
                                 "(returned twice, or never handed to it)");
  }
  g_policy_held.fetch_sub(1, std::memory_order_relaxed);
  return t;
}
// block / task_finish: the task is running, so the policy must not hold it.
inline void policy_not_held(const Task* t) noexcept {
  if (t->policy_owned.load(std::memory_order_acquire) != 0) {
    policy_contract_violation(t, "is still queued in the policy while it runs (it was returned and kept)");
  }
}
#else
inline constexpr bool kContractChecks = false;
inline void policy_hand(Task*) noexcept {}
inline Task* policy_took(Task* t) noexcept { return t; }
inline void policy_not_held(const Task*) noexcept {}
#endif

// At shutdown, with every thread stopped: fatal if the policy kept tasks it never returned.
void policy_check_quiescent(std::string_view policy_name) noexcept;

}  // namespace skyloft
