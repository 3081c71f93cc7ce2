/* pool.c - a thread pool: workers take jobs from a queue until told to stop; results are summed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define WORKERS 4
#define JOBS 2000

struct job {
  struct job* next;
  unsigned n;
};

static struct job* queue_head;
static struct job** queue_tail = &queue_head;
static int stopping;
static unsigned long long results;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_runs;

static void init_once(void) { once_runs++; }

static unsigned collatz_steps(unsigned long long n) {
  unsigned steps = 0;
  while (n != 1) {
    n = n % 2 ? 3 * n + 1 : n / 2;
    steps++;
  }
  return steps;
}

static void* worker(void* arg) {
  (void)arg;
  pthread_once(&once, init_once);
  for (;;) {
    pthread_mutex_lock(&lock);
    while (queue_head == NULL && !stopping) pthread_cond_wait(&work, &lock);
    struct job* j = queue_head;
    if (j == NULL) {
      pthread_mutex_unlock(&lock);
      return NULL;
    }
    queue_head = j->next;
    if (queue_head == NULL) queue_tail = &queue_head;
    pthread_mutex_unlock(&lock);
    unsigned r = collatz_steps(j->n);
    free(j);
    pthread_mutex_lock(&lock);
    results += r;
    pthread_mutex_unlock(&lock);
  }
}

int main(void) {
  pthread_t t[WORKERS];
  for (int i = 0; i < WORKERS; i++) pthread_create(&t[i], NULL, worker, NULL);
  for (unsigned i = 1; i <= JOBS; i++) {
    struct job* j = malloc(sizeof *j);
    j->next = NULL;
    j->n = i * 7919u;
    pthread_mutex_lock(&lock);
    *queue_tail = j;
    queue_tail = &j->next;
    pthread_cond_signal(&work);
    pthread_mutex_unlock(&lock);
  }
  pthread_mutex_lock(&lock);
  stopping = 1;
  pthread_cond_broadcast(&work);
  pthread_mutex_unlock(&lock);
  for (int i = 0; i < WORKERS; i++) pthread_join(t[i], NULL);
  printf("jobs %d total steps %llu once ran %d\n", JOBS, results, once_runs);
  return 0;
}
