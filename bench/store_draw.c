/* store_draw.c -- the cost of one draw from a shared rate store (src/core/cms_store*).
 *   store_draw SHM_FILE [REDIS_URL] [N]
 * Prints one line: RESULT shm_ns=<one process> shm4_ns=<each of 4 processes drawing at
 * once> redis_us=<one process, -1 without a URL>, all in CPU time of the drawing process
 * (for Redis that leaves out the wait for the answer: redis_wall_us has it), and
 * ping_wall_us: a bare PING through hiredis's own blocking client on the same loopback,
 * the round trip no draw can beat.  The budget is 10^6 calls/s so nearly every draw is
 * granted: what is timed is the draw, not a wait. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <hiredis/hiredis.h>
#include "cms_store.h"

static double now_ns(void) {  /* CPU time of this process: the draw's cost, not the queue for a core */
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static cms_rate *open_store(const char *url) {
  char err[256];
  cms_store_opts o;
  cms_rate *r;
  memset(&o, 0, sizeof o);
  o.url = url;
  o.appkey = "bench";
  o.rate = 1e6;
  o.penalty_s = 10;
  r = cms_store_open(&o, err, sizeof err);
  if (!r) fprintf(stderr, "store_draw: %s\n", err);
  return r;
}

static double wall_us(const struct timespec *a, const struct timespec *b) {
  return ((double)(b->tv_sec - a->tv_sec) * 1e9 + (double)(b->tv_nsec - a->tv_nsec)) / 1000;
}

/* wall µs per PING over n, hiredis's blocking client to redis://HOST:PORT; -1 if none */
static double pings(const char *url, long n) {
  char host[256];
  int port = 6379;
  long i;
  struct timespec a, b;
  redisContext *c;
  if (sscanf(url, "redis://%255[^:/]:%d", host, &port) < 1) return -1;
  c = redisConnect(host, port);
  if (!c || c->err) {
    if (c) redisFree(c);
    return -1;
  }
  for (i = 0; i < n + n / 10; i++) {
    redisReply *rp;
    if (i == n / 10) clock_gettime(CLOCK_MONOTONIC, &a); /* after a tenth as warm-up */
    rp = redisCommand(c, "PING");
    if (!rp) {
      redisFree(c);
      return -1;
    }
    freeReplyObject(rp);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  redisFree(c);
  return wall_us(&a, &b) / (double)n;
}

/* ns per draw over n draws */
static double draws(cms_rate *r, long n) {
  double t0 = now_ns();
  long i;
  for (i = 0; i < n; i++) r->ops->take(r, cms_now_ms());
  return (now_ns() - t0) / (double)n;
}

int main(int argc, char **argv) {
  char url[600];
  long n = argc > 3 ? atol(argv[3]) : 200000;
  double shm, shm4 = 0, redis = -1, redis_wall = -1, ping_wall = -1, *each;
  cms_rate *r;
  int i;
  if (argc < 2 || n < 1000) {
    fprintf(stderr, "usage: store_draw SHM_FILE [REDIS_URL] [N >= 1000]\n");
    return 2;
  }
  snprintf(url, sizeof url, "shm:%s", argv[1]);
  r = open_store(url);
  if (!r) return 1;
  draws(r, n / 10); /* warm */
  shm = draws(r, n);
  cms_store_free(r);
  each = mmap(NULL, 4 * sizeof *each, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (each == MAP_FAILED) return 1;
  for (i = 0; i < 4; i++) {
    if (fork() == 0) {
      cms_rate *c = open_store(url);
      each[i] = c ? draws(c, n) : -1;
      cms_store_free(c);
      _exit(0);
    }
  }
  for (i = 0; i < 4; i++) wait(NULL);
  for (i = 0; i < 4; i++) shm4 += each[i] / 4;
  if (argc > 2 && argv[2][0]) {
    r = open_store(argv[2]);
    if (r && !strcmp(r->ops->state(r), "ok")) {
      long rn = n / 50 < 2000 ? 2000 : n / 50;
      draws(r, rn / 10);
      {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        redis = draws(r, rn) / 1000;
        clock_gettime(CLOCK_MONOTONIC, &b);
        redis_wall = wall_us(&a, &b) / (double)rn;
      }
      if (strcmp(r->ops->state(r), "ok")) redis = -1;
      ping_wall = pings(argv[2], rn);
    }
    cms_store_free(r);
  }
  printf("RESULT shm_ns=%.0f shm4_ns=%.0f redis_us=%.1f redis_wall_us=%.1f ping_wall_us=%.1f\n",
         shm, shm4, redis, redis_wall, ping_wall);
  return 0;
}
