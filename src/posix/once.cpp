// once.cpp - pthread_once: the first caller runs the routine; the others park until it is done.
//
// The word (the program's pthread_once_t, PTHREAD_ONCE_INIT = 0): kNotRun -> kRunning (the runner's CAS)
// -> kDone, or back to kNotRun when the routine leaves by an exception (std::call_once's contract) or by
// pthread_exit; every change is a seq_cst exchange followed by a wake of all waiters (wait.hpp's rule).
#include <pthread.h>

#include <atomic>
#include <cstdint>

#include "skyloft/wait.hpp"

namespace {
constexpr std::uint32_t kNotRun = 0, kRunning = 1, kDone = 2;
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(pthread_once_t), "pthread_once_t is one word");
std::atomic<std::uint32_t>& word_of(pthread_once_t* o) noexcept {
  return *reinterpret_cast<std::atomic<std::uint32_t>*>(o);
}
}  // namespace

extern "C" int pthread_once(pthread_once_t* once, void (*routine)()) {
  std::atomic<std::uint32_t>& w = word_of(once);
  for (;;) {
    std::uint32_t state = w.load(std::memory_order_acquire);
    if (state == kDone) return 0;
    if (state == kRunning) {
      skyloft::wait_address(w, kRunning);
      continue;
    }
    std::uint32_t expected = kNotRun;
    if (!w.compare_exchange_strong(expected, kRunning, std::memory_order_acquire)) continue;
    struct Reset {
      std::atomic<std::uint32_t>& w;
      std::uint32_t final_state = kNotRun;  // stays kNotRun unless the routine returns
      ~Reset() {
        w.exchange(final_state, std::memory_order_seq_cst);
        skyloft::wake_address_all(w);
      }
    } reset{w};
    routine();
    reset.final_state = kDone;
    return 0;
  }
}
