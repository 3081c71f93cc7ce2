// spin.cpp - pthread spinlocks that yield the core to other tasks after a short spin.
//
// glibc's spinlock spins forever; under a user-level scheduler the holder may be a task waiting for the
// very core the spinner holds (preempted, or queued behind it with no preemption), so a spinner gives the
// core up after kSpins pauses and tries again when the policy runs it next.
#include <errno.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>

#include "core/spinlock.hpp"

namespace {
constexpr int kSpins = 128;
static_assert(sizeof(std::atomic<int>) == sizeof(pthread_spinlock_t), "the spinlock is one int");
std::atomic<int>& word_of(pthread_spinlock_t* l) noexcept {
  return *reinterpret_cast<std::atomic<int>*>(const_cast<int*>(l));  // the word is only touched atomically
}
}  // namespace

extern "C" {

int pthread_spin_init(pthread_spinlock_t* l, int) noexcept {
  word_of(l).store(0, std::memory_order_relaxed);
  return 0;
}

int pthread_spin_destroy(pthread_spinlock_t*) noexcept { return 0; }

int pthread_spin_trylock(pthread_spinlock_t* l) noexcept {
  return word_of(l).exchange(1, std::memory_order_acquire) == 0 ? 0 : EBUSY;
}

int pthread_spin_lock(pthread_spinlock_t* l) noexcept {
  std::atomic<int>& w = word_of(l);
  for (;;) {
    if (w.exchange(1, std::memory_order_acquire) == 0) return 0;
    for (int i = 0; i < kSpins && w.load(std::memory_order_relaxed) != 0; ++i) skyloft::cpu_relax();
    if (w.load(std::memory_order_relaxed) != 0) sched_yield();  // ours: yields the task inside the runtime
  }
}

int pthread_spin_unlock(pthread_spinlock_t* l) noexcept {
  word_of(l).store(0, std::memory_order_release);
  return 0;
}

}  // extern "C"
