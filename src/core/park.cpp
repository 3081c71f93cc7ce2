// park.cpp - the private-futex park backend and ParkWord; the protocols are in park.hpp.
#include "core/park.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace skyloft {

void futex_wait_word(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                     std::uint64_t deadline_ns) noexcept {
  timespec ts;
  timespec* timeout = nullptr;
  if (deadline_ns != UINT64_MAX) {
    std::uint64_t now = now_ns();
    std::uint64_t rel = deadline_ns > now ? deadline_ns - now : 0;
    if (rel == 0) return;
    ts.tv_sec = static_cast<time_t>(rel / 1'000'000'000ull);
    ts.tv_nsec = static_cast<long>(rel % 1'000'000'000ull);
    timeout = &ts;
  }
  syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, timeout,
          nullptr, 0);
}

void futex_wake_word(const std::atomic<std::uint32_t>& word, int count) noexcept {
  syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, count, nullptr,
          nullptr, 0);
}

void PrivateFutexBackend::wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                               std::uint64_t deadline_ns) noexcept {
  futex_wait_word(word, expected, deadline_ns);
}

void PrivateFutexBackend::wake(const std::atomic<std::uint32_t>& word) noexcept { futex_wake_word(word, 1); }

PrivateFutexBackend& PrivateFutexBackend::instance() noexcept {
  static PrivateFutexBackend backend;  // stateless; constant-initialised
  return backend;
}

void ParkWord::prepare() noexcept {
  word_.store(kParked, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

bool ParkWord::wait(std::uint64_t deadline_ns) noexcept {
  if (word_.load(std::memory_order_acquire) == kParked) {
    backend_.load(std::memory_order_acquire)->wait(word_, kParked, deadline_ns);
  }
  return word_.exchange(kRunning, std::memory_order_acquire) == kNotified;
}

bool ParkWord::wait_parked(std::uint64_t deadline_ns) noexcept {
  if (word_.load(std::memory_order_acquire) == kParked) {
    backend_.load(std::memory_order_acquire)->wait(word_, kParked, deadline_ns);
  }
  return take_notification();
}

bool ParkWord::take_notification() noexcept {
  std::uint32_t expected = kNotified;
  return word_.compare_exchange_strong(expected, kParked, std::memory_order_acq_rel, std::memory_order_acquire);
}

bool ParkWord::unpark() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (word_.load(std::memory_order_relaxed) != kParked) return false;
  if (word_.exchange(kNotified, std::memory_order_acq_rel) != kParked) return false;
  backend_.load(std::memory_order_acquire)->wake(word_);
  return true;
}

}  // namespace skyloft
