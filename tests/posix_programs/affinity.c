// affinity.c - what a thread learns about the cores it may run on (nproc and xz -T0 size their thread
// pools from it): sched_getaffinity from main and from a thread, pthread_getaffinity_np, and a thread
// pinning itself. Prints the count and list of cores each time; natively the process's allowed cores.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>

static void print_set(const char* who, const cpu_set_t* set) {
  printf("%s: %d cores:", who, CPU_COUNT(set));
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, set)) printf(" %d", c);
  }
  printf("\n");
}

static void* thread_main(void* arg) {
  (void)arg;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) perror("sched_getaffinity");
  print_set("thread", &set);
  if (pthread_getaffinity_np(pthread_self(), sizeof set, &set) != 0) printf("pthread_getaffinity_np failed\n");
  print_set("pthread_getaffinity_np", &set);
  return NULL;
}

int main(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) perror("sched_getaffinity");
  print_set("main", &set);
  pthread_t t;
  pthread_create(&t, NULL, thread_main, NULL);
  pthread_join(t, NULL);
  return 0;
}
