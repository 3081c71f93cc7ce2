// handoff.hpp (internal) - a processor changing kernel threads when its thread blocks in the kernel.
//
// Processor::own_word = (serial of the owning KThread << 8) | state, changed only by CAS:
//   kOwnRunning   the thread drives the processor normally.
//   kOwnBlocking  the thread is inside a BlockingSection (it does not touch the processor until it leaves).
//   kOwnStealing  the monitor is taking the processor from that thread (marked: from kOwnBlocking; unmarked:
//                 from kOwnRunning once it proved the thread sleeps in the kernel, see handoff.cpp H3).
// A spare thread that receives the processor stores (its serial << 8) | kOwnRunning when it attaches.
// The serial makes the word ABA-proof: a thread's stale expectation never matches a later owner's state.
#pragma once

#include <cstdint>

namespace skyloft {

struct KThread;
struct Processor;
struct RuntimeCore;
struct Task;

inline constexpr std::uint64_t kOwnRunning = 1, kOwnBlocking = 2, kOwnStealing = 3;
inline constexpr std::uint64_t own_word(std::uint32_t serial, std::uint64_t state) noexcept {
  return std::uint64_t{serial} << 8 | state;
}

// KThread::standin_verdict values: what became of a steal the thread noticed through its stand-in.
inline constexpr std::uint32_t kVerdictPending = 0, kVerdictStolen = 1, kVerdictCancelled = 2;

// On the thread itself: opened/closed around its life (the /proc files the monitor reads).
void kthread_opened(KThread* kt) noexcept;
void kthread_closed(KThread* kt) noexcept;
// A spare thread waits here until it is handed a processor (returned) or the runtime stops (nullptr).
Processor* wait_as_spare(KThread* kt) noexcept;

// True if the kernel reports the thread running or runnable (not asleep). Monitor only.
bool kthread_on_cpu(const KThread* kt) noexcept;

// The monitor's side (sysmon.cpp). Each returns true if it took the processor.
bool steal_marked(RuntimeCore& rt, Processor& p) noexcept;
bool steal_unmarked(RuntimeCore& rt, Processor& p) noexcept;
// The preemption handler's side (H6): on p's own thread, whose running task `t` sits in code that may not be
// interrupted while others wait; detaches the thread from p if a parked spare can take p. Async-signal-safe.
bool escape_unpreemptible(Processor& p, Task* t) noexcept;

void kthread_main(void* arg);

}  // namespace skyloft
