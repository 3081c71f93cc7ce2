/* prodcons.c - producers and consumers on a bounded buffer guarded by a mutex and two condition variables. */
#include <pthread.h>
#include <stdio.h>

#define CAPACITY 8
#define PRODUCERS 3
#define CONSUMERS 3
#define ITEMS_EACH 20000

static int buffer[CAPACITY];
static int head, count, producers_left = PRODUCERS;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;

static void* produce(void* arg) {
  int base = (int)(long)arg * ITEMS_EACH;
  for (int i = 1; i <= ITEMS_EACH; i++) {
    pthread_mutex_lock(&lock);
    while (count == CAPACITY) pthread_cond_wait(&not_full, &lock);
    buffer[(head + count++) % CAPACITY] = base + i;
    pthread_cond_signal(&not_empty);
    pthread_mutex_unlock(&lock);
  }
  pthread_mutex_lock(&lock);
  if (--producers_left == 0) pthread_cond_broadcast(&not_empty);
  pthread_mutex_unlock(&lock);
  return NULL;
}

static void* consume(void* arg) {
  long long* sum = arg;
  for (;;) {
    pthread_mutex_lock(&lock);
    while (count == 0 && producers_left > 0) pthread_cond_wait(&not_empty, &lock);
    if (count == 0) {
      pthread_mutex_unlock(&lock);
      return NULL;
    }
    int v = buffer[head];
    head = (head + 1) % CAPACITY;
    count--;
    pthread_cond_signal(&not_full);
    pthread_mutex_unlock(&lock);
    *sum += v;
  }
}

int main(void) {
  pthread_t p[PRODUCERS], c[CONSUMERS];
  long long sums[CONSUMERS] = {0};
  for (long i = 0; i < CONSUMERS; i++) pthread_create(&c[i], NULL, consume, &sums[i]);
  for (long i = 0; i < PRODUCERS; i++) pthread_create(&p[i], NULL, produce, (void*)i);
  for (int i = 0; i < PRODUCERS; i++) pthread_join(p[i], NULL);
  long long total = 0;
  for (int i = 0; i < CONSUMERS; i++) {
    pthread_join(c[i], NULL);
    total += sums[i];
  }
  long long n = (long long)PRODUCERS * ITEMS_EACH;
  printf("items %lld sum %lld expected %lld\n", n, total, n * (n + 1) / 2);
  return total == n * (n + 1) / 2 ? 0 : 1;
}
