// affinity.cpp - sched_getaffinity and sched_setaffinity of a task about itself.
//
// A task runs on whichever worker its policy picks, and each worker kernel thread is pinned to one core, so
// the kernel's answer about "this thread" (pid 0 or the worker's tid) would be that one core: `nproc` said 1
// and `xz -T0` compressed with one thread on two cores. A task is told the runtime's cores instead (the
// set its threads may run on, as a native thread is told the process's allowed cores), and a task's request
// to pin itself is accepted and ignored, as pthread_setaffinity_np already is: obeying it would pin the
// worker, not the task. Other pids, and plain kernel threads, go to glibc.
#include <errno.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

#include "core/scheduler.hpp"  // set_task_errno
#include "posix/real.hpp"
#include "skyloft/runtime.hpp"
#include "skyloft/task.hpp"

using namespace skyloft;

namespace {

// Whether `pid` names the caller: 0, or the kernel thread now running the task.
bool about_this_task(pid_t pid) {
  return this_task::in_task() && (pid == 0 || pid == static_cast<pid_t>(::syscall(SYS_gettid)));
}

}  // namespace

extern "C" {

int sched_getaffinity(pid_t pid, std::size_t size, cpu_set_t* set) {
  Runtime* rt = about_this_task(pid) ? Runtime::current() : nullptr;
  if (rt == nullptr) return SKY_REAL(sched_getaffinity, "GLIBC_2.3.4")(pid, size, set);
  const std::vector<int> cores = rt->worker_cores();
  for (int c : cores) {
    if (static_cast<std::size_t>(c) >= size * 8) {  // the kernel's answer to a set too small for its cores
      skyloft::set_task_errno(EINVAL);
      return -1;
    }
  }
  CPU_ZERO_S(size, set);
  for (int c : cores) CPU_SET_S(static_cast<std::size_t>(c), size, set);
  return 0;
}

int sched_setaffinity(pid_t pid, std::size_t size, const cpu_set_t* set) {
  if (!about_this_task(pid) || Runtime::current() == nullptr) {
    return SKY_REAL(sched_setaffinity, "GLIBC_2.3.4")(pid, size, set);
  }
  return 0;  // tasks go where the policy puts them (documented)
}

}  // extern "C"
