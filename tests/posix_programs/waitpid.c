/* waitpid.c - one thread waits for a child with waitpid while another keeps ticking. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int child_done;
static int ticks_while_waiting;

static void* ticker(void* arg) {
  (void)arg;
  while (!child_done) {
    usleep(1000);
    if (!child_done) ticks_while_waiting++;
  }
  return NULL;
}

int main(void) {
  pthread_t t;
  pthread_create(&t, NULL, ticker, NULL);
  pid_t pid = fork();
  if (pid == 0) {
    /* The child has one kernel thread and no runtime: only raw system calls, then _exit. */
    struct timespec ts = {0, 100 * 1000 * 1000};
    syscall(SYS_nanosleep, &ts, NULL);
    _exit(5);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  child_done = 1;
  pthread_join(t, NULL);
  printf("child exited with %d; the other thread ran meanwhile: %s\n", WEXITSTATUS(status),
         ticks_while_waiting > 10 ? "yes" : "no");
  return 0;
}
