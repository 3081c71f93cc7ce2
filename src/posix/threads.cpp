// threads.cpp - pthread create/join/detach/exit/self/equal, attributes read at creation, names.
//
// A program thread is a task spawned with the attribute's stack size (glibc's default when it names
// none); its record (thread_record.hpp) is its pthread_t. Attribute objects stay glibc's (pthread_attr_*
// only read and write the attribute itself), so this file reads them with glibc's getters.
// Not supported, with a clear error: a caller-provided stack (pthread_attr_setstack), cancellation.
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <exception>
#include <new>
#include <system_error>

#include "posix/real.hpp"
#include "posix/stack_size.hpp"
#include "posix/thread_record.hpp"
#include "posix/timespec.hpp"
#include "skyloft/blocking.hpp"
#include "skyloft/config.hpp"
#include "skyloft/task.hpp"
#include "skyloft/wait.hpp"

namespace skyloft::posix {

void finish_thread(ThreadRecord* r) {
  run_key_destructors(r);
  r->done.exchange(1, std::memory_order_seq_cst);
  wake_address_all(r->done);  // the address is only a key: the record may be gone by now
  record_release(r);
}

namespace {

void thread_task(ThreadRecord* r) {
  this_task::set_local(r);
  this_task::stack_bounds(&r->stack_lo, &r->stack_size);
  struct Finish {
    ThreadRecord* r;
    ~Finish() { finish_thread(r); }  // also while pthread_exit unwinds the task
  } finish{r};
  r->retval = r->start(r->arg);
}

// Waits for `r` to finish until `deadline`; on success takes its result and drops the join right.
int join_until(pthread_t thread, void** retval, Deadline deadline, bool try_only) {
  ThreadRecord* r = record_of(thread);
  if (r == nullptr) {
    // One of glibc's threads (none is created by the program under this layer): glibc's join.
    if (try_only || deadline != kNoDeadline) return EINVAL;
    BlockingSection blocking;
    return SKY_REAL(pthread_join, "GLIBC_2.34")(thread, retval);
  }
  if (r == this_task::local()) return EDEADLK;
  if (try_only && r->done.load(std::memory_order_acquire) == 0) return EBUSY;
  std::uint32_t expected = kJoinable;
  if (!r->join_right.compare_exchange_strong(expected, kJoining, std::memory_order_acq_rel)) return EINVAL;
  while (r->done.load(std::memory_order_acquire) == 0) {
    if (wait_address(r->done, 0, deadline, WaitReason::join) == WaitResult::timed_out &&
        r->done.load(std::memory_order_acquire) == 0) {
      r->join_right.store(kJoinable, std::memory_order_release);
      return ETIMEDOUT;
    }
  }
  if (retval != nullptr) *retval = r->retval;
  record_release(r);
  return 0;
}

}  // namespace
}  // namespace skyloft::posix

using namespace skyloft;
using namespace skyloft::posix;

extern "C" {

int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
  SpawnOptions opts;
  opts.stack_size = task_stack_for(default_stack_size());
  int detach = PTHREAD_CREATE_JOINABLE;
  if (attr != nullptr) {
    void* addr = nullptr;
    std::size_t size = 0;
    // pthread_attr_getstack reports an address even for an attribute without one; the old getter does not.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    if (pthread_attr_getstackaddr(attr, &addr) == 0 && addr != nullptr) {
#pragma GCC diagnostic pop
      refuse_once("pthread_attr_setstack", "tasks run on stacks of the runtime; give a size with "
                                           "pthread_attr_setstacksize instead");
      return ENOTSUP;
    }
    if (pthread_attr_getstacksize(attr, &size) == 0 && size != 0) opts.stack_size = task_stack_for(size);
    pthread_attr_getdetachstate(attr, &detach);
  }
  ensure_runtime();
  auto* r = new (std::nothrow) ThreadRecord;
  if (r == nullptr) return EAGAIN;
  r->start = start;
  r->arg = arg;
  std::memcpy(r->name, current_record()->name, sizeof r->name);  // natively a thread starts with its
                                                                 // creator's name
  if (detach == PTHREAD_CREATE_DETACHED) {
    r->join_right.store(kDetached, std::memory_order_relaxed);
    r->refs.store(1, std::memory_order_relaxed);
  }
  try {
    spawn([r] { thread_task(r); }, opts).detach();
  } catch (const ConfigError&) {
    delete r;
    return EINVAL;  // a stack size the runtime cannot give (over 1 GiB)
  } catch (const std::exception&) {
    delete r;
    return EAGAIN;
  }
  *thread = reinterpret_cast<pthread_t>(r);
  return 0;
}

int pthread_join(pthread_t thread, void** retval) { return join_until(thread, retval, kNoDeadline, false); }

int pthread_tryjoin_np(pthread_t thread, void** retval) { return join_until(thread, retval, kNoDeadline, true); }

int pthread_clockjoin_np(pthread_t thread, void** retval, clockid_t clock, const timespec* abstime) {
  if (!wait_clock_valid(clock) || !timespec_valid(abstime)) return EINVAL;
  return join_until(thread, retval, deadline_from_abs(clock, *abstime), false);
}

int pthread_timedjoin_np(pthread_t thread, void** retval, const timespec* abstime) {
  return pthread_clockjoin_np(thread, retval, CLOCK_REALTIME, abstime);
}

