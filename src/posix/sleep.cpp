// sleep.cpp - sleep, usleep, nanosleep, clock_nanosleep and sched_yield that park or yield the task.
//
// In a task these never reach the kernel: a sleep is a runtime timer (the core runs other tasks), and no
// signal interrupts it, so `rem` is always zero. Plain kernel threads (the runtime's own included) get
// glibc's. Clocks other than CLOCK_REALTIME/MONOTONIC/BOOTTIME (the CPU-time clocks) go to the kernel
// inside a BlockingSection.
#include <errno.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <chrono>

#include "core/scheduler.hpp"  // set_task_errno
#include "posix/real.hpp"
#include "posix/timespec.hpp"
#include "skyloft/blocking.hpp"
#include "skyloft/task.hpp"

using namespace skyloft;
using namespace skyloft::posix;

extern "C" {

int clock_nanosleep(clockid_t clock, int flags, const timespec* req, timespec* rem) {
  if (!this_task::in_task()) return SKY_REAL(clock_nanosleep, "GLIBC_2.17")(clock, flags, req, rem);
  if (!timespec_valid(req) || req->tv_sec < 0) return EINVAL;
  if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC && clock != CLOCK_BOOTTIME) {
    BlockingSection blocking;
    return SKY_REAL(clock_nanosleep, "GLIBC_2.17")(clock, flags, req, rem);
  }
  Deadline deadline = (flags & TIMER_ABSTIME) ? deadline_from_abs(clock == CLOCK_REALTIME ? clock : CLOCK_MONOTONIC, *req)
                                              : deadline_after(to_duration(*req));
  this_task::sleep_until(deadline);
  if (rem != nullptr && !(flags & TIMER_ABSTIME)) *rem = timespec{};
  return 0;
}

int nanosleep(const timespec* req, timespec* rem) {
  if (!this_task::in_task()) return SKY_REAL(nanosleep, "GLIBC_2.2.5")(req, rem);
  if (int rc = clock_nanosleep(CLOCK_MONOTONIC, 0, req, rem); rc != 0) {
    skyloft::set_task_errno(rc);
    return -1;
  }
  return 0;
}

int usleep(useconds_t usec) {
  if (!this_task::in_task()) return SKY_REAL(usleep, "GLIBC_2.2.5")(usec);
  this_task::sleep_for(std::chrono::microseconds(usec));
  return 0;
}

unsigned int sleep(unsigned int seconds) {
  if (!this_task::in_task()) return SKY_REAL(sleep, "GLIBC_2.2.5")(seconds);
  this_task::sleep_for(std::chrono::seconds(seconds));
  return 0;
}

int sched_yield() noexcept {
  if (!this_task::in_task()) return SKY_REAL(sched_yield, "GLIBC_2.2.5")();
  this_task::yield();
  return 0;
}

}  // extern "C"
