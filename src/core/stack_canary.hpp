// stack_canary.hpp - overflow detection for guardless stacks: a canary word at the stack's low end.
//
// A guardless stack (StackGuard::off) has no PROT_NONE page below it: below its slot lies another task's
// slot, whose top holds that task's record. So StackPool writes a canary word right below the usable low
// end whenever it hands the slot out, and the switch path checks, every time a task switches out, that the
// word is intact and that the stack pointer is still above the low end (stack_check_on_switch_out, called
// once, from switch_away).
//
// What it catches: an overflow that wrote the word (frames that are written densely, as most are, cannot
// cross it without writing it), and one still in progress at the switch. What it misses: a frame that jumps
// over the word without writing it (a large local array written sparsely; under ASan, the redzones between
// frames are never written either) and returns before the switch.
// Either way the report comes at the switch, after the neighbouring slot may have been corrupted: guarded
// stacks fault at the overflowing instruction, so use them while developing.
//
// The word is the slot's address mixed with a constant, so a stale copy of another slot's canary (or a
// zeroed page) does not pass.
#pragma once

#include <cstdint>

#include "core/task.hpp"

namespace skyloft {

// Bytes reserved at the low end of a guardless slot (padding, then the canary word right below the usable
// low end: the first word an overflow reaches), keeping the stack 16-aligned.
inline constexpr std::size_t kCanaryBytes = 16;

// The canary word of a stack whose lowest usable address is `lo`.
inline std::uint64_t* stack_canary_word(void* lo) noexcept { return static_cast<std::uint64_t*>(lo) - 1; }

inline std::uint64_t stack_canary_value(const void* lo) noexcept {
  return 0x736b796c6f667421ull ^ reinterpret_cast<std::uintptr_t>(lo);  // "skyloft!"
}

inline void stack_canary_write(void* lo) noexcept { *stack_canary_word(lo) = stack_canary_value(lo); }

inline bool stack_canary_intact(void* lo) noexcept { return *stack_canary_word(lo) == stack_canary_value(lo); }

// Reports the overflow of `t`'s guardless stack and aborts (stack_pool.cpp). `sp`: the stack pointer seen.
[[noreturn]] void stack_overflow_detected(const Task* t, std::uintptr_t sp) noexcept;

// Called by the switch path on `t`'s own stack, right before `t` switches out.
inline void stack_check_on_switch_out(const Task* t) noexcept {
  if (t->stack.guarded) return;  // the guard page faults at the overflow itself
  std::uintptr_t sp;
  asm volatile("mov %%rsp, %0" : "=r"(sp));
  if (__builtin_expect(!stack_canary_intact(t->stack.lo) || sp < reinterpret_cast<std::uintptr_t>(t->stack.lo), 0)) {
    stack_overflow_detected(t, sp);
  }
}

}  // namespace skyloft
