// preempt.hpp - cooperative preemption points and preemption-disabled regions.
//
// Under the flag and hybrid mechanisms a worker's quantum expiry raises a per-worker flag; a task honours
// it at preempt_point() (a load and a branch) and whenever it enters the runtime (yield, lock, sleep, ...).
// Under timer and dispatcher the task is interrupted wherever it is, except inside a PreemptGuard region,
// inside the runtime, or inside libc / the dynamic loader (the preemption is then deferred and retried).
#pragma once

#include <cstdint>

namespace skyloft {

namespace detail {
// The calling thread's preemption request word: the worker's flag on worker threads, a word that is always
// zero elsewhere. Read through inline asm so that a task that moved to another worker at a switch reads its
// new worker's word (the compiler may not reuse a thread-local address across a switch).
extern "C" __thread std::uint32_t* skyloft_preempt_word __attribute__((tls_model("initial-exec")));

inline std::uint32_t preempt_requested() noexcept {
  std::uint32_t* word;
  asm volatile("movq skyloft_preempt_word@gottpoff(%%rip), %0\n\tmovq %%fs:(%0), %0" : "=r"(word));
  return __atomic_load_n(word, __ATOMIC_RELAXED);  // a plain load; visible as atomic to ThreadSanitizer
}
void preempt_point_slow() noexcept;
}  // namespace detail

// Gives up the core here if the running task's quantum has expired (and the policy agrees). Costs a load
// and a branch otherwise; outside tasks it does nothing.
inline void preempt_point() noexcept {
  if (__builtin_expect(detail::preempt_requested() != 0, 0)) detail::preempt_point_slow();
}

// Disables preemption of the calling task (counted, nestable) until the matching preempt_enable(); a
// preemption requested meanwhile happens at the outermost preempt_enable(). No-ops outside tasks.
void preempt_disable() noexcept;
void preempt_enable() noexcept;

class PreemptGuard {
 public:
  PreemptGuard() noexcept { preempt_disable(); }
  ~PreemptGuard() { preempt_enable(); }
  PreemptGuard(const PreemptGuard&) = delete;
  PreemptGuard& operator=(const PreemptGuard&) = delete;
};

}  // namespace skyloft
