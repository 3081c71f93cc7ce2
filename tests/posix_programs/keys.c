/* keys.c - per-thread key values and their destructors, including a destructor that sets a value again. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 8

static pthread_key_t key, again_key;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int destroyed[THREADS];
static int again_rounds[THREADS];

static void destroy(void* v) {
  int id = *(int*)v;
  pthread_mutex_lock(&lock);
  destroyed[id]++;
  pthread_mutex_unlock(&lock);
  free(v);
}

/* Sets its own value again twice: POSIX runs it again in the next round. */
static void destroy_again(void* v) {
  int id = (int)(long)v >> 8, round = (int)(long)v & 0xff;
  pthread_mutex_lock(&lock);
  again_rounds[id]++;
  pthread_mutex_unlock(&lock);
  if (round < 2) pthread_setspecific(again_key, (void*)(long)((id << 8) | (round + 1)));
}

static void* run(void* arg) {
  int* mine = malloc(sizeof *mine);
  *mine = (int)(long)arg;
  pthread_setspecific(key, mine);
  pthread_setspecific(again_key, (void*)(long)((*mine << 8) | 0));
  for (int i = 0; i < 100; i++) {
    sched_yield();
    if (*(int*)pthread_getspecific(key) != *mine) return (void*)1; /* another thread's value */
  }
  return NULL;
}

int main(void) {
  pthread_key_create(&key, destroy);
  pthread_key_create(&again_key, destroy_again);
  printf("unset value in main: %s\n", pthread_getspecific(key) == NULL ? "null" : "set");
  pthread_t t[THREADS];
  for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, run, (void*)i);
  int mixed = 0;
  for (int i = 0; i < THREADS; i++) {
    void* r;
    pthread_join(t[i], &r);
    mixed += r != NULL;
  }
  for (int i = 0; i < THREADS; i++) printf("thread %d destroyed %d again %d\n", i, destroyed[i], again_rounds[i]);
  printf("values seen by other threads: %d\n", mixed);

  pthread_key_t deleted;
  pthread_key_create(&deleted, NULL);
  pthread_setspecific(deleted, &mixed);
  pthread_key_delete(deleted);
  pthread_key_t reused;
  pthread_key_create(&reused, NULL);
  printf("reused key starts %s\n", pthread_getspecific(reused) == NULL ? "null" : "with a stale value");
  return mixed;
}
