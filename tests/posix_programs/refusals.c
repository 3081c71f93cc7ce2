/* refusals.c - what the skyloft layer refuses, and with which error: robust and process-shared objects,
   caller-provided stacks, cancellation. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static const char* name(int rc) { return rc == 0 ? "0" : rc == ENOTSUP ? "ENOTSUP" : "other"; }
static void* idle(void* arg) { return arg; }

int main(void) {
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_t m;
  printf("robust mutex: %s\n", name(pthread_mutex_init(&m, &ma)));
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
  printf("process-shared mutex: %s\n", name(pthread_mutex_init(&m, &ma)));
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
  pthread_cond_t c;
  printf("process-shared condvar: %s\n", name(pthread_cond_init(&c, &ca)));

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  size_t size = 1 << 16;
  pthread_attr_setstack(&attr, malloc(size), size);
  pthread_t t;
  printf("caller-provided stack: %s\n", name(pthread_create(&t, &attr, idle, NULL)));
  pthread_create(&t, NULL, idle, NULL);
  printf("cancel: %s\n", name(pthread_cancel(t)));
  pthread_join(t, NULL);
  return 0;
}
