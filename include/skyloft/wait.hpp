// wait.hpp - an address-keyed wait queue (futex-like) that parks tasks, not workers.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "skyloft/time.hpp"

namespace skyloft {

// Why a task is blocked; shown in shutdown reports and dumps. Values are never reused.
enum class WaitReason : std::uint8_t {
  none = 0,
  mutex = 1,
  condvar = 2,
  rwlock = 3,
  semaphore = 4,
  barrier = 5,
  waitgroup = 6,
  join = 7,
  sleep = 8,
  address = 9,  // a direct wait_address() call
  io = 10,      // an I/O operation (io.hpp)
};
const char* to_string(WaitReason r) noexcept;

enum class WaitResult { woken, value_changed, timed_out };

// Blocks the caller while *word == expected, until woken by wake_address(word, ...) or until the deadline.
// Like futex(2): the compare and the enqueue are atomic with respect to wake_address, and wake-ups may be
// spurious, so callers re-check their condition. In a task it parks the task; in a plain kernel thread it
// blocks the thread. Returns value_changed without blocking when *word != expected.
WaitResult wait_address(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                        Deadline deadline = kNoDeadline, WaitReason reason = WaitReason::address);

// Wakes up to `count` waiters on `word` (oldest first); returns how many were woken. The caller must have
// changed *word with a seq_cst operation first (that orders the change before the check for waiters, so a
// waiter that is about to sleep sees the new value). Safe to call after the object holding `word` may have
// been freed by a woken waiter: the address is only used as a key.
std::size_t wake_address(const std::atomic<std::uint32_t>& word, std::size_t count = 1) noexcept;
inline std::size_t wake_address_all(const std::atomic<std::uint32_t>& word) noexcept {
  return wake_address(word, SIZE_MAX);
}

}  // namespace skyloft
