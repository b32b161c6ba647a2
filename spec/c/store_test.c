#define _GNU_SOURCE
/* store_test.c -- unit tests of the shared rate stores (src/core/cms_store*):
 * the GCRA budget on a fake clock, the shm: file (creation, refusals, a file
 * truncated or replaced while mapped, the shared penalty), processes drawing
 * from one file while one of them is killed with SIGKILL, and the redis://
 * store against a redis-server this test starts on a free port and stops by
 * its PID (skipped, and said so, when redis-server is not installed).
 * Built and run by `make test` (plain and sanitized).  No Lua here. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "cms_pace.h"
#include "cms_store.h"
#include "cms_store_redis.h"
#include "cms_store_shm.h"

static int passed, failed;
#define CHECK(cond, ...)                                  \
  do {                                                    \
    if (cond) passed++;                                   \
    else {                                                \
      failed++;                                           \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                       \
      fputc('\n', stderr);                                \
    }                                                     \
  } while (0)

static char dir[256];

static void path_in(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static cms_rate *open_url(const char *url, const char *appkey, double rate, double pen,
                          char *err, size_t errlen) {
  cms_store_opts o;
  memset(&o, 0, sizeof o);
  o.url = url;
  o.appkey = appkey;
  o.rate = rate;
  o.penalty_s = pen;
  o.timeout_ms = 50;
  return cms_store_open(&o, err, errlen);
}

static cms_rate *open_shm(const char *file, const char *appkey, double rate, double pen,
                          char *err, size_t errlen) {
  char url[512];
  snprintf(url, sizeof url, "shm:%s", file);
  return open_url(url, appkey, rate, pen, err, errlen);
}

/* the most calls in any window [t, t + w) of a sorted list of times */
static int max_in_window(const long long *t, int n, long long w) {
  int i, j = 0, best = 0;
  for (i = 0; i < n; i++) {
    while (t[i] - t[j] >= w) j++;
    if (i - j + 1 > best) best = i - j + 1;
  }
  return best;
}

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

/* ---- GCRA on a fake clock: two clients of one file take turns ---- */
static void test_budget_fake_clock(void) {
  char f[300], err[256];
  cms_rate *a, *b;
  static long long times[4000];
  int n = 0, i;
  long long now = cms_now_ms() + 100000, end, t_ns, tau_ns;  /* after any real draw */
  path_in(f, sizeof f, "budget");
  a = open_shm(f, "app", 100, 10, err, sizeof err);
  b = open_shm(f, "app", 100, 10, err, sizeof err);
  CHECK(a && b, "open: %s", err);
  if (!a || !b) return;
  cms_store_gcra(100, &t_ns, &tau_ns);
  CHECK(t_ns == 1075000000LL / 99 && tau_ns == t_ns, "rate 100: T %lld tau %lld", t_ns, tau_ns);
  CHECK(a->ops->take(a, now) == 0 && b->ops->take(b, now) == 0, "a burst of 2 at once");
  {
    long w = a->ops->take(a, now);
    CHECK(w >= 10 && w <= 11, "the third waits one step (10.9 ms): %ld", w);
  }
  /* both poll every ms for 20 s: every window of 1.075 s holds at most 100 calls */
  now += 1;
  end = now + 20000;
  for (; now < end && n < 4000; now++) {
    for (i = 0; i < 3; i++) {
      cms_rate *r = (now + i) % 2 ? a : b;
      if (r->ops->take(r, now) == 0) times[n++] = now;
    }
  }
  CHECK(max_in_window(times, n, 1075) <= 100, "max %d calls in 1.075 s", max_in_window(times, n, 1075));
  CHECK(max_in_window(times, n, 1000) <= 94, "max %d calls in 1 s", max_in_window(times, n, 1000));
  CHECK(n >= 20 * 92 && n <= 20 * 92.1 + 3, "sustained %d calls in 20 s (92.1/s)", n);
  CHECK(!strcmp(a->ops->state(a), "ok") && a->fallbacks == 0, "state %s", a->ops->state(a));
  /* a client that believes 50 spends twice the time per call: the pair never beats 100 */
  {
    cms_rate *slow = open_shm(f, "app", 50, 10, err, sizeof err);
    int k = 0;
    CHECK(slow != NULL, "open: %s", err);
    n = 0;
    end = now + 10000;
    for (; slow && now < end && n < 4000; now++) {
      cms_rate *r = (k++ % 2) ? a : slow;
      if (r->ops->take(r, now) == 0) times[n++] = now;
    }
    CHECK(max_in_window(times, n, 1075) <= 100, "mixed rates: max %d in 1.075 s",
          max_in_window(times, n, 1075));
    cms_store_free(slow);
  }
  cms_store_free(a);
  cms_store_free(b);
}

