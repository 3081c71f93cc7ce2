// mutex.cpp - pthread mutexes: normal, recursive, errorcheck (adaptive is normal), try and timed locks.
//
// The lock is skyloft's Mutex (a contended lock parks the task); ownership is kept only for the types
// whose semantics need it. Robust and process-shared mutexes are refused at init with ENOTSUP (a task's
// death is not a thread's, and the wait queue is per process); priority protocols are accepted and have
// no effect (the policy decides who runs).
#include <errno.h>
#include <pthread.h>

#include <mutex>

#include "posix/mutex_layout.hpp"
#include "posix/thread_record.hpp"
#include "posix/timespec.hpp"

namespace skyloft::posix {
namespace {

// Before taking the lock: what the type says about the caller already holding it. 0 to go on and lock,
// -1 when the recursive owner just deepened its hold, else the error.
int relock_check(MutexState& s) noexcept {
  int type = mutex_type(s);
  if (type != PTHREAD_MUTEX_RECURSIVE && type != PTHREAD_MUTEX_ERRORCHECK) return 0;
  if (s.owner.load(std::memory_order_relaxed) != self_identity()) return 0;
  if (type == PTHREAD_MUTEX_ERRORCHECK) return EDEADLK;
  if (s.depth == UINT32_MAX) return EAGAIN;
  ++s.depth;
  return -1;
}

void took(MutexState& s) noexcept {
  int type = mutex_type(s);
  if (type == PTHREAD_MUTEX_RECURSIVE || type == PTHREAD_MUTEX_ERRORCHECK) {
    s.owner.store(self_identity(), std::memory_order_relaxed);
    s.depth = 1;
  }
}

int lock_until(pthread_mutex_t* m, Deadline deadline) {
  MutexState& s = mutex_state(m);
  if (int rc = relock_check(s); rc != 0) return rc < 0 ? 0 : rc;
  if (deadline == kNoDeadline) {
    s.lock.lock();
  } else if (!s.lock.try_lock() && !s.lock.try_lock_until(deadline)) {
    return ETIMEDOUT;
  }
  took(s);
  return 0;
}

}  // namespace
}  // namespace skyloft::posix

using namespace skyloft;
using namespace skyloft::posix;

extern "C" {

int pthread_mutex_init(pthread_mutex_t* m, const pthread_mutexattr_t* attr) noexcept {
  int type = PTHREAD_MUTEX_DEFAULT;
  if (attr != nullptr) {
    int robust = PTHREAD_MUTEX_STALLED;
    pthread_mutexattr_gettype(attr, &type);
    pthread_mutexattr_getrobust(attr, &robust);
    if (robust == PTHREAD_MUTEX_ROBUST) {
      refuse_once("a robust mutex", "an owner's end is not tracked for tasks");
      return ENOTSUP;
    }
  }
  if (refuse_process_shared(attr, &pthread_mutexattr_getpshared, "a process-shared mutex")) return ENOTSUP;
  ::new (m) MutexState{};
  mutex_state(m).kind = type;
  return 0;
}

int pthread_mutex_destroy(pthread_mutex_t* m) noexcept {
  MutexState& s = mutex_state(m);
  if (!s.lock.try_lock()) return EBUSY;
  s.lock.unlock();
  return 0;
}

int pthread_mutex_lock(pthread_mutex_t* m) noexcept { return lock_until(m, kNoDeadline); }

int pthread_mutex_trylock(pthread_mutex_t* m) noexcept {
  MutexState& s = mutex_state(m);
  if (int rc = relock_check(s); rc != 0) return rc < 0 ? 0 : (rc == EDEADLK ? EBUSY : rc);
  if (!s.lock.try_lock()) return EBUSY;
  took(s);
  return 0;
}

int pthread_mutex_clocklock(pthread_mutex_t* m, clockid_t clock, const timespec* abstime) noexcept {
  if (!wait_clock_valid(clock)) return EINVAL;
  MutexState& s = mutex_state(m);
  // As glibc: an available lock is taken without looking at the timeout.
  if (mutex_type(s) == PTHREAD_MUTEX_NORMAL && s.lock.try_lock()) return 0;
  if (!timespec_valid(abstime)) return EINVAL;
  return lock_until(m, deadline_from_abs(clock, *abstime));
}

int pthread_mutex_timedlock(pthread_mutex_t* m, const timespec* abstime) noexcept {
  return pthread_mutex_clocklock(m, CLOCK_REALTIME, abstime);
}

int pthread_mutex_unlock(pthread_mutex_t* m) noexcept {
  MutexState& s = mutex_state(m);
  int type = mutex_type(s);
  if (type == PTHREAD_MUTEX_RECURSIVE || type == PTHREAD_MUTEX_ERRORCHECK) {
    if (s.owner.load(std::memory_order_relaxed) != self_identity()) return EPERM;
    if (--s.depth != 0) return 0;
    s.owner.store(0, std::memory_order_relaxed);
  }
  s.lock.unlock();
  return 0;
}

int pthread_mutex_consistent(pthread_mutex_t*) noexcept { return EINVAL; }  // no robust mutexes

}  // extern "C"
