// rwlock.cpp - pthread reader-writer locks, with try, timed and clock variants.
//
// State inside the program's pthread_rwlock_t (56 bytes): skyloft's RWLock (zero bytes are its unlocked
// state, as PTHREAD_RWLOCK_INITIALIZER) and the identity of the write holder, so pthread_rwlock_unlock knows
// which hold it releases (a reader never sees its own identity there) and a writer relocking gets EDEADLK.
// The lock prefers writers (glibc's default prefers readers): a thread that takes a read lock it already
// holds while a writer waits blocks (documented). Process-shared rwlocks are refused with ENOTSUP.
#include <errno.h>
#include <pthread.h>

#include <atomic>
#include <cstdint>

#include "posix/thread_record.hpp"
#include "posix/timespec.hpp"
#include "skyloft/sync.hpp"

namespace skyloft::posix {
namespace {

struct RWLockState {
  RWLock lock;
  std::atomic<std::uintptr_t> writer;  // written by the write holder only (set after taking, 0 before release)
};
static_assert(sizeof(RWLockState) <= sizeof(pthread_rwlock_t), "our rwlock state must fit in pthread_rwlock_t");

RWLockState& rw_state(pthread_rwlock_t* l) noexcept { return *reinterpret_cast<RWLockState*>(l); }

int write_until(pthread_rwlock_t* l, Deadline deadline, bool try_only) {
  RWLockState& s = rw_state(l);
  std::uintptr_t self = self_identity();
  if (s.writer.load(std::memory_order_relaxed) == self) return EDEADLK;
  bool ok = try_only ? s.lock.try_lock() : s.lock.try_lock_until(deadline);
  if (!ok) return try_only ? EBUSY : ETIMEDOUT;
  s.writer.store(self, std::memory_order_relaxed);
  return 0;
}

int read_until(pthread_rwlock_t* l, Deadline deadline, bool try_only) {
  RWLockState& s = rw_state(l);
  if (s.writer.load(std::memory_order_relaxed) == self_identity()) return EDEADLK;
  bool ok = try_only ? s.lock.try_lock_shared() : s.lock.try_lock_shared_until(deadline);
  return ok ? 0 : (try_only ? EBUSY : ETIMEDOUT);
}

}  // namespace
}  // namespace skyloft::posix

using namespace skyloft;
using namespace skyloft::posix;

extern "C" {

int pthread_rwlock_init(pthread_rwlock_t* l, const pthread_rwlockattr_t* attr) noexcept {
  if (refuse_process_shared(attr, &pthread_rwlockattr_getpshared, "a process-shared rwlock")) return ENOTSUP;
  ::new (l) RWLockState{};
  return 0;
}

int pthread_rwlock_destroy(pthread_rwlock_t*) noexcept { return 0; }

int pthread_rwlock_rdlock(pthread_rwlock_t* l) noexcept { return read_until(l, kNoDeadline, false); }
int pthread_rwlock_tryrdlock(pthread_rwlock_t* l) noexcept { return read_until(l, kNoDeadline, true); }
int pthread_rwlock_clockrdlock(pthread_rwlock_t* l, clockid_t clock, const timespec* abstime) noexcept {
  if (!wait_clock_valid(clock) || !timespec_valid(abstime)) return EINVAL;
  return read_until(l, deadline_from_abs(clock, *abstime), false);
}
int pthread_rwlock_timedrdlock(pthread_rwlock_t* l, const timespec* abstime) noexcept {
  return pthread_rwlock_clockrdlock(l, CLOCK_REALTIME, abstime);
}

int pthread_rwlock_wrlock(pthread_rwlock_t* l) noexcept { return write_until(l, kNoDeadline, false); }
int pthread_rwlock_trywrlock(pthread_rwlock_t* l) noexcept { return write_until(l, kNoDeadline, true); }
int pthread_rwlock_clockwrlock(pthread_rwlock_t* l, clockid_t clock, const timespec* abstime) noexcept {
  if (!wait_clock_valid(clock) || !timespec_valid(abstime)) return EINVAL;
  return write_until(l, deadline_from_abs(clock, *abstime), false);
}
int pthread_rwlock_timedwrlock(pthread_rwlock_t* l, const timespec* abstime) noexcept {
  return pthread_rwlock_clockwrlock(l, CLOCK_REALTIME, abstime);
}

int pthread_rwlock_unlock(pthread_rwlock_t* l) noexcept {
  RWLockState& s = rw_state(l);
  if (s.writer.load(std::memory_order_relaxed) == self_identity()) {
    s.writer.store(0, std::memory_order_relaxed);
    s.lock.unlock();
  } else {
    s.lock.unlock_shared();
  }
  return 0;
}

}  // extern "C"
