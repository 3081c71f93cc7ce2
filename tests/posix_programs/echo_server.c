/* echo_server.c - a TCP echo server with a thread per connection, and 200 client threads in the same
   process, all on blocking sockets over loopback. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLIENTS 200
#define ROUNDS 5

static int listener;
static unsigned short port;
static int echoed_ok;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void* serve(void* arg) {
  int fd = (int)(long)arg;
  char buf[256];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
    if (send(fd, buf, (size_t)n, 0) != n) break;
  }
  close(fd);
  return NULL;
}

static void* acceptor(void* arg) {
  (void)arg;
  for (int i = 0; i < CLIENTS; i++) {
    int fd = accept(listener, NULL, NULL);
    if (fd < 0) return NULL;
    pthread_t t;
    pthread_create(&t, NULL, serve, (void*)(long)fd);
    pthread_detach(t);
  }
  return NULL;
}

static void* client(void* arg) {
  long id = (long)arg;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) return NULL;
  int ok = 1;
  for (int r = 0; r < ROUNDS; r++) {
    char msg[64], back[64];
    int len = snprintf(msg, sizeof msg, "client %ld round %d", id, r);
    if (write(fd, msg, (size_t)len) != len) ok = 0;
    int have = 0;
    while (have < len) {
      ssize_t n = read(fd, back + have, (size_t)(len - have));
      if (n <= 0) break;
      have += (int)n;
    }
    if (have != len || memcmp(msg, back, (size_t)len) != 0) ok = 0;
  }
  close(fd);
  pthread_mutex_lock(&lock);
  echoed_ok += ok;
  pthread_mutex_unlock(&lock);
  return NULL;
}

int main(void) {
  listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bind(listener, (struct sockaddr*)&addr, sizeof addr);
  listen(listener, CLIENTS);
  socklen_t len = sizeof addr;
  getsockname(listener, (struct sockaddr*)&addr, &len);
  port = ntohs(addr.sin_port);
  pthread_t acc, c[CLIENTS];
  pthread_create(&acc, NULL, acceptor, NULL);
  for (long i = 0; i < CLIENTS; i++) pthread_create(&c[i], NULL, client, (void*)i);
  for (int i = 0; i < CLIENTS; i++) pthread_join(c[i], NULL);
  pthread_join(acc, NULL);
  printf("clients %d echoed correctly %d\n", CLIENTS, echoed_ok);
  return echoed_ok == CLIENTS ? 0 : 1;
}
