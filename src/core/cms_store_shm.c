/* cms_store_shm.c -- the shm: rate store (see cms_store_shm.h). */
#include "cms_store_shm.h"
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SHM_MAGIC "cmsrate\n"
#define SANE_AHEAD_NS (3600LL * 1000000000LL) /* a theoretical arrival time further ahead is garbage */

_Static_assert(__atomic_always_lock_free(sizeof(int64_t), 0), "64-bit atomics must be lock-free");

typedef struct shm_file {
  char magic[8];
  uint32_t version, size;
  uint64_t appkey_hash;
  unsigned char pad0[128 - 24];
  /* changed only through __atomic builtins from here on */
  int64_t boot;           /* hash of /proc/sys/kernel/random/boot_id at the last reset */
  unsigned char pad1[64 - 8];
  int64_t tat_ns;         /* GCRA theoretical arrival time */
  uint64_t draws;         /* calls drawn, on tat's cache line: one line moves per draw */
  unsigned char pad2[64 - 16];
  int64_t penalty_until_ns;
  uint64_t penalties;
} shm_file;

_Static_assert(sizeof(shm_file) <= CMS_SHM_SIZE, "header fits the file");

typedef struct shm_store {
  cms_store_base b;
  char *path;
  uint64_t appkey_hash;
  int64_t boot;
  int fd;                 /* kept open for the size check */
  shm_file *map;
  dev_t dev;
  ino_t ino;
  long long check_at;     /* next look at the path (ms) */
  int closed;
} shm_store;

static int64_t boot_hash(void) {
  char buf[64];
  ssize_t n;
  int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  n = read(fd, buf, sizeof buf);
  close(fd);
  if (n <= 0) return 0;
  return (int64_t)(cms_store_hash(buf, (size_t)n) >> 1) | 1;
}

static void fill_header(shm_file *f, uint64_t appkey_hash, int64_t boot) {
  memset(f, 0, sizeof *f);
  memcpy(f->magic, SHM_MAGIC, 8);
  f->version = CMS_SHM_VERSION;
  f->size = CMS_SHM_SIZE;
  f->appkey_hash = appkey_hash;
  f->boot = boot;
}

/* Creates the file whole under a temporary name and links it into place, so
 * no process ever sees it half written; 0 also when another process won. */
static int create_file(const shm_store *s, char *err, size_t errlen) {
  static const unsigned char zero[CMS_SHM_SIZE];
  size_t n = strlen(s->path) + 48;
  char *tmp = malloc(n);
  shm_file h;
  int fd, rc = 0;
  struct timespec ts;
  if (!tmp) return snprintf(err, errlen, "out of memory"), -1;
  clock_gettime(CLOCK_REALTIME, &ts);
  snprintf(tmp, n, "%s.%ld.%ld.tmp", s->path, (long)getpid(), (long)ts.tv_nsec);
  fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    snprintf(err, errlen, "cannot create %s: %s", s->path, strerror(errno));
    free(tmp);
    return -1;
  }
  fill_header(&h, s->appkey_hash, s->boot);
  if (fchmod(fd, 0600) || pwrite(fd, zero, sizeof zero, 0) != (ssize_t)sizeof zero ||
      pwrite(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) {
    snprintf(err, errlen, "cannot create %s: %s", s->path, strerror(errno));
    rc = -1;
  } else if (link(tmp, s->path) && errno != EEXIST) {
    snprintf(err, errlen, "cannot create %s: link: %s", s->path, strerror(errno));
    rc = -1;
  }
  close(fd);
  unlink(tmp);
  free(tmp);
  return rc;
}

/* opens and maps the file at s->path, creating it when absent, and checks it
 * is ours; fills *fd_out, *map_out, dev and ino */