/* ---- the penalty is shared, and a client keeps its own ---- */
static void test_penalty_shared(void) {
  char f[300], err[256];
  cms_rate *a, *b;
  long long now = cms_now_ms() + 200000;
  unsigned long long draws, pens;
  path_in(f, sizeof f, "penalty");
  a = open_shm(f, "app", 100, 2, err, sizeof err);
  b = open_shm(f, "app", 100, 2, err, sizeof err);
  CHECK(a && b, "open: %s", err);
  if (!a || !b) return;
  CHECK(b->ops->take(b, now) == 0, "b draws");
  a->ops->penalty(a, now);
  {
    long w = b->ops->take(b, now + 500);
    CHECK(w == 1000, "b waits for a's penalty, asking again after at most 1 s: %ld", w);
    w = b->ops->take(b, now + 1500);
    CHECK(w == 500, "b waits the rest: %ld", w);
    CHECK(a->ops->take(a, now + 1999) == 1, "a waits its own penalty");
    CHECK(b->ops->take(b, now + 2000) == 0 && a->ops->take(a, now + 2000) == 0,
          "both go when it has passed");
  }
  /* a later, shorter penalty does not cut a longer one short */
  {
    cms_rate *c = open_shm(f, "app", 100, 0.1, err, sizeof err);
    b->ops->penalty(b, now + 3000);
    if (c) c->ops->penalty(c, now + 3500);
    CHECK(c && a->ops->take(a, now + 3700) > 0, "the 2 s penalty still holds");
    cms_store_free(c);
  }
  CHECK(cms_store_shm_counts(a, &draws, &pens) == 0 && pens == 3 && draws == 3,
        "counts: %llu draws, %llu penalties", draws, pens);
  cms_store_free(a);
  cms_store_free(b);
}

/* ---- refusals from new: never a crash ---- */
static void write_file(const char *f, const void *data, size_t n) {
  int fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd >= 0) {
    if (write(fd, data, n) != (ssize_t)n) perror("write");
    close(fd);
  }
}

