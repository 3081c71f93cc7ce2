// pollers.hpp (internal) - the user functions the runtime's polling thread calls on every turn of its loop
// (Runtime::add_poller): polling a NIC queue, an in-process load generator releasing its arrivals. The
// polling thread is the one that already polls on a core of its own: a centralized policy's dispatcher,
// or the preemption ticker pinned to Config::dispatcher_core. Without one there is no poller.
//
// Rules:
//   PL1. add() and remove() may be called from any thread except the polling thread; run() only by the
//        polling thread. A slot's fn/arg are written only while the slot is free (fn == nullptr), and fn is
//        published last (release), so run() never sees a half-written slot.
//   PL2. remove() returns only once the polling thread cannot be inside, or about to enter, that poller:
//        Dekker on (slot.fn, in_run_): run() stores in_run_ then loads fn; remove() stores fn = nullptr
//        then loads in_run_ (all seq_cst) and waits while it is set. So after remove() returns the
//        caller may free what arg points to.
//   PL3. While any poller is registered the polling thread does not park: its idle search reports any() as
//        work, also in the re-check after it announced its sleep (park.hpp P2). add() raises count_ before
//        it unparks attach()'s word (W1, W2), so either the re-check sees the poller or the unpark sees the
//        sleeper.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/park.hpp"

namespace skyloft {

using PollFn = void (*)(void* arg, std::uint64_t now_ns);

class PollerSet {
 public:
  static constexpr int kMaxPollers = 8;

  // Start only (before the polling thread runs): who polls, and the word that wakes it.
  void attach(ParkWord* wake) noexcept { wake_ = wake; }
  bool attached() const noexcept { return wake_ != nullptr; }

  // Registers fn(arg, now); returns its id, or -1 when all kMaxPollers slots are taken.
  int add(PollFn fn, void* arg) noexcept;
  // Unregisters `id` (from add) and waits until the polling thread is out of it (PL2). The wait ends:
  // a run() always finishes (pollers do not block), and a thread that exited left in_run_ false.
  void remove(int id) noexcept;

  bool any() const noexcept { return count_.load(std::memory_order_relaxed) != 0; }

  // The polling thread: calls every registered poller once.
  void run(std::uint64_t now) noexcept {
    if (!any()) return;
    run_slow(now);
  }

 private:
  void run_slow(std::uint64_t now) noexcept;

  struct Slot {
    std::atomic<PollFn> fn{nullptr};  // written by add (publish) and remove (clear); read by run
    void* arg = nullptr;              // written by add before fn is published
  };
  Slot slots_[kMaxPollers];
  std::atomic<int> count_{0};          // registered pollers; written by add/remove
  std::atomic<bool> in_run_{false};    // written by the polling thread around its calls (PL2)
  std::atomic<bool> claiming_{false};  // add's slot search: one adder at a time
  ParkWord* wake_ = nullptr;           // set at start
};

}  // namespace skyloft
