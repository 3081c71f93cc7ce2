// safe_point.hpp (internal) - the asynchronous safe-point test: may a signal interrupting a task at this
// PC and stack redirect it into the preemption trampoline?
//
// A task is at an async safe point when all of these hold:
//   a. it is not inside the runtime or a PreemptGuard (Task::preempt_off == 0);
//   b. the PC is not in code that may hold non-reentrant locks: libc, the dynamic loader, libgcc,
//      libstdc++, libm, the sanitizer runtimes, and any library the user named (Config / SKYLOFT_NO_PREEMPT_LIBS);
//      libraries loaded later with dlopen are classified like those loaded at start;
//   c. the stack pointer lies inside the task's own stack (never another stack: a signal stack, a thread
//      stack), with room above the guard for the whole preemption call chain (register frame, XSAVE area,
//      the switch path).
#pragma once

#include <cstddef>
#include <cstdint>

namespace skyloft {

class Task;

// Builds the table of unsafe PC ranges from the loaded objects (start, and again after dlopen).
void refresh_unsafe_ranges() noexcept;
// True when the PC lies in a library that must not be interrupted (b). Async-signal-safe.
bool pc_in_unsafe_code(std::uintptr_t pc) noexcept;
// The whole test (a-c). Async-signal-safe.
bool async_safe_point(const Task& t, std::uintptr_t pc, std::uintptr_t sp) noexcept;
// Stack bytes the preemption call chain needs below the interrupted SP (c).
std::size_t preempt_stack_need() noexcept;

}  // namespace skyloft
