// futex.cpp - the raw futex system call through syscall(2), as libstdc++'s std::atomic<T>::wait,
// std::counting_semaphore, std::latch and std::barrier make it: a task's private wait parks on the
// runtime's wait table instead of blocking its kernel thread.
//
// Who waits where:
//   a task, FUTEX_WAIT[_BITSET]_PRIVATE (any bitset)  -> wait_address (the wait table), parks the task
//   a task, a shared (non-private) wait               -> the kernel, inside a BlockingSection (the word may
//                                                        be shared with another process)
//   a plain thread                                   -> the kernel (the runtime parks its own threads so)
// so a FUTEX_WAKE wakes both queues: the wait table's waiters first, then the kernel's for the rest.
// Every other system call, and the other futex operations, go to glibc's syscall unchanged.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdint>

#include "core/scheduler.hpp"  // set_task_errno
#include "posix/real.hpp"
#include "posix/timespec.hpp"
#include "skyloft/blocking.hpp"
#include "skyloft/task.hpp"
#include "skyloft/wait.hpp"

namespace skyloft::posix {
namespace {

long real_syscall(long number, const long (&a)[6]) {
  return SKY_REAL(syscall, "GLIBC_2.2.5")(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

std::atomic<std::uint32_t>& word_at(long addr) noexcept {
  return *reinterpret_cast<std::atomic<std::uint32_t>*>(addr);
}

// A private wait by a task: arguments (uaddr, op, val, timeout, uaddr2, bitset).
long task_wait(const long (&a)[6], int cmd, bool realtime) {
  auto* timeout = reinterpret_cast<const timespec*>(a[3]);
  Deadline deadline = kNoDeadline;
  if (timeout != nullptr) {
    if (!timespec_valid(timeout) || timeout->tv_sec < 0) {
      set_task_errno(EINVAL);
      return -1;
    }
    deadline = cmd == FUTEX_WAIT ? deadline_after(to_duration(*timeout))  // FUTEX_WAIT: relative, monotonic
                                 : deadline_from_abs(realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC, *timeout);
  }
  switch (wait_address(word_at(a[0]), static_cast<std::uint32_t>(a[2]), deadline)) {
    case WaitResult::woken: return 0;
    case WaitResult::value_changed: set_task_errno(EAGAIN); return -1;
    case WaitResult::timed_out: set_task_errno(ETIMEDOUT); return -1;
  }
  return 0;
}

}  // namespace
}  // namespace skyloft::posix

using namespace skyloft;
using namespace skyloft::posix;

extern "C" long syscall(long number, ...) {
  long a[6];
  va_list ap;
  va_start(ap, number);
  for (long& v : a) v = va_arg(ap, long);  // as glibc's own syscall(): six argument registers, used or not
  va_end(ap);
  if (number != SYS_futex) return real_syscall(number, a);

  const int op = static_cast<int>(a[1]);
  const int cmd = op & FUTEX_CMD_MASK;
  const bool is_private = (op & FUTEX_PRIVATE_FLAG) != 0;
  const bool realtime = (op & FUTEX_CLOCK_REALTIME) != 0;
  const bool any_bit = cmd == FUTEX_WAIT || cmd == FUTEX_WAKE || static_cast<std::uint32_t>(a[5]) == FUTEX_BITSET_MATCH_ANY;
  if ((cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET) && this_task::in_task()) {
    if (is_private && any_bit) return task_wait(a, cmd, realtime);
    BlockingSection blocking;
    return real_syscall(number, a);
  }
  if ((cmd == FUTEX_WAKE || cmd == FUTEX_WAKE_BITSET) && any_bit) {
    const auto want = static_cast<std::size_t>(a[2] < 0 ? 0 : a[2]);
    std::size_t woken = wake_address(word_at(a[0]), want);
    if (woken >= want) return static_cast<long>(woken);
    long b[6] = {a[0], a[1], static_cast<long>(want - woken), a[3], a[4], a[5]};
    long kernel = real_syscall(number, b);
    return kernel < 0 ? static_cast<long>(woken) : static_cast<long>(woken) + kernel;
  }
  return real_syscall(number, a);
}
