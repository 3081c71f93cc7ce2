// mechanism.hpp (internal) - the preemption layer's entry points: mechanisms by name, the signal handler,
// and delivering a request to a processor. The interface the core calls on a mechanism is
// core/preempt_hooks.hpp; this layer depends on the core, never the other way round.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/preempt_hooks.hpp"

namespace skyloft {

struct Processor;

// Creates the mechanism named by Config::preempt; throws ConfigError for an unknown name, a bad quantum, or
// a mechanism this machine cannot run (uintr without CPU and kernel support).
std::unique_ptr<PreemptMechanism> make_preempt_mechanism(const std::string& name, std::uint32_t quantum_us,
                                                         std::uint32_t hybrid_grace_us);
// Names of every mechanism make_preempt_mechanism knows (some may refuse to start on this machine).
std::vector<std::string> mechanism_names();

// Installs the preemption signal handler (SA_RESTART, on the alternate stack) for `signo`. Idempotent per
// signal. Signals of that number the runtime did not send go to the handler installed before.
void install_preempt_handler(int signo);
// The signal the handler was installed for.
int preempt_signal() noexcept;
// Asks `p`'s thread to preempt its task: the flag always, the signal too when `signal` is set.
void request_preemption(Processor& p, bool signal) noexcept;

}  // namespace skyloft
