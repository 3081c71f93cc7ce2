/* pipes.c - many threads blocked in read() on pipes at once; poll on several pipes and epoll_wait with
   timeouts. With "tids" it also says how many kernel threads the readers ran on. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#define READERS 100

static int pipes[READERS][2];
static long got[READERS];
static long tids[READERS];

static void* reader(void* arg) {
  long i = (long)arg;
  long v = 0;
  if (read(pipes[i][0], &v, sizeof v) != sizeof v) v = -1;
  got[i] = v;
  tids[i] = syscall(SYS_gettid);
  return NULL;
}

int main(int argc, char** argv) {
  pthread_t t[READERS];
  for (long i = 0; i < READERS; i++) {
    pipe(pipes[i]);
    pthread_create(&t[i], NULL, reader, (void*)i);
  }
  usleep(20 * 1000); /* every reader is (very likely) blocked in read() by now */
  for (long i = READERS - 1; i >= 0; i--) {
    long v = i * i;
    write(pipes[i][1], &v, sizeof v);
  }
  long sum = 0;
  for (int i = 0; i < READERS; i++) {
    pthread_join(t[i], NULL);
    sum += got[i];
  }
  printf("readers %d sum %ld\n", READERS, sum);

  /* poll on two pipes: nothing ready times out; a byte in the second is found. */
  struct pollfd fds[2] = {{pipes[0][0], POLLIN, 0}, {pipes[1][0], POLLIN, 0}};
  printf("poll on two empty pipes: %d\n", poll(fds, 2, 20));
  write(pipes[1][1], "x", 1);
  int n = poll(fds, 2, 1000);
  printf("poll after a write: %d, second readable: %s\n", n, (fds[1].revents & POLLIN) ? "yes" : "no");
  printf("poll with no descriptors (a 10 ms sleep): %d\n", poll(NULL, 0, 10));

  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7};
  epoll_ctl(ep, EPOLL_CTL_ADD, pipes[2][0], &ev);
  struct epoll_event out;
  printf("epoll_wait on an empty pipe: %d\n", epoll_wait(ep, &out, 1, 20));
  write(pipes[2][1], "y", 1);
  n = epoll_wait(ep, &out, 1, 1000);
  printf("epoll_wait after a write: %d, data %u\n", n, n == 1 ? out.data.u32 : 0);

  if (argc > 1 && strcmp(argv[1], "tids") == 0) {
    int distinct = 0;
    for (int i = 0; i < READERS; i++) {
      int seen = 0;
      for (int j = 0; j < i; j++) seen |= tids[j] == tids[i];
      distinct += !seen;
    }
    printf("kernel threads: %d\n", distinct);
  }
  return 0;
}
