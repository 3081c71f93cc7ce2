/* waitpid.c - one thread waits for a child with waitpid while another keeps ticking.
 *
 * The child exits only when the ticker tells it to (a byte on a pipe), and the ticker does so after it has
 * ticked 20 times while the main thread was inside waitpid: so "ran meanwhile: yes" cannot depend on how
 * fast a loaded machine runs the ticker. If the waitpid call stalled the ticker (the blocked-worker hand-off
 * failed), the child gives up after 10 s and exits with 7 instead of 5, so the output differs. */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { kTicksWanted = 20 };

static volatile int main_waiting; /* set just before waitpid */
static volatile int child_done;
static int ticks_while_waiting;
static int release_fd; /* the pipe's write end: the child exits when a byte arrives */

static void* ticker(void* arg) {
  (void)arg;
  while (!child_done) {
    usleep(1000);
    if (main_waiting && !child_done && ++ticks_while_waiting == kTicksWanted) {
      char b = 1;
      if (write(release_fd, &b, 1) != 1) return NULL;
    }
  }
  return NULL;
}

int main(void) {
  int fds[2];
  if (pipe(fds) != 0) return 1;
  release_fd = fds[1];
  pid_t pid = fork();
  if (pid == 0) {
    /* The child has one kernel thread and no runtime: only raw system calls, then _exit. */
    struct pollfd p = {fds[0], POLLIN, 0};
    int ready = (int)syscall(SYS_poll, &p, 1, 10 * 1000);
    _exit(ready == 1 ? 5 : 7);
  }
  pthread_t t;
  pthread_create(&t, NULL, ticker, NULL);
  int status = 0;
  main_waiting = 1;
  waitpid(pid, &status, 0);
  child_done = 1;
  pthread_join(t, NULL);
  printf("child exited with %d; the other thread ran meanwhile: %s\n", WEXITSTATUS(status),
         ticks_while_waiting >= kTicksWanted ? "yes" : "no");
  return 0;
}
