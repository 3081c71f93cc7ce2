// mechanism.hpp (internal) - the preemption layer's entry points: mechanisms by name, the signal handler,
// and delivering a request to a processor. The interface the core calls on a mechanism is
// core/preempt_hooks.hpp; this layer depends on the core, never the other way round.
#pragma once

#include <signal.h>

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

// Throws ConfigError unless `signo` may be the preemption signal: SIGURG, SIGUSR1, SIGUSR2 or
// SIGRTMIN..SIGRTMAX, and the same one as an earlier runtime of this process used. Before any start.
void validate_preempt_signal(int signo);
// Installs the preemption signal handler (SA_RESTART, on the alternate stack) for `signo`. Idempotent per
// signal. Signals of that number the runtime did not send go to the program's handler.
void install_preempt_handler(int signo);
// The signal the handler was installed for (0: none yet), and the token its runtime-sent signals carry in
// si_value (a mechanism's POSIX timers put it in sigev_value).
int preempt_signal() noexcept;
void* preempt_signal_token() noexcept;
// Asks `p`'s thread to preempt its task: the flag always, the signal too when `signal` is set.
void request_preemption(Processor& p, bool signal) noexcept;
// Makes `p`'s thread enter the kernel once and return (the preemption signal with a token of its own, which
// the handler ignores): work the kernel queued for that thread to run on its way back to user space (an
// io_uring ring's deferred completions) runs then. Preempts nothing.
void nudge_thread(Processor& p) noexcept;

// Quick retry after an unsafe-PC deferral (signal.cpp, "Deferral and quick retry"). The handler calls the
// hook (from the signal handler, on p's thread: async-signal-safe code only) when a deferral asks for one;
// unsafe_deferrals(p) counts those deferrals (a mechanism that resends compares it with its last look).
using UnsafeDeferralHook = void (*)(Processor& p, void* arg);
void set_unsafe_deferral_hook(UnsafeDeferralHook hook, void* arg) noexcept;
std::uint32_t unsafe_deferrals(const Processor& p) noexcept;
// When to retry: a fraction of the quantum with jitter.
std::uint64_t quick_retry_delay_ns(std::uint64_t quantum_ns) noexcept;

// The program's actions for the preemption signal (sigaction.cpp). record_program_action() returns false
// when `signo` is not the installed preemption signal; otherwise it records `act` (if any) as the handler
// the runtime forwards foreign signals to, and returns the previously recorded one in `old` (if any).
bool record_program_action(int signo, const struct sigaction* act, struct sigaction* old) noexcept;
// The next sigaction() after the runtime's wrapper (glibc's, or a sanitizer's interceptor).
int real_sigaction(int signo, const struct sigaction* act, struct sigaction* old) noexcept;

}  // namespace skyloft