static void test_refusals(void) {
  char f[300], g[300], err[256];
  static char junk[CMS_SHM_SIZE];
  cms_rate *r;
  struct stat st;
  memset(junk, 'x', sizeof junk);
  path_in(f, sizeof f, "created");
  r = open_shm(f, "app", 100, 10, err, sizeof err);
  CHECK(r && stat(f, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == CMS_SHM_SIZE,
        "created 0600, %d bytes", CMS_SHM_SIZE);
  cms_store_free(r);
  r = open_shm(f, "other-app", 100, 10, err, sizeof err);
  CHECK(!r && strstr(err, "another appkey"), "another appkey: %s", err);
  {  /* no secret and no appkey in the file */
    char buf[CMS_SHM_SIZE];
    int fd = open(f, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
    if (fd >= 0) close(fd);
    CHECK(n == CMS_SHM_SIZE && !memmem(buf, sizeof buf, "app", 3), "the appkey is only hashed");
  }
  path_in(g, sizeof g, "junk");
  write_file(g, junk, sizeof junk);
  r = open_shm(g, "app", 100, 10, err, sizeof err);
  CHECK(!r && strstr(err, "not a commsease rate store"), "junk: %s", err);
  write_file(g, junk, 100);
  r = open_shm(g, "app", 100, 10, err, sizeof err);
  CHECK(!r && strstr(err, "100 bytes"), "short: %s", err);
  write_file(g, "", 0);
  r = open_shm(g, "app", 100, 10, err, sizeof err);
  CHECK(!r && strstr(err, "0 bytes"), "empty: %s", err);
  {  /* a store of another format version */
    char buf[CMS_SHM_SIZE];
    int fd = open(f, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
    if (fd >= 0) close(fd);
    if (n == CMS_SHM_SIZE) {
      buf[8] = 9;
      write_file(g, buf, sizeof buf);
    }
    r = open_shm(g, "app", 100, 10, err, sizeof err);
    CHECK(!r && strstr(err, "format 9"), "version: %s", err);
  }
  r = open_shm(dir, "app", 100, 10, err, sizeof err);
  CHECK(!r && strstr(err, "not a regular file"), "a directory: %s", err);
  chmod(f, 0666);
  r = open_shm(f, "app", 100, 10, err, sizeof err);
  CHECK(!r && strstr(err, "writable by every user"), "world-writable: %s", err);
  chmod(f, 0660);
  r = open_shm(f, "app", 100, 10, err, sizeof err);
  CHECK(r != NULL, "group-writable is fine: %s", r ? "" : err);
  cms_store_free(r);
  path_in(g, sizeof g, "fifo");
  if (mkfifo(g, 0600) == 0) {
    r = open_shm(g, "app", 100, 10, err, sizeof err);
    CHECK(!r && strstr(err, "not a regular file"), "a fifo (and no hang): %s", err);
  }
  path_in(g, sizeof g, "no/such/dir");
  r = open_shm(g, "app", 100, 10, err, sizeof err);
  CHECK(!r && strstr(err, "cannot create"), "no directory: %s", err);
  r = open_url("shm:relative/file", "app", 100, 10, err, sizeof err);
  CHECK(!r && strstr(err, "absolute"), "relative: %s", err);
  r = open_url("rediss://127.0.0.1:6379", "app", 100, 10, err, sizeof err);
  CHECK(!r && strstr(err, "TLS"), "rediss: %s", err);
  r = open_url("memcached://x", "app", 100, 10, err, sizeof err);
  CHECK(!r && strstr(err, "shm:/ or redis://"), "scheme: %s", err);
  r = open_url("redis://127.0.0.1:99999", "app", 100, 10, err, sizeof err);
  CHECK(!r && strstr(err, "port"), "port: %s", err);
  r = open_url("redis://user@127.0.0.1", "app", 100, 10, err, sizeof err);
  CHECK(!r && strstr(err, "password"), "userinfo: %s", err);
  r = open_url("redis://:hunter2@127.0.0.1:1/x", "app", 100, 10, err, sizeof err);
  CHECK(!r && strstr(err, "database") && !strstr(err, "hunter2"), "db, no password: %s", err);
}

/* ---- a file truncated, then replaced, while mapped ---- */
static void test_truncated_while_mapped(void) {
  char f[300], err[256];
  cms_rate *r;
  long long now = cms_now_ms() + 300000;
  int i, go = 0;
  path_in(f, sizeof f, "truncated");
  r = open_shm(f, "app", 100, 10, err, sizeof err);
  CHECK(r != NULL, "open: %s", err);
  if (!r) return;
  CHECK(r->ops->take(r, now) == 0, "draws");
  CHECK(truncate(f, 0) == 0, "truncate");
  for (i = 0; i < 200; i++) go += r->ops->take(r, now + i * 5) == 0;  /* no SIGBUS */
  CHECK(!strcmp(r->ops->state(r), "unreachable"), "state %s", r->ops->state(r));
  CHECK(r->fallbacks > 0 && go == (int)r->fallbacks, "local pacing served %d draws", go);
  CHECK(go >= 20 && go <= 26, "at a quarter of the budget for 1 s: %d", go);
  r->ops->penalty(r, now + 1000);
  CHECK(r->ops->take(r, now + 1001) > 0, "its own penalty holds without the store");
  unlink(f);  /* deleted: the next look at the path makes a new file */
  CHECK(r->ops->take(r, now + 12000) == 0 && !strcmp(r->ops->state(r), "ok"),
        "back on a new file: %s", r->ops->state(r));
  {
    cms_rate *o = open_shm(f, "app", 100, 10, err, sizeof err);
    unsigned long long d = 0, p = 0;
    CHECK(o && cms_store_shm_counts(o, &d, &p) == 0 && d == 1, "one budget again: %llu", d);
    cms_store_free(o);
  }
  cms_store_free(r);
}

/* ---- times from an earlier boot are dropped ---- */
static void test_boot_reset(void) {
  char f[300], err[256];
  cms_rate *r;
  long long now = cms_now_ms();
  path_in(f, sizeof f, "boot");
  r = open_shm(f, "app", 1, 600, err, sizeof err);
  CHECK(r != NULL, "open: %s", err);
  if (!r) return;
  r->ops->penalty(r, now);  /* 10 minutes */
  cms_store_free(r);
  {  /* pretend the file comes from another boot */
    int fd = open(f, O_RDWR);
    long long other = 12345;
    if (fd < 0 || pwrite(fd, &other, sizeof other, 128) != (ssize_t)sizeof other)
      perror("pwrite");
    if (fd >= 0) close(fd);
  }
  r = open_shm(f, "app", 1, 600, err, sizeof err);
  CHECK(r && r->ops->take(r, now + 1) == 0, "a penalty of another boot is forgotten");
  cms_store_free(r);
}

/* ---- processes: one budget, and SIGKILL wedges nobody ---- */
#define PROCS 4
#define RUN_MS 3000
#define MAXT 2000

typedef struct shared_log {
  long long t[PROCS][MAXT];
  int n[PROCS];
} shared_log;

static void child(const char *f, shared_log *log, int me) {
  char err[256];
  cms_rate *r = open_shm(f, "fleet", 100, 10, err, sizeof err);
  long long start = cms_now_ms();
  if (!r) _exit(2);
  while (cms_now_ms() - start < RUN_MS && log->n[me] < MAXT) {
    long long now = cms_now_ms();
    long w = r->ops->take(r, now);
    if (w == 0) log->t[me][__atomic_fetch_add(&log->n[me], 1, __ATOMIC_RELAXED)] = now;
    else cms_sleep_ms(w > 2 ? 2 : w);  /* poll often: stress the CAS */
  }
  cms_store_free(r);
  _exit(0);
}

static void test_processes_and_kill(void) {
  char f[300];
  shared_log *log = mmap(NULL, sizeof *log, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                         -1, 0);
  pid_t pids[PROCS], victim;
  static long long all[PROCS * MAXT];
  int i, n = 0, status, victim_n, after_kill = 0;
  long long start, kill_at;
  path_in(f, sizeof f, "fleet");
  if (log == MAP_FAILED) return;
  memset(log, 0, sizeof *log);
  start = cms_now_ms();
  fflush(stdout);  /* no child writes a copy of what is buffered */
  for (i = 0; i < PROCS; i++) {
    pids[i] = fork();
    if (pids[i] == 0) child(f, log, i);
  }
  /* a fifth process is killed mid-draw, over and over, at random instants */
  for (i = 0; i < 20; i++) {
    fflush(stdout);
    victim = fork();
    if (victim == 0) {
      char err[256];
      cms_rate *r = open_shm(f, "fleet", 1e6, 10, err, sizeof err);
      for (;;) if (r) r->ops->take(r, cms_now_ms());
    }
    cms_sleep_ms(5 + (long)(rand() % 20));
    kill(victim, SIGKILL);
    waitpid(victim, NULL, 0);
  }
  cms_sleep_ms(1000);
  kill_at = cms_now_ms();
  victim_n = log->n[0];
  kill(pids[0], SIGKILL);  /* one of the fleet, in the middle of its run */
  for (i = 0; i < PROCS; i++) waitpid(pids[i], &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the survivors finished");
  for (i = 0; i < PROCS; i++) {
    int k;
    for (k = 0; k < log->n[i]; k++) {
      all[n++] = log->t[i][k];
      if (i && log->t[i][k] > kill_at + 100) after_kill++;
    }
  }
  qsort(all, (size_t)n, sizeof all[0], cmp_ll);
  CHECK(max_in_window(all, n, 1075) <= 100, "%d processes: max %d calls in 1.075 s", PROCS,
        max_in_window(all, n, 1075));
  /* killed processes draw at a million a second: they take turns on the same
   * time line, so they may have taken calls; the fleet still holds its budget
   * and, once the victim is gone, the survivors use the whole of it */
  {
    double secs = (double)(start + RUN_MS - (kill_at + 100)) / 1000;
    CHECK(after_kill >= (int)(secs * 92.1 * 0.85), "after SIGKILL the other 3 drew %d in %.2f s "
          "(full budget: %.0f)", after_kill, secs, secs * 92.1);
  }
  CHECK(victim_n > 0, "the victim had drawn (%d)", victim_n);
  munmap(log, sizeof *log);
}

/* ---- the cost of one draw ---- */
static void test_shm_cost(void) {
  char f[300], err[256];
  cms_rate *r;
  struct timespec a, b;
  int i, n = 200000;
  double ns;
  path_in(f, sizeof f, "cost");
  r = open_shm(f, "cost", 1e6, 10, err, sizeof err);
  if (!r) return;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (i = 0; i < n; i++) r->ops->take(r, (long long)i);  /* 1e6/s: mostly go */
  clock_gettime(CLOCK_MONOTONIC, &b);
  ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / n;
  printf("store-test: shm draw %.0f ns (one process, no contention; loaded machine)\n", ns);
  CHECK(ns < 20000, "a shm draw is cheap: %.0f ns", ns);
  cms_store_free(r);
}

/* ---- redis:// against a real redis-server ---- */
static int free_port(void) {
  struct sockaddr_in a;
  socklen_t l = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &l) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

static pid_t start_redis_pass(int port, const char *pass) {
  char p[16];
  pid_t pid;
  int i;
  snprintf(p, sizeof p, "%d", port);
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 1);
    if (pass)
      execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", dir, "--requirepass", pass, (char *)NULL);
    else
      execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", dir, (char *)NULL);
    _exit(127);
  }
  for (i = 0; i < 200; i++) {  /* up to 2 s for it to listen */
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    if (ok) return pid;
    if (waitpid(pid, NULL, WNOHANG) == pid) return -1;
    cms_sleep_ms(10);
  }
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  return -1;
}

static pid_t start_redis(int port) { return start_redis_pass(port, NULL); }

static void stop_redis(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

static void test_redis(void) {
  char url[128], err[256];
  int port = free_port(), i, go;
  pid_t pid;
  cms_rate *a, *b;
  long long t0;
  if (system("command -v redis-server >/dev/null 2>&1") != 0) {
    printf("store-test: redis-server not installed: redis tests SKIPPED\n");
    return;
  }
  pid = start_redis(port);
  CHECK(pid > 0, "redis-server started on %d", port);
  if (pid <= 0) return;
  snprintf(url, sizeof url, "redis://127.0.0.1:%d/3", port);
  a = open_url(url, "app", 100, 1, err, sizeof err);
  b = open_url(url, "app", 100, 1, err, sizeof err);
  CHECK(a && b && !strcmp(a->ops->state(a), "ok"), "open: %s", a ? a->ops->state(a) : err);
  if (!a || !b) goto out;
  /* one budget: two clients polling for 2 s draw about 2 x 94 calls together */
  {
    static long long times[1000];
    int n = 0;
    t0 = cms_now_ms();
    while (cms_now_ms() - t0 < 2000 && n < 1000) {
      long long now = cms_now_ms();
      long wa = a->ops->take(a, now), wb;
      if (wa == 0) times[n++] = now;
      wb = b->ops->take(b, now);
      if (wb == 0) times[n++] = now;
      if (wa && wb) cms_sleep_ms(1);
    }
    CHECK(n >= 140 && n <= 188, "2 clients, 2 s: %d calls (92.1/s shared; alone each would draw 184)", n);
    CHECK(max_in_window(times, n, 1000) <= 100, "max %d in 1 s", max_in_window(times, n, 1000));
  }
  /* the penalty is shared through a key with an expiry */
  a->ops->penalty(a, cms_now_ms());
  {
    long w = b->ops->take(b, cms_now_ms());
    CHECK(w >= 900 && w <= 1000, "b waits a's penalty: %ld", w);
    cms_sleep_ms(1050);
    w = b->ops->take(b, cms_now_ms());
    CHECK(w == 0, "then goes: %ld", w);
  }
  /* NOSCRIPT: the script cache flushed, EVAL loads it again */
  {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "redis-cli -p %d SCRIPT FLUSH >/dev/null", port);
    if (system(cmd) == 0) {
      cms_sleep_ms(50);
      CHECK(b->ops->take(b, cms_now_ms()) >= 0 && !strcmp(b->ops->state(b), "ok"),
            "after SCRIPT FLUSH: %s", b->ops->state(b));
    }
    snprintf(cmd, sizeof cmd, "redis-cli -p %d -n 3 --raw KEYS '*' | sort | tr '\\n' ' '", port);
    {
      FILE *p = popen(cmd, "r");
      char keys[512] = "";
      size_t k = p ? fread(keys, 1, sizeof keys - 1, p) : 0;
      if (p) pclose(p);
      keys[k] = 0;
      CHECK(strstr(keys, "commsease:{app}:tat") && strstr(keys, "commsease:{app}:peers"),
            "keys named by the appkey, in db 3: %s", keys);
    }
  }
  /* draw cost on loopback */
  {
    struct timespec x, y;
    cms_rate *c = open_url(url, "cost", 1e6, 1, err, sizeof err);
    int n = 2000;
    clock_gettime(CLOCK_MONOTONIC, &x);
    for (i = 0; c && i < n; i++) c->ops->take(c, cms_now_ms());
    clock_gettime(CLOCK_MONOTONIC, &y);
    printf("store-test: redis draw %.1f us (loopback, loaded machine)\n",
           ((double)(y.tv_sec - x.tv_sec) * 1e6 + (double)(y.tv_nsec - x.tv_nsec) / 1e3) / n);
    cms_store_free(c);
  }
  /* Redis gone: draws go on at a share of the budget, quickly, and say so */
  stop_redis(pid);
  pid = -1;
  t0 = cms_now_ms();
  go = 0;
  while (cms_now_ms() - t0 < 1500) {
    if (a->ops->take(a, cms_now_ms()) == 0) go++;
    else cms_sleep_ms(1);
  }
  CHECK(!strcmp(a->ops->state(a), "unreachable"), "state %s", a->ops->state(a));
  CHECK(a->fallbacks == (unsigned long)go && go >= 35 && go <= 80,
        "local pacing at half (2 peers were seen): %d draws in 1.5 s, %lu fallbacks", go,
        a->fallbacks);
  /* back: the store is tried again and used */
  pid = start_redis(port);
  CHECK(pid > 0, "redis-server again on %d", port);
  cms_sleep_ms(1000);
  a->ops->take(a, cms_now_ms());
  CHECK(!strcmp(a->ops->state(a), "ok"), "back: %s", a->ops->state(a));
out:
  cms_store_free(a);
  cms_store_free(b);
  if (pid > 0) stop_redis(pid);
}

/* a server with a password: the right one is used, a wrong one is "unreachable" */
static void test_redis_auth(void) {
  char url[160], err[256];
  int port = free_port();
  pid_t pid;
  cms_rate *r;
  if (system("command -v redis-server >/dev/null 2>&1") != 0) return;
  pid = start_redis_pass(port, "s3cret-pass");
  CHECK(pid > 0, "redis-server with a password on %d", port);
  if (pid <= 0) return;
  snprintf(url, sizeof url, "redis://:s3cret-pass@127.0.0.1:%d/1", port);
  r = open_url(url, "app", 100, 1, err, sizeof err);
  CHECK(r && !strcmp(r->ops->state(r), "ok") && r->ops->take(r, cms_now_ms()) == 0 &&
        !strcmp(r->ops->state(r), "ok"), "AUTH with the password: %s", r ? r->ops->state(r) : err);
  cms_store_free(r);
  snprintf(url, sizeof url, "redis://default:s3cret-pass@127.0.0.1:%d", port);
  r = open_url(url, "app", 100, 1, err, sizeof err);
  CHECK(r && !strcmp(r->ops->state(r), "ok"), "AUTH user password: %s", r ? r->ops->state(r) : err);
  cms_store_free(r);
  snprintf(url, sizeof url, "redis://:wrong@127.0.0.1:%d", port);
  r = open_url(url, "app", 100, 1, err, sizeof err);
  CHECK(r && !strcmp(r->ops->state(r), "unreachable") && r->ops->take(r, cms_now_ms()) == 0,
        "a wrong password: unreachable, draws go on");
  cms_store_free(r);
  snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
  r = open_url(url, "app", 100, 1, err, sizeof err);
  CHECK(r && r->ops->take(r, cms_now_ms()) == 0 && !strcmp(r->ops->state(r), "unreachable"),
        "no password (NOAUTH): unreachable");
  cms_store_free(r);
  stop_redis(pid);
}

/* bounded: a server that accepts and never answers, and one that is not there */
static void test_redis_timeouts(void) {
  struct sockaddr_in addr;
  socklen_t l = sizeof addr;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  char url[128], err[256];
  cms_rate *r;
  long long t0;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) || listen(fd, 8) ||
      getsockname(fd, (struct sockaddr *)&addr, &l))
    return;
  snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(addr.sin_port));
  r = open_url(url, "app", 100, 1, err, sizeof err);
  CHECK(r != NULL, "open: %s", err);
  if (r) {
    long w;
    long long took;
    t0 = cms_now_ms();
    w = r->ops->take(r, cms_now_ms());
    took = cms_now_ms() - t0;
    CHECK(w == 0 && r->fallbacks == 1 && !strcmp(r->ops->state(r), "unreachable"),
          "a silent server: local pacing (%ld, %s)", w, r->ops->state(r));
    CHECK(took >= 45 && took < 400, "after the 50 ms command timeout: %lld ms", took);
    cms_store_free(r);
  }
  close(fd);
  snprintf(url, sizeof url, "redis://127.0.0.1:%d", free_port());
  t0 = cms_now_ms();
  r = open_url(url, "app", 100, 1, err, sizeof err);
  CHECK(r && !strcmp(r->ops->state(r), "unreachable") && r->ops->take(r, cms_now_ms()) == 0,
        "nobody listening: unreachable, draws go on");
  CHECK(cms_now_ms() - t0 < 200, "at once: %lld ms", cms_now_ms() - t0);
  cms_store_free(r);
}

int main(void) {
  char cmd[300];
  snprintf(dir, sizeof dir, "/tmp/cms-store-test.%ld", (long)getpid());
  if (mkdir(dir, 0700)) {
    perror("mkdir");
    return 1;
  }
  srand((unsigned)getpid());
  test_budget_fake_clock();
  test_penalty_shared();
  test_refusals();
  test_truncated_while_mapped();
  test_boot_reset();
  test_shm_cost();
  test_processes_and_kill();
  test_redis_timeouts();
  test_redis();
  test_redis_auth();
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  printf("store-test: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
