/* timed.c - timed waits time out (and no sooner): condvars on both clocks, timed mutex, timed join, sleeps. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct timespec in_ms(clockid_t c, int ms) {
  long long t = now_ns(c) + ms * 1000000LL;
  struct timespec ts = {t / 1000000000LL, t % 1000000000LL};
  return ts;
}

static const char* name(int rc) { return rc == 0 ? "0" : rc == ETIMEDOUT ? "ETIMEDOUT" : rc == EBUSY ? "EBUSY" : "other"; }

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t cv_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int flag;

static void* try_held(void* arg) {
  (void)arg;
  struct timespec ts = in_ms(CLOCK_REALTIME, 30);
  long long t0 = now_ns(CLOCK_MONOTONIC);
  int rc = pthread_mutex_timedlock(&held, &ts);
  printf("timedlock on a held mutex: %s after >= 30 ms: %s\n", name(rc), now_ns(CLOCK_MONOTONIC) - t0 >= 29000000 ? "yes" : "no");
  printf("trylock on a held mutex: %s\n", name(pthread_mutex_trylock(&held)));
  return NULL;
}

static void* sleeper(void* arg) {
  usleep(50 * 1000);
  pthread_mutex_lock(&cv_lock);
  flag = 1;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&cv_lock);
  return arg;
}

int main(void) {
  /* A condvar wait with nobody signalling, on CLOCK_REALTIME (the default) and CLOCK_MONOTONIC. */
  pthread_cond_t mono;
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&mono, &attr);
  pthread_mutex_lock(&cv_lock);
  long long t0 = now_ns(CLOCK_MONOTONIC);
  struct timespec rt = in_ms(CLOCK_REALTIME, 20);
  int rc = pthread_cond_timedwait(&cv, &cv_lock, &rt);
  printf("realtime timedwait: %s, waited >= 20 ms: %s\n", name(rc), now_ns(CLOCK_MONOTONIC) - t0 >= 19000000 ? "yes" : "no");
  t0 = now_ns(CLOCK_MONOTONIC);
  struct timespec mt = in_ms(CLOCK_MONOTONIC, 20);
  rc = pthread_cond_timedwait(&mono, &cv_lock, &mt);
  printf("monotonic timedwait: %s, waited >= 20 ms: %s\n", name(rc), now_ns(CLOCK_MONOTONIC) - t0 >= 19000000 ? "yes" : "no");
  mt = in_ms(CLOCK_MONOTONIC, 20);
  printf("clockwait monotonic: %s\n", name(pthread_cond_clockwait(&cv, &cv_lock, CLOCK_MONOTONIC, &mt)));
  struct timespec past = {0, 0};
  printf("timedwait in the past: %s\n", name(pthread_cond_timedwait(&cv, &cv_lock, &past)));
  pthread_mutex_unlock(&cv_lock);

  /* A signal arrives before the timeout. */
  pthread_t t;
  pthread_create(&t, NULL, sleeper, NULL);
  pthread_mutex_lock(&cv_lock);
  struct timespec long_wait = in_ms(CLOCK_REALTIME, 5000);
  rc = 0;
  while (!flag && rc == 0) rc = pthread_cond_timedwait(&cv, &cv_lock, &long_wait);
  printf("signalled before timeout: %s flag %d\n", name(rc), flag);
  pthread_mutex_unlock(&cv_lock);
  pthread_join(t, NULL);

  /* Timed mutex. */
  pthread_mutex_lock(&held);
  pthread_create(&t, NULL, try_held, NULL);
  pthread_join(t, NULL);
  pthread_mutex_unlock(&held);

  /* Timed and try joins. */
  flag = 0;
  pthread_create(&t, NULL, sleeper, (void*)7L);
  printf("tryjoin while running: %s\n", name(pthread_tryjoin_np(t, NULL)));
  struct timespec soon = in_ms(CLOCK_REALTIME, 10);
  printf("timedjoin too soon: %s\n", name(pthread_timedjoin_np(t, NULL, &soon)));
  void* r = NULL;
  struct timespec later = in_ms(CLOCK_REALTIME, 5000);
  rc = pthread_timedjoin_np(t, &r, &later);
  printf("timedjoin later: %s value %ld\n", name(rc), (long)r);

  /* Sleeps last at least as long as asked. */
  t0 = now_ns(CLOCK_MONOTONIC);
  struct timespec ten = {0, 10 * 1000 * 1000};
  nanosleep(&ten, NULL);
  usleep(10 * 1000);
  struct timespec abs = in_ms(CLOCK_MONOTONIC, 10);
  clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL);
  printf("three 10 ms sleeps took >= 30 ms: %s\n", now_ns(CLOCK_MONOTONIC) - t0 >= 29000000 ? "yes" : "no");
  struct timespec bad = {0, 2000000000L};
  printf("nanosleep with a bad timespec: %s\n", nanosleep(&bad, NULL) == -1 && errno == EINVAL ? "EINVAL" : "other");
  printf("sleep(0): %u\n", sleep(0));
  return 0;
}
