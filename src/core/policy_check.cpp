// policy_check.cpp - the fatal reports of the policy contract checks; see policy_check.hpp.
#include "core/policy_check.hpp"

#include "core/runtime_core.hpp"

namespace skyloft {

#if SKYLOFT_CONTRACT_CHECKS
void policy_contract_violation(const Task* t, const char* what) noexcept {
  RuntimeCore* rt = current_runtime();
  std::string_view name = rt != nullptr ? rt->policy->name() : std::string_view("?");
  sky_fatal("policy contract violated by policy '%.*s': task %llu %s", static_cast<int>(name.size()), name.data(),
            static_cast<unsigned long long>(t->sched.id), what);
}
#endif

bool policy_contract_checked() noexcept { return kContractChecks; }

void policy_check_quiescent(std::string_view policy_name) noexcept {
#if SKYLOFT_CONTRACT_CHECKS
  // Queues are empty when shutdown gets here (S1 waited for quiescence), so a task still held was lost.
  const std::int64_t held = g_policy_held.exchange(0, std::memory_order_acq_rel);
  if (held != 0) {
    sky_fatal("policy contract violated by policy '%.*s': %lld task(s) handed to it were never returned by "
              "pick_next/balance",
              static_cast<int>(policy_name.size()), policy_name.data(), static_cast<long long>(held));
  }
#else
  (void)policy_name;
#endif
}

}  // namespace skyloft
