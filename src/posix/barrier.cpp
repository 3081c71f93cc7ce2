// barrier.cpp - pthread barriers on skyloft's Barrier, placed inside the program's pthread_barrier_t.
#include <errno.h>
#include <pthread.h>

#include <new>

#include "posix/thread_record.hpp"
#include "skyloft/sync.hpp"

namespace {
static_assert(sizeof(skyloft::Barrier) <= sizeof(pthread_barrier_t), "Barrier must fit in pthread_barrier_t");
skyloft::Barrier& barrier_of(pthread_barrier_t* b) noexcept { return *reinterpret_cast<skyloft::Barrier*>(b); }
}  // namespace

extern "C" {

int pthread_barrier_init(pthread_barrier_t* b, const pthread_barrierattr_t* attr, unsigned count) noexcept {
  if (count == 0) return EINVAL;
  if (skyloft::posix::refuse_process_shared(attr, &pthread_barrierattr_getpshared, "a process-shared barrier")) {
    return ENOTSUP;
  }
  ::new (b) skyloft::Barrier(count);
  return 0;
}

int pthread_barrier_destroy(pthread_barrier_t* b) noexcept {
  barrier_of(b).~Barrier();
  return 0;
}

int pthread_barrier_wait(pthread_barrier_t* b) noexcept {
  return barrier_of(b).arrive_and_wait() ? PTHREAD_BARRIER_SERIAL_THREAD : 0;
}

}  // extern "C"