static int map_file(shm_store *s, int *fd_out, shm_file **map_out, struct stat *st,
                    char *err, size_t errlen) {
  int tries, fd = -1;
  void *m;
  shm_file *f;
  for (tries = 0; tries < 3; tries++) {
    fd = open(s->path, O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd >= 0) break;
    if (errno == EISDIR) {
      snprintf(err, errlen, "%s is not a regular file, so not a commsease rate store", s->path);
      return -1;
    }
    if (errno != ENOENT) {
      snprintf(err, errlen, "cannot open %s: %s", s->path, strerror(errno));
      return -1;
    }
    if (create_file(s, err, errlen)) return -1;
  }
  if (fd < 0) {
    snprintf(err, errlen, "cannot open %s: it keeps disappearing", s->path);
    return -1;
  }
  if (fstat(fd, st)) {
    snprintf(err, errlen, "cannot stat %s: %s", s->path, strerror(errno));
    close(fd);
    return -1;
  }
  if (!S_ISREG(st->st_mode)) {
    snprintf(err, errlen, "%s is not a regular file, so not a commsease rate store", s->path);
    close(fd);
    return -1;
  }
  if (st->st_mode & S_IWOTH) {
    snprintf(err, errlen, "%s is writable by every user, who could stop every send for an "
             "hour: chmod o-w it (it is made 0600)", s->path);
    close(fd);
    return -1;
  }
  if (st->st_size != CMS_SHM_SIZE) {
    snprintf(err, errlen, "%s is %lld bytes, not a commsease rate store of %d bytes "
             "(truncated, or another file)", s->path, (long long)st->st_size, CMS_SHM_SIZE);
    close(fd);
    return -1;
  }
  m = mmap(NULL, CMS_SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    snprintf(err, errlen, "cannot map %s: %s", s->path, strerror(errno));
    close(fd);
    return -1;
  }
  f = m;
  if (memcmp(f->magic, SHM_MAGIC, 8) != 0 || f->size != CMS_SHM_SIZE) {
    snprintf(err, errlen, "%s is not a commsease rate store", s->path);
  } else if (f->version != CMS_SHM_VERSION) {
    snprintf(err, errlen, "%s is a commsease rate store of format %u; this module reads "
             "format %d", s->path, (unsigned)f->version, CMS_SHM_VERSION);
  } else if (f->appkey_hash != s->appkey_hash) {
    snprintf(err, errlen, "%s is the rate store of another appkey (give each appkey its "
             "own file)", s->path);
  } else {
    int64_t b = __atomic_load_n(&f->boot, __ATOMIC_ACQUIRE);
    /* times from an earlier boot mean nothing now: whoever swaps the boot in resets them */
    if (s->boot && b != s->boot &&
        __atomic_compare_exchange_n(&f->boot, &b, s->boot, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
      __atomic_store_n(&f->tat_ns, 0, __ATOMIC_RELEASE);
      __atomic_store_n(&f->penalty_until_ns, 0, __ATOMIC_RELEASE);
    }
    *fd_out = fd;
    *map_out = f;
    return 0;
  }
  munmap(m, CMS_SHM_SIZE);
  close(fd);
  return -1;
}

static void unmap(shm_store *s) {
  if (s->map) munmap(s->map, CMS_SHM_SIZE);
  if (s->fd >= 0) close(s->fd);
  s->map = NULL;
  s->fd = -1;
}

/* swaps the mapping for the file now at the path; keeps the old on failure */
static int remap(shm_store *s) {
  char err[256];
  struct stat st;
  int fd;
  shm_file *f;
  if (map_file(s, &fd, &f, &st, err, sizeof err)) return -1;
  unmap(s);
  s->fd = fd;
  s->map = f;
  s->dev = st.st_dev;
  s->ino = st.st_ino;
  return 0;
}

/* the mapping still has its whole file behind it (no SIGBUS) and its magic */
static int usable(const shm_store *s) {
  struct stat st;
  if (!s->map || fstat(s->fd, &st) || st.st_size < CMS_SHM_SIZE) return 0;
  return memcmp(s->map->magic, SHM_MAGIC, 8) == 0;
}

/* once a second: follow a file replaced at the path, retry a lost one */
static void check_path(shm_store *s, long long now) {
  struct stat st;
  s->check_at = now + CMS_STORE_RETRY_MS;
  if (!s->b.unreachable && stat(s->path, &st) == 0 && st.st_dev == s->dev &&
      st.st_ino == s->ino)
    return;
  if (remap(s) == 0 && usable(s)) {
    if (s->b.unreachable) cms_store_back(&s->b);
  } else if (!s->b.unreachable && !usable(s)) {
    cms_store_lost(&s->b, now);
  }
}

static long shm_take(cms_rate *r, long long now) {
  shm_store *s = (shm_store *)r;
  shm_file *f;
  int64_t now_ns = (int64_t)now * 1000000, pu, tat, base;
  if (now < s->b.penalty_until) return (long)(s->b.penalty_until - now);
  if (s->closed) return cms_store_local_take(&s->b, now);
  if (now >= s->check_at) check_path(s, now);
  if (!s->b.unreachable && !usable(s)) cms_store_lost(&s->b, now);
  if (s->b.unreachable) return cms_store_local_take(&s->b, now);
  f = s->map;
  pu = __atomic_load_n(&f->penalty_until_ns, __ATOMIC_ACQUIRE);
  if (pu > now_ns) {
    if (pu - now_ns <= CMS_STORE_MAX_PENALTY_MS * 1000000)
      return cms_store_wait_ms(pu - now_ns);
    __atomic_compare_exchange_n(&f->penalty_until_ns, &pu, 0, 0, __ATOMIC_ACQ_REL,
                                __ATOMIC_ACQUIRE);
  }
  if (s->b.limit <= 0) {
    __atomic_add_fetch(&f->draws, 1, __ATOMIC_RELAXED);
    return 0;
  }
  tat = __atomic_load_n(&f->tat_ns, __ATOMIC_ACQUIRE);
  for (;;) {
    if (tat - now_ns > SANE_AHEAD_NS) base = now_ns;  /* garbage: start afresh */
    else base = tat > now_ns ? tat : now_ns;
    if (base - now_ns > s->b.tau_ns) return cms_store_wait_ms(base - now_ns - s->b.tau_ns);
    if (__atomic_compare_exchange_n(&f->tat_ns, &tat, base + s->b.t_ns, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
      __atomic_add_fetch(&f->draws, 1, __ATOMIC_RELAXED);
      return 0;
    }
    /* lost the race: tat holds the winner's value, try again */
  }
}

static void shm_penalty(cms_rate *r, long long now) {
  shm_store *s = (shm_store *)r;
  int64_t until, cur;
  s->b.penalty_until = now + s->b.penalty_ms;
  if (s->b.unreachable) cms_pace_penalty(&s->b.local, now);
  if (s->closed || s->b.unreachable || !usable(s)) return;
  until = (int64_t)now * 1000000 + (int64_t)s->b.penalty_ms * 1000000;
  cur = __atomic_load_n(&s->map->penalty_until_ns, __ATOMIC_ACQUIRE);
  while (cur < until &&
         !__atomic_compare_exchange_n(&s->map->penalty_until_ns, &cur, until, 0,
                                      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {}
  __atomic_add_fetch(&s->map->penalties, 1, __ATOMIC_RELAXED);
}

static const char *shm_state(const cms_rate *r) {
  const shm_store *s = (const shm_store *)r;
  return s->b.unreachable || s->closed ? "unreachable" : "ok";
}

static void shm_close(cms_rate *r) {
  shm_store *s = (shm_store *)r;
  if (s->closed) return;
  s->closed = 1;
  unmap(s);
  free(s->path);
  s->path = NULL;
}

static const cms_rate_ops shm_ops = {shm_take, shm_penalty, shm_state, shm_close};

int cms_store_shm_counts(cms_rate *r, unsigned long long *draws, unsigned long long *penalties) {
  shm_store *s = (shm_store *)r;
  if (!r || r->ops != &shm_ops || s->closed || !usable(s)) return -1;
  *draws = __atomic_load_n(&s->map->draws, __ATOMIC_ACQUIRE);
  *penalties = __atomic_load_n(&s->map->penalties, __ATOMIC_ACQUIRE);
  return 0;
}

cms_rate *cms_store_shm_open(const char *path, const cms_store_opts *o, char *err,
                             size_t errlen) {
  shm_store *s;
  struct stat st;
  size_t n = strlen(path);
  if (path[0] != '/') {
    snprintf(err, errlen, "rate_store shm: needs an absolute file name (shm:/dir/file), so "
             "every process names the same file");
    return NULL;
  }
  if (n > 4000 || path[n - 1] == '/') {
    snprintf(err, errlen, "rate_store shm: is not a file name");
    return NULL;
  }
  s = calloc(1, sizeof *s);
  if (!s || !(s->path = malloc(n + 1))) {
    free(s);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  memcpy(s->path, path, n + 1);
  cms_store_base_init(&s->b, &shm_ops, o);
  s->appkey_hash = cms_store_hash(o->appkey ? o->appkey : "", o->appkey ? strlen(o->appkey) : 0);
  s->boot = boot_hash();
  s->fd = -1;
  if (map_file(s, &s->fd, &s->map, &st, err, errlen)) {
    free(s->path);
    free(s);
    return NULL;
  }
  s->dev = st.st_dev;
  s->ino = st.st_ino;
  s->check_at = 0;  /* the first draw looks at the path */
  return &s->b.rate;
}
