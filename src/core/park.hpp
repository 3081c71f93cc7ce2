// park.hpp - parking a kernel thread, and the one idle protocol every runtime thread follows.
//
// ParkWord is one thread's parking word. How the thread actually sleeps is a ParkBackend: a private futex
// (PrivateFutexBackend), a ring wait (a thread with I/O in flight sleeps in io_uring so a completion wakes
// it, src/io/) or, under a daemon, the shared futex word of its (core, app) in the daemon's region, which
// the other applications' workers post to when they hand the core over or ask for it (AppCore's backend,
// app_core.cpp).
//
// The parking protocol between a parker P and a waker W (Dekker-style; both sides need a full fence):
//   P1. P stores kParked to its word (seq_cst).
//   P2. P re-checks for work; if there is some, it stores kRunning and does not sleep.
//   P3. P sleeps in the backend while the word is still kParked.
//   W1. W publishes work (enqueue), then issues a seq_cst fence.
//   W2. W reads the word; if kParked, it exchanges in kNotified and, if it won, wakes the backend.
// Either P2 sees W1's work, or W2 sees P1's kParked: the wake-up cannot be lost. A stale kNotified only
// makes the next sleep return at once.
//
// The idle protocol (spin_then_park), used by the processor loop, the dispatcher, the preemption ticker and
// spare threads, so that it is written once:
//   I1. Spin: call find() until it finds work, stop() is true, or spin_more() says enough.
//   I2. Park: P1, then find()/stop() again (P2), then sleep until a wake-up or deadline() (P3).
//   I3. After waking, back to I1 with a fresh spin budget.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/spinlock.hpp"
#include "skyloft/time.hpp"

namespace skyloft {

class ParkBackend {
 public:
  virtual ~ParkBackend() = default;
  // Sleeps while `word` holds `expected`, until wake() or the absolute now_ns() deadline (UINT64_MAX: none).
  // May return spuriously.
  virtual void wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, std::uint64_t deadline_ns) noexcept = 0;
  // Wakes a thread sleeping in wait() on `word`.
  virtual void wake(const std::atomic<std::uint32_t>& word) noexcept = 0;
};

// FUTEX_WAIT_PRIVATE / FUTEX_WAKE_PRIVATE: threads of one process.
class PrivateFutexBackend final : public ParkBackend {
 public:
  void wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, std::uint64_t deadline_ns) noexcept override;
  void wake(const std::atomic<std::uint32_t>& word) noexcept override;
  static PrivateFutexBackend& instance() noexcept;
};

class ParkWord {
 public:
  static constexpr std::uint32_t kRunning = 0, kParked = 1, kNotified = 2;

  // P1: announce the intent to sleep (followed by a seq_cst fence).
  void prepare() noexcept;
  // P3: sleep until unpark() or the absolute now_ns() deadline (UINT64_MAX: none); then kRunning again.
  // Returns true if an unpark() ended the sleep (or came before it), false for a timeout or a backend
  // wake-up of its own (a shared word's other wakers).
  bool wait(std::uint64_t deadline_ns) noexcept;
  // P3 for a thread that stays parked across several sleeps (a processor waiting for its core to come
  // back, app_core.cpp): a sleep that ends without an unpark() leaves the word kParked, so no unpark can
  // fall between two sleeps; one that was unparked returns true and is kParked again. cancel() ends it.
  bool wait_parked(std::uint64_t deadline_ns) noexcept;
  // For the same thread between sleeps: true (and kParked again) if an unpark() came since prepare().
  bool take_notification() noexcept;
  // P2 outcome: work was found after prepare(); back to running without sleeping.
  void cancel() noexcept { word_.store(kRunning, std::memory_order_relaxed); }
  // W2: wakes the parker if it is parked; returns true if this call woke it.
  bool unpark() noexcept;
  bool parked() const noexcept { return word_.load(std::memory_order_relaxed) == kParked; }
  // Chooses how this word's owner sleeps (before it parks for the first time, or by its owner).
  void set_backend(ParkBackend* b) noexcept { backend_.store(b, std::memory_order_release); }

 private:
  std::atomic<std::uint32_t> word_{kRunning};          // P writes kParked/kRunning; W exchanges kNotified
  std::atomic<ParkBackend*> backend_{&PrivateFutexBackend::instance()};
};

// The client side of the idle protocol. Each hook runs on the idle thread.
//   bool find()              look for work (I1, P2); true: found, the protocol returns true
//   bool stop()              the thread must leave (shutdown); the protocol returns false
//   bool spin_more(uint64_t) whether to keep spinning after that many ns of this spin phase
//   uint64_t deadline()      the latest wake-up while parked (UINT64_MAX: none)
//   void spinning(bool)      I1 begins (true) / ends (false): e.g. count searching threads
//   void park_begin()        before P1: e.g. count parked threads (wakers read the count after W1)
//   void sleeping(uint64_t)  P3 is about to sleep until the deadline
//   void park_end()          after P3, or after P2 found work
//   void relax()             (optional) between two looks of I1; without it, a short run of PAUSEs
// Defaults for clients that park at once with no deadline and keep no counts (spares, the ticker).
struct ParkAtOnce {
  bool spin_more(std::uint64_t) const { return false; }
  std::uint64_t deadline() const { return UINT64_MAX; }
  void spinning(bool) {}
  void park_begin() {}
  void sleeping(std::uint64_t) {}
  void park_end() {}
};

template <class Client>
bool spin_then_park(ParkWord& word, Client& c) {
  for (;;) {
    c.spinning(true);
    const std::uint64_t spin_start = now_ns();
    for (;;) {  // I1
      if (c.find()) {
        c.spinning(false);
        return true;
      }
      if (c.stop()) {
        c.spinning(false);
        return false;
      }
      if (!c.spin_more(now_ns() - spin_start)) break;
      if constexpr (requires { c.relax(); }) {
        c.relax();
      } else {
        for (int i = 0; i < 16; ++i) cpu_relax();
      }
    }
    c.spinning(false);
    c.park_begin();
    word.prepare();  // I2 = P1
    const bool found = c.find();  // P2
    if (found || c.stop()) {
      word.cancel();
      c.park_end();
      return found;
    }
    const std::uint64_t deadline = c.deadline();
    c.sleeping(deadline);
    word.wait(deadline);  // P3
    c.park_end();
  }
}

// Raw futex helpers (private futexes) for words that are not ParkWords.
void futex_wait_word(const std::atomic<std::uint32_t>& word, std::uint32_t expected, std::uint64_t deadline_ns) noexcept;
void futex_wake_word(const std::atomic<std::uint32_t>& word, int count) noexcept;

}  // namespace skyloft