int pthread_detach(pthread_t thread) {
  ThreadRecord* r = record_of(thread);
  if (r == nullptr) return SKY_REAL(pthread_detach, "GLIBC_2.34")(thread);
  std::uint32_t expected = kJoinable;
  if (!r->join_right.compare_exchange_strong(expected, kDetached, std::memory_order_acq_rel)) return EINVAL;
  record_release(r);
  return 0;
}

void pthread_exit(void* retval) {
  if (!this_task::in_task()) SKY_REAL(pthread_exit, "GLIBC_2.34")(retval);
  current_record()->retval = retval;
  // Unwinds the task's stack (C++ destructors run, as with glibc's forced unwind); the thread's entry
  // frame finishes it (finish_thread).
  this_task::exit();
}

pthread_t pthread_self() noexcept {
  if (void* mine = this_task::local()) return reinterpret_cast<pthread_t>(mine);
  if (this_task::in_task()) return reinterpret_cast<pthread_t>(current_record());
  return SKY_REAL(pthread_self, "GLIBC_2.2.5")();
}

int pthread_equal(pthread_t a, pthread_t b) noexcept { return a == b; }

// pthread.h redirects pthread_yield to sched_yield; programs built before glibc 2.34 still call it by name.
int skyloft_pthread_yield() noexcept __asm__("pthread_yield");
int skyloft_pthread_yield() noexcept { return sched_yield(); }

int pthread_getattr_np(pthread_t thread, pthread_attr_t* attr) noexcept {
  ThreadRecord* r = record_of(thread);
  if (r == nullptr) return SKY_REAL(pthread_getattr_np, "GLIBC_2.32")(thread, attr);
  if (int rc = pthread_attr_init(attr); rc != 0) return rc;
  pthread_attr_setstack(attr, r->stack_lo, r->stack_size);
  pthread_attr_setguardsize(attr, static_cast<std::size_t>(sysconf(_SC_PAGESIZE)));
  if (r->join_right.load(std::memory_order_acquire) == kDetached) {
    pthread_attr_setdetachstate(attr, PTHREAD_CREATE_DETACHED);
  }
  return 0;
}

int pthread_setname_np(pthread_t thread, const char* name) noexcept {
  ThreadRecord* r = record_of(thread);
  if (r == nullptr) return SKY_REAL(pthread_setname_np, "GLIBC_2.34")(thread, name);
  std::size_t len = std::strlen(name);
  if (len >= sizeof r->name) return ERANGE;
  std::memcpy(r->name, name, len + 1);
  return 0;
}

int pthread_getname_np(pthread_t thread, char* buf, std::size_t len) noexcept {
  ThreadRecord* r = record_of(thread);
  if (r == nullptr) return SKY_REAL(pthread_getname_np, "GLIBC_2.34")(thread, buf, len);
  std::size_t n = strnlen(r->name, sizeof r->name - 1);
  if (len <= n) return ERANGE;
  std::memcpy(buf, r->name, n);
  buf[n] = '\0';
  return 0;
}

// Calls that would hand a record to glibc as if it were its struct pthread.

int pthread_cancel(pthread_t thread) {
  if (record_of(thread) == nullptr) return SKY_REAL(pthread_cancel, "GLIBC_2.34")(thread);
  refuse_once("pthread_cancel", "cancellation of tasks is not implemented");
  return ENOTSUP;
}

int pthread_kill(pthread_t thread, int sig) noexcept {
  ThreadRecord* r = record_of(thread);
  if (r == nullptr) return SKY_REAL(pthread_kill, "GLIBC_2.34")(thread, sig);
  if (sig == 0) return r->done.load(std::memory_order_acquire) ? ESRCH : 0;
  // A task has no kernel thread of its own: its own signal goes to the kernel thread running it, another
  // task's to the process.
  if (r == this_task::local()) return SKY_REAL(pthread_kill, "GLIBC_2.34")(SKY_REAL(pthread_self, "GLIBC_2.2.5")(), sig);
  return kill(getpid(), sig) == 0 ? 0 : errno;
}

int pthread_setaffinity_np(pthread_t thread, std::size_t size, const cpu_set_t* set) noexcept {
  if (record_of(thread) == nullptr) return SKY_REAL(pthread_setaffinity_np, "GLIBC_2.34")(thread, size, set);
  (void)set;
  return 0;  // tasks go where the policy puts them (documented)
}

int pthread_getaffinity_np(pthread_t thread, std::size_t size, cpu_set_t* set) noexcept {
  if (record_of(thread) == nullptr) return SKY_REAL(pthread_getaffinity_np, "GLIBC_2.34")(thread, size, set);
  return sched_getaffinity(0, size, set) == 0 ? 0 : errno;
}

int pthread_getschedparam(pthread_t thread, int* policy, sched_param* param) noexcept {
  if (record_of(thread) == nullptr) return SKY_REAL(pthread_getschedparam, "GLIBC_2.2.5")(thread, policy, param);
  *policy = SCHED_OTHER;
  param->sched_priority = 0;
  return 0;
}

int pthread_setschedparam(pthread_t thread, int policy, const sched_param* param) noexcept {
  if (record_of(thread) == nullptr) return SKY_REAL(pthread_setschedparam, "GLIBC_2.2.5")(thread, policy, param);
  refuse_once("pthread_setschedparam", "tasks are scheduled by the runtime's policy");
  return ENOTSUP;
}

}  // extern "C"
