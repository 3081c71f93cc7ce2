// global_fifo_policy.hpp - "global_fifo": the smallest complete skyloft policy, one FIFO queue shared by
// every worker and no per-CPU state (like sched_ext's simplest example). It shows what the contract in
// skyloft/policy.hpp asks of a policy and nothing more: correct, not fast (every worker contends for one
// lock; no cache affinity).
#pragma once

namespace skyloft_examples {

// Registers the policy under the name "global_fifo" (Config::policy / SKYLOFT_POLICY). Call before the
// Runtime starts; calling it again does nothing.
void register_global_fifo_policy();

}  // namespace skyloft_examples
