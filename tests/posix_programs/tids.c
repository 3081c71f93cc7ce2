/* tids.c - how many kernel threads ran this program's 32 threads (32 natively; the workers under skyloft). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#define THREADS 32
static long tids[THREADS];
static pthread_barrier_t all_started;

static void* run(void* arg) {
  tids[(long)arg] = syscall(SYS_gettid);
  pthread_barrier_wait(&all_started); /* all alive at once: natively each has a kernel thread of its own */
  return NULL;
}

int main(void) {
  pthread_barrier_init(&all_started, NULL, THREADS);
  pthread_t t[THREADS];
  for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, run, (void*)i);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  int distinct = 0;
  for (int i = 0; i < THREADS; i++) {
    int seen = 0;
    for (int j = 0; j < i; j++) seen |= tids[j] == tids[i];
    distinct += !seen;
  }
  printf("kernel threads: %d\n", distinct);
  return 0;
}
