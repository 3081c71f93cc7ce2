// stack_size.hpp - the stack a program thread gets when it names none: glibc's rule (RLIMIT_STACK).
#pragma once

#include <sys/resource.h>

#include <cstddef>

#include "skyloft/config.hpp"

namespace skyloft::posix {

// The soft RLIMIT_STACK (8 MiB by default), as glibc's default for new threads and as main's own stack;
// 2 MiB when unlimited; clamped to what the runtime accepts.
inline std::size_t default_stack_size() noexcept {
  rlimit lim{};
  std::size_t size = 2u << 20;
  if (getrlimit(RLIMIT_STACK, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) size = lim.rlim_cur;
  if (size < kMinStackSize) size = kMinStackSize;
  if (size > kMaxStackSize) size = kMaxStackSize;
  return size;
}

// What to ask the runtime for so the program gets `usable` bytes: the task's record and its start closure
// take the top of the stack (well under a page).
inline std::size_t task_stack_for(std::size_t usable) noexcept { return usable + 4096; }

}  // namespace skyloft::posix
