// park.hpp - parking a kernel thread (an idle worker, the dispatcher, or a plain thread that waits on a
// skyloft primitive) on a futex word, and waking it.
//
// The protocol between a parker P and a waker W (Dekker-style; both sides need a full fence):
//   P1. P stores kParked to its word (seq_cst).
//   P2. P re-checks for work; if there is some, it stores kRunning and does not sleep.
//   P3. P sleeps in FUTEX_WAIT while the word is still kParked.
//   W1. W publishes work (enqueue), then issues a seq_cst fence.
//   W2. W reads the word; if kParked, it exchanges in kNotified and, if it won, calls FUTEX_WAKE.
// Either P2 sees W1's work, or W2 sees P1's kParked: the wake-up cannot be lost. A stale kNotified only
// makes the next FUTEX_WAIT return at once.
#pragma once

#include <atomic>
#include <cstdint>

namespace skyloft {

class ParkWord {
 public:
  static constexpr std::uint32_t kRunning = 0, kParked = 1, kNotified = 2;

  // P1: announce the intent to sleep (followed by a seq_cst fence).
  void prepare() noexcept;
  // P3: sleep until unpark() or the absolute now_ns() deadline (UINT64_MAX: none); then kRunning again.
  void wait(std::uint64_t deadline_ns) noexcept;
  // P2 outcome: work was found after prepare(); back to running without sleeping.
  void cancel() noexcept { word_.store(kRunning, std::memory_order_relaxed); }
  // W2: wakes the parker if it is parked; returns true if this call woke it.
  bool unpark() noexcept;
  bool parked() const noexcept { return word_.load(std::memory_order_relaxed) == kParked; }

 private:
  std::atomic<std::uint32_t> word_{kRunning};
};

// Raw futex helpers (private futexes).
void futex_wait_word(const std::atomic<std::uint32_t>& word, std::uint32_t expected, std::uint64_t deadline_ns) noexcept;
void futex_wake_word(const std::atomic<std::uint32_t>& word, int count) noexcept;

}  // namespace skyloft
