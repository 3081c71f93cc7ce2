/* tls_threads.c - 1000 threads keep their own __thread state and errno across blocking calls (sleeps, pipe
 * reads and writes), yields, malloc and spinning long enough to be preempted. Prints one line: the same
 * natively and under skyloft-run (with its default per-task TLS). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THREADS 1000
#define ROUNDS 20
#define PIPES 8

static __thread unsigned long tl_sum;
static __thread char tl_name[24];
static __thread int tl_initialised = 17; /* every thread starts from the init image */
static int pipes[PIPES][2];
static int mismatches;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void spin_us(long us) {
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  do clock_gettime(CLOCK_MONOTONIC, &b);
  while ((b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000 < us);
}

static void* body(void* arg) {
  int id = (int)(long)arg;
  int bad = tl_initialised != 17 || tl_sum != 0;
  snprintf(tl_name, sizeof tl_name, "thread-%d", id);
  for (int r = 0; r < ROUNDS; ++r) {
    tl_sum += (unsigned long)id;
    errno = 1000 + id;
    switch (r % 4) {
      case 0: usleep(50); break;
      case 1: {
        int* p = pipes[id % PIPES];
        char c = 'x';
        if (write(p[1], &c, 1) != 1 || read(p[0], &c, 1) != 1) bad = 1;
        errno = 1000 + id;
        break;
      }
      case 2: sched_yield(); break;
      case 3: spin_us(200); break;
    }
    char* block = malloc(64 + (size_t)(id % 200));
    memset(block, id & 0xff, 64);
    if (errno != 1000 + id) bad = 1;
    free(block);
  }
  char expect[24];
  snprintf(expect, sizeof expect, "thread-%d", id);
  if (tl_sum != (unsigned long)id * ROUNDS || strcmp(tl_name, expect) != 0) bad = 1;
  if (bad) {
    pthread_mutex_lock(&lock);
    mismatches++;
    pthread_mutex_unlock(&lock);
  }
  return NULL;
}

int main(void) {
  for (int i = 0; i < PIPES; ++i) {
    if (pipe(pipes[i]) != 0) {
      perror("pipe");
      return 1;
    }
  }
  static pthread_t threads[THREADS];
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  for (long i = 0; i < THREADS; ++i) {
    if (pthread_create(&threads[i], &attr, body, (void*)i) != 0) {
      fprintf(stderr, "pthread_create failed at %ld\n", i);
      return 1;
    }
  }
  for (int i = 0; i < THREADS; ++i) pthread_join(threads[i], NULL);
  printf("%d threads, %d rounds: %d lost their thread-locals\n", THREADS, ROUNDS, mismatches);
  return mismatches == 0 ? 0 : 1;
}
