/* barrier.c - threads meet at a barrier each phase; exactly one per phase is the serial thread. */
#include <pthread.h>
#include <stdio.h>

#define THREADS 7
#define PHASES 50

static pthread_barrier_t barrier;
static int slots[THREADS];
static int serial_count[PHASES];
static long phase_sum[PHASES];

static void* run(void* arg) {
  int me = (int)(long)arg;
  for (int phase = 0; phase < PHASES; phase++) {
    slots[me] = phase * THREADS + me;
    int rc = pthread_barrier_wait(&barrier); /* every slot is written */
    if (rc == PTHREAD_BARRIER_SERIAL_THREAD) {
      serial_count[phase]++;
      long s = 0;
      for (int i = 0; i < THREADS; i++) s += slots[i];
      phase_sum[phase] = s;
    }
    pthread_barrier_wait(&barrier); /* the sum is read before anyone writes the next phase */
  }
  return NULL;
}

int main(void) {
  pthread_barrier_init(&barrier, NULL, THREADS);
  pthread_t t[THREADS];
  for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, run, (void*)i);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  int ok = 1;
  for (int p = 0; p < PHASES; p++) {
    long expect = (long)p * THREADS * THREADS + THREADS * (THREADS - 1) / 2;
    if (serial_count[p] != 1 || phase_sum[p] != expect) ok = 0;
    if (p % 10 == 0) printf("phase %d sum %ld serial %d\n", p, phase_sum[p], serial_count[p]);
  }
  pthread_barrier_destroy(&barrier);
  printf("%s\n", ok ? "all phases ok" : "a phase went wrong");
  return ok ? 0 : 1;
}
