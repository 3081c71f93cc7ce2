/* threads_misc.c - attributes, detached threads, names, mutex types, pthread_exit, equal/self. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char* name(int rc) {
  switch (rc) {
    case 0: return "0";
    case EINVAL: return "EINVAL";
    case EDEADLK: return "EDEADLK";
    case EPERM: return "EPERM";
    case EBUSY: return "EBUSY";
    case ERANGE: return "ERANGE";
    default: return "other";
  }
}

static pthread_t main_thread;
static volatile int detached_done;

static void* report_stack(void* arg) {
  pthread_attr_t attr;
  size_t size = 0;
  void* addr = NULL;
  pthread_getattr_np(pthread_self(), &attr);
  pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  char local;
  int inside = (char*)addr <= &local && &local < (char*)addr + size;
  printf("stack of at least the asked size: %s, a local lies in it: %s\n", size >= (size_t)(long)arg ? "yes" : "no",
         inside ? "yes" : "no");
  printf("self is not main: %s\n", pthread_equal(pthread_self(), main_thread) ? "no" : "yes");
  return NULL;
}

static void* exits_early(void* arg) {
  pthread_exit((char*)arg + 1);
  return NULL; /* not reached */
}

static void* detached(void* arg) {
  (void)arg;
  detached_done = 1;
  return NULL;
}

static void* named(void* arg) {
  (void)arg;
  char buf[16];
  pthread_setname_np(pthread_self(), "worker-7");
  pthread_getname_np(pthread_self(), buf, sizeof buf);
  printf("own name: %s\n", buf);
  printf("name too long: %s\n", name(pthread_setname_np(pthread_self(), "a-name-far-too-long")));
  printf("buffer too small: %s\n", name(pthread_getname_np(pthread_self(), buf, 4)));
  return NULL;
}

int main(void) {
  main_thread = pthread_self();
  printf("self equals self: %s\n", pthread_equal(pthread_self(), main_thread) ? "yes" : "no");

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 1 << 20);
  pthread_t t;
  pthread_create(&t, &attr, report_stack, (void*)(long)(1 << 20));
  pthread_join(t, NULL);

  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_create(&t, &attr, detached, NULL);
  pthread_attr_destroy(&attr);
  while (!detached_done) usleep(1000);
  printf("detached thread ran: yes\n");

  char base[2] = "x";
  void* r = NULL;
  pthread_create(&t, NULL, exits_early, base);
  pthread_join(t, &r);
  printf("pthread_exit value: %s\n", r == base + 1 ? "kept" : "lost");
  printf("join self: %s\n", name(pthread_join(pthread_self(), NULL)));
  pthread_create(&t, NULL, detached, NULL);
  printf("detach: %s\n", name(pthread_detach(t)));

  pthread_create(&t, NULL, named, NULL);
  pthread_join(t, NULL);

  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_t rec;
  pthread_mutex_init(&rec, &ma);
  pthread_mutex_lock(&rec);
  pthread_mutex_lock(&rec);
  printf("recursive trylock while held: %s\n", name(pthread_mutex_trylock(&rec)));
  pthread_mutex_unlock(&rec);
  pthread_mutex_unlock(&rec);
  printf("recursive last unlock: %s\n", name(pthread_mutex_unlock(&rec)));
  printf("recursive unlock when free: %s\n", name(pthread_mutex_unlock(&rec)));

  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_t ec;
  pthread_mutex_init(&ec, &ma);
  pthread_mutex_lock(&ec);
  printf("errorcheck relock: %s\n", name(pthread_mutex_lock(&ec)));
  printf("destroy while locked: %s\n", name(pthread_mutex_destroy(&ec)));
  pthread_mutex_unlock(&ec);
  printf("errorcheck unlock when free: %s\n", name(pthread_mutex_unlock(&ec)));
  pthread_mutexattr_destroy(&ma);

  pthread_mutex_t sr = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
  pthread_mutex_lock(&sr);
  printf("static recursive relock: %s\n", name(pthread_mutex_lock(&sr)));
  pthread_mutex_unlock(&sr);
  pthread_mutex_unlock(&sr);

  pthread_spinlock_t spin;
  pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
  pthread_spin_lock(&spin);
  printf("spin trylock while held: %s\n", name(pthread_spin_trylock(&spin)));
  pthread_spin_unlock(&spin);
  printf("spin trylock when free: %s\n", name(pthread_spin_trylock(&spin)));
  pthread_spin_unlock(&spin);
  return 0;
}
