// child_process.hpp - fork() for tests: the child dies with the test.
//
// ctest ends a test that overruns its timeout with SIGKILL, so no destructor stops that test's children: a
// daemon, an app spinning on both cores or a hung program would keep running under the tests that follow
// (one spun for 50 minutes once). PR_SET_PDEATHSIG makes the kernel kill the child when the thread that
// forked it ends, so fork only from the test's own thread. The kernel clears the setting when the child
// changes its uid or gid; such children must end by themselves.
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

inline pid_t fork_test_child() {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);  // the test died between the fork and the prctl
  }
  return pid;
}
