/* credentials.c - credential changes in a threaded program (memcached -u does this at start-up). glibc
 * makes setuid/setgid process-wide by signalling every thread and waiting for each to answer; it must
 * return, before the first pthread_create (glibc installs that signal's handler there) and after it,
 * while other threads are blocked. An argument sets the number of rounds (default 20). */
#define _GNU_SOURCE
#include <grp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define THREADS 4
static int rounds = 20;

static pthread_barrier_t round_start, round_end;

static int change_to_own_ids(void) { return setgid(getgid()) | setuid(getuid()); }

static void* run(void* arg) {
  long failures = 0;
  for (int r = 0; r < rounds; r++) {
    pthread_barrier_wait(&round_start);
    if ((long)arg == r % THREADS) failures += change_to_own_ids() != 0; /* the others wait at round_end */
    pthread_barrier_wait(&round_end);
  }
  return (void*)failures;
}

int main(int argc, char** argv) {
  if (argc > 1) rounds = atoi(argv[1]);
  printf("before any thread: %s\n", change_to_own_ids() == 0 ? "ok" : "failed");
  pthread_barrier_init(&round_start, NULL, THREADS);
  pthread_barrier_init(&round_end, NULL, THREADS);
  pthread_t t[THREADS];
  for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, run, (void*)i);
  long failures = 0;
  for (int i = 0; i < THREADS; i++) {
    void* f;
    pthread_join(t[i], &f);
    failures += (long)f;
  }
  printf("from the threads: %ld of %d failed\n", failures, rounds);
  printf("after the threads: %s\n", change_to_own_ids() == 0 ? "ok" : "failed");
  return 0;
}
