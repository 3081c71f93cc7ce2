/* rwlock.c - readers check an invariant the writers keep; try and timed locks report busy and timeouts. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define READERS 6
#define WRITERS 2
#define ROUNDS 5000

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static long a, b;
static long broken;

static void* reader(void* arg) {
  (void)arg;
  for (int i = 0; i < ROUNDS; i++) {
    pthread_rwlock_rdlock(&rw);
    if (a != b) __atomic_add_fetch(&broken, 1, __ATOMIC_RELAXED);
    pthread_rwlock_unlock(&rw);
  }
  return NULL;
}

static void* writer(void* arg) {
  (void)arg;
  for (int i = 0; i < ROUNDS; i++) {
    pthread_rwlock_wrlock(&rw);
    a++;
    if (i % 64 == 0) sched_yield(); /* let readers try while the invariant is broken */
    b++;
    pthread_rwlock_unlock(&rw);
  }
  return NULL;
}

static void* try_while_written(void* arg) {
  (void)arg;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += 20 * 1000 * 1000;
  if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
  printf("tryrdlock while written: %s\n", pthread_rwlock_tryrdlock(&rw) == EBUSY ? "EBUSY" : "other");
  printf("timedrdlock while written: %s\n", pthread_rwlock_timedrdlock(&rw, &ts) == ETIMEDOUT ? "ETIMEDOUT" : "other");
  return NULL;
}

int main(void) {
  pthread_t t[READERS + WRITERS];
  for (int i = 0; i < READERS + WRITERS; i++) pthread_create(&t[i], NULL, i < WRITERS ? writer : reader, NULL);
  for (int i = 0; i < READERS + WRITERS; i++) pthread_join(t[i], NULL);
  printf("a %ld b %ld broken %ld\n", a, b, broken);

  pthread_rwlock_rdlock(&rw);
  printf("second reader: %s\n", pthread_rwlock_tryrdlock(&rw) == 0 ? "ok" : "refused");
  printf("writer while read: %s\n", pthread_rwlock_trywrlock(&rw) == EBUSY ? "EBUSY" : "other");
  pthread_rwlock_unlock(&rw);
  pthread_rwlock_unlock(&rw);

  pthread_rwlock_wrlock(&rw);
  pthread_t other;
  pthread_create(&other, NULL, try_while_written, NULL);
  pthread_join(other, NULL);
  pthread_rwlock_unlock(&rw);
  printf("wrlock after: %s\n", pthread_rwlock_trywrlock(&rw) == 0 ? "ok" : "refused");
  pthread_rwlock_unlock(&rw);
  return broken == 0 ? 0 : 1;
}
