/* exit_status.c - ends the way argv[1] says: "code N", "segv", "abort", "exit-in-thread N", "main-exits"
   (main calls pthread_exit while another thread still has output to write). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void* exit_from_thread(void* arg) {
  exit((int)(long)arg);
}

static void* outlive_main(void* arg) {
  (void)arg;
  usleep(20 * 1000);
  printf("thread outlived main\n");
  fflush(stdout);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2) return 64;
  if (strcmp(argv[1], "code") == 0 && argc > 2) return atoi(argv[2]);
  if (strcmp(argv[1], "segv") == 0) {
    raise(SIGSEGV);
    return 0;
  }
  if (strcmp(argv[1], "abort") == 0) abort();
  if (strcmp(argv[1], "exit-in-thread") == 0 && argc > 2) {
    pthread_t t;
    pthread_create(&t, NULL, exit_from_thread, (void*)(long)atoi(argv[2]));
    pthread_join(t, NULL);
    return 0;
  }
  if (strcmp(argv[1], "main-exits") == 0) {
    pthread_t t;
    pthread_create(&t, NULL, outlive_main, NULL);
    pthread_exit(NULL);
  }
  return 65;
}
