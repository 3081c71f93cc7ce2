// cond.cpp - pthread condition variables: wait, timed waits on CLOCK_REALTIME or CLOCK_MONOTONIC, signal,
// broadcast.
//
// State inside the program's pthread_cond_t (48 bytes): skyloft's CondVar (a sequence word; zero bytes are
// its initial state, as PTHREAD_COND_INITIALIZER) and the clock chosen with pthread_condattr_setclock.
// Waiting releases the mutex the way its type needs (a recursive or errorcheck mutex gives up its
// ownership record too) and parks the task. Process-shared condition variables are refused with ENOTSUP.
#include <errno.h>
#include <pthread.h>

#include <condition_variable>
#include <cstddef>
#include <mutex>

#include "posix/mutex_layout.hpp"
#include "posix/thread_record.hpp"
#include "posix/timespec.hpp"

namespace skyloft::posix {
namespace {

struct CondState {
  CondVar cv;
  clockid_t clock;  // CLOCK_REALTIME (0, the static initializer's) or CLOCK_MONOTONIC
};
static_assert(sizeof(CondState) <= sizeof(pthread_cond_t), "our condvar state must fit in pthread_cond_t");

CondState& cond_state(pthread_cond_t* c) noexcept { return *reinterpret_cast<CondState*>(c); }

int wait_until(pthread_cond_t* c, pthread_mutex_t* m, Deadline deadline) {
  MutexState& s = mutex_state(m);
  int type = mutex_type(s);
  bool tracked = type == PTHREAD_MUTEX_RECURSIVE || type == PTHREAD_MUTEX_ERRORCHECK;
  std::uintptr_t self = 0;
  std::uint32_t depth = 0;
  if (tracked) {
    self = self_identity();
    if (s.owner.load(std::memory_order_relaxed) != self) return EPERM;
    depth = s.depth;
    s.depth = 0;
    s.owner.store(0, std::memory_order_relaxed);
  }
  std::unique_lock<Mutex> held(s.lock, std::adopt_lock);
  std::cv_status status = cond_state(c).cv.wait_until(held, deadline);
  held.release();
  if (tracked) {
    s.owner.store(self, std::memory_order_relaxed);
    s.depth = depth;
  }
  return status == std::cv_status::timeout ? ETIMEDOUT : 0;
}

}  // namespace
}  // namespace skyloft::posix

using namespace skyloft;
using namespace skyloft::posix;

extern "C" {

int pthread_cond_init(pthread_cond_t* c, const pthread_condattr_t* attr) noexcept {
  clockid_t clock = CLOCK_REALTIME;
  if (refuse_process_shared(attr, &pthread_condattr_getpshared, "a process-shared condition variable")) return ENOTSUP;
  if (attr != nullptr) pthread_condattr_getclock(attr, &clock);
  ::new (c) CondState{};
  cond_state(c).clock = clock;
  return 0;
}

int pthread_cond_destroy(pthread_cond_t*) noexcept { return 0; }

int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) { return wait_until(c, m, kNoDeadline); }

int pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock, const timespec* abstime) {
  if (!wait_clock_valid(clock) || !timespec_valid(abstime)) return EINVAL;
  return wait_until(c, m, deadline_from_abs(clock, *abstime));
}

int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m, const timespec* abstime) {
  return pthread_cond_clockwait(c, m, cond_state(c).clock, abstime);
}

int pthread_cond_signal(pthread_cond_t* c) noexcept {
  cond_state(c).cv.notify_one();
  return 0;
}

int pthread_cond_broadcast(pthread_cond_t* c) noexcept {
  cond_state(c).cv.notify_all();
  return 0;
}

}  // extern "C"
