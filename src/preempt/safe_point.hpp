// safe_point.hpp (internal) - the asynchronous safe-point test: may a signal interrupting a task at this
// PC and stack redirect it into the preemption trampoline?
//
// A task is at an async safe point when all of these hold:
//   a. it is not inside the runtime or a PreemptGuard (Task::preempt_off == 0);
//   b. the stack pointer lies inside the task's own stack (never another stack: a signal stack of the
//      program, a ucontext stack the task switched to, a thread stack);
//   c. with room above the guard for the whole preemption call chain (register frame, XSAVE area, the
//      switch path: preempt_stack_need(), measured under ASan);
//   d. the PC is not in code that may hold non-reentrant locks: libc, the dynamic loader, libgcc,
//      libstdc++, libm, the sanitizer runtimes, and any library the user named (Config::no_preempt_libs /
//      SKYLOFT_NO_PREEMPT_LIBS); libraries loaded later with dlopen are classified like those loaded at
//      start (dlopen.cpp refreshes the table after every dlopen and dlclose).
// The test reports which condition failed: an unsafe PC (d) is a transient state the mechanisms retry
// quickly (the task leaves libc within microseconds); the others are not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace skyloft {

class Task;

enum class SafePoint : std::uint8_t { safe, preempt_off, foreign_stack, no_stack_room, unsafe_pc };

// Builds the table of unsafe PC ranges from the loaded objects (start, and again after dlopen/dlclose).
// Callable from tasks (preemption is disabled meanwhile) and plain threads; never from a signal handler.
void refresh_unsafe_ranges() noexcept;
// Sets the user's library prefixes (Config::no_preempt_libs, validated) and refreshes the table.
void set_no_preempt_libs(const std::vector<std::string>& prefixes);
// Throws ConfigError for an empty prefix or one that is a path.
void validate_no_preempt_libs(const std::vector<std::string>& prefixes);
// True when the PC lies in a library that must not be interrupted (d). Async-signal-safe.
bool pc_in_unsafe_code(std::uintptr_t pc) noexcept;
// The whole test (a-d), with the first condition that failed. Async-signal-safe.
SafePoint classify_safe_point(const Task& t, std::uintptr_t pc, std::uintptr_t sp) noexcept;
bool async_safe_point(const Task& t, std::uintptr_t pc, std::uintptr_t sp) noexcept;
// Stack bytes the preemption call chain needs below the interrupted SP (c).
std::size_t preempt_stack_need() noexcept;

}  // namespace skyloft
