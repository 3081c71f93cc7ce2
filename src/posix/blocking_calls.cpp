// blocking_calls.cpp - system calls that block with nothing to park on (waiting for a child): made inside a
// BlockingSection, so a spare kernel thread takes the core over when the wait lasts (see blocking.hpp).
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "posix/real.hpp"
#include "skyloft/blocking.hpp"
#include "skyloft/task.hpp"

using namespace skyloft;

extern "C" {

pid_t waitpid(pid_t pid, int* status, int options) {
  if ((options & WNOHANG) || !this_task::in_task()) return SKY_REAL(waitpid, "GLIBC_2.2.5")(pid, status, options);
  BlockingSection blocking;
  return SKY_REAL(waitpid, "GLIBC_2.2.5")(pid, status, options);
}

pid_t wait(int* status) { return waitpid(-1, status, 0); }

pid_t wait4(pid_t pid, int* status, int options, rusage* usage) {
  if ((options & WNOHANG) || !this_task::in_task()) return SKY_REAL(wait4, "GLIBC_2.2.5")(pid, status, options, usage);
  BlockingSection blocking;
  return SKY_REAL(wait4, "GLIBC_2.2.5")(pid, status, options, usage);
}

int waitid(idtype_t type, id_t id, siginfo_t* info, int options) {
  if ((options & WNOHANG) || !this_task::in_task()) return SKY_REAL(waitid, "GLIBC_2.2.5")(type, id, info, options);
  BlockingSection blocking;
  return SKY_REAL(waitid, "GLIBC_2.2.5")(type, id, info, options);
}

}  // extern "C"
