/* cms_store_redis.c -- the redis:// rate store (see cms_store_redis.h). */
#include "cms_store_redis.h"
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "cms_sign.h"

/* KEYS: tat, penalty, peers.  ARGV: op ("t" take, "p" penalty), T (µs), tau
 * (µs), penalty (ms), the client's id.  Answers {wait ms (0: go), peers}. */
const char cms_store_redis_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "if ARGV[1] == 'p' then\n"
    "  local ms = tonumber(ARGV[4])\n"
    "  if ms > 0 and redis.call('PTTL', KEYS[2]) < ms then\n"
    "    redis.call('SET', KEYS[2], '1', 'PX', ms)\n"
    "  end\n"
    "  return {0, 0}\n"
    "end\n"
    "redis.call('ZADD', KEYS[3], now, ARGV[5])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 10000000)\n"
    "redis.call('PEXPIRE', KEYS[3], 11000)\n"
    "local peers = redis.call('ZCARD', KEYS[3])\n"
    "local pttl = redis.call('PTTL', KEYS[2])\n"
    "if pttl > 0 then return {pttl, peers} end\n"
    "local step = tonumber(ARGV[2])\n"
    "if step <= 0 then return {0, peers} end\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
    "if tat < now then tat = now end\n"
    "local tau = tonumber(ARGV[3])\n"
    "if tat - now > tau then return {math.ceil((tat - now - tau) / 1000), peers} end\n"
    "tat = tat + step\n"
    "redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX',\n"
    "           math.ceil((tat - now) / 1000) + 1000)\n"
    "return {0, peers}\n";

typedef struct redis_store {
  cms_store_base b;
  char *host, *port, *user, *password;
  long db;
  long timeout_ms;
  int fd;
  pid_t pid;              /* the process that connected: a forked child connects anew */
  redisReader *reader;
  char sha[41];
  char *keys[3];
  char id[33];
  char t_us[24], tau_us[24], pen_ms[24];
  int closed;
} redis_store;

static void disconnect(redis_store *s) {
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  if (s->reader) redisReaderFree(s->reader);
  s->reader = NULL;
}

static int wait_fd(int fd, short events, long long deadline) {
  for (;;) {
    struct pollfd p;
    long long left = deadline - cms_now_ms();
    int rc;
    if (left <= 0) return -1;
    p.fd = fd;
    p.events = events;
    p.revents = 0;
    rc = poll(&p, 1, (int)left);
    if (rc > 0) return 0;
    if (rc == 0) return -1;
    if (errno != EINTR) return -1;
  }
}

/* one command, its reply in *out (NULL on any failure: the connection is then dropped) */
static redisReply *command(redis_store *s, int argc, const char **argv, const size_t *lens) {
  char *cmd = NULL, buf[4096];
  int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
  long long deadline = cms_now_ms() + s->timeout_ms;
  size_t off = 0;
  void *reply = NULL;
  if (len < 0 || s->fd < 0) {
    if (len >= 0) redisFreeCommand(cmd);
    return NULL;
  }
  while (off < (size_t)len) {
    ssize_t n = send(s->fd, cmd + off, (size_t)len - off, MSG_NOSIGNAL);
    if (n > 0) off += (size_t)n;
    else if (n < 0 && errno == EINTR) continue;
    else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
             wait_fd(s->fd, POLLOUT, deadline) == 0) continue;
    else break;
  }
  redisFreeCommand(cmd);
  if (off < (size_t)len) goto fail;
  for (;;) {
    ssize_t n;
    if (redisReaderGetReply(s->reader, &reply) != REDIS_OK) goto fail;
    if (reply) return reply;
    n = recv(s->fd, buf, sizeof buf, 0);
    if (n > 0) {
      if (redisReaderFeed(s->reader, buf, (size_t)n) != REDIS_OK) goto fail;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (wait_fd(s->fd, POLLIN, deadline)) goto fail;
    } else {
      goto fail;  /* closed, or an error */
    }
  }
fail:
  disconnect(s);
  return NULL;
}

/* a command whose answer must not be an error; 0 ok */
static int simple(redis_store *s, int argc, const char **argv) {
  size_t lens[4];
  int i, ok;
  redisReply *r;
  for (i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
  r = command(s, argc, argv, lens);
  if (!r) return -1;
  ok = r->type != REDIS_REPLY_ERROR;
  freeReplyObject(r);
  if (!ok) disconnect(s);
  return ok ? 0 : -1;
}

static int try_connect(redis_store *s) {
  struct addrinfo hints, *res = NULL, *ai;
  long long deadline = cms_now_ms() + s->timeout_ms;
  disconnect(s);
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  if (getaddrinfo(s->host, s->port, &hints, &res) || !res) return -1;
  for (ai = res; ai && s->fd < 0; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol), one = 1, soerr = 0;
    socklen_t sl = sizeof soerr;
    if (fd < 0) continue;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
        (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 0 &&
         getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)) {
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      s->fd = fd;
    } else {
      close(fd);
    }
  }
  freeaddrinfo(res);
  if (s->fd < 0) return -1;
  s->pid = getpid();
  s->reader = redisReaderCreate();
  if (!s->reader) {
    disconnect(s);
    return -1;
  }
  if (s->password) {
    const char *a[3] = {"AUTH", s->user ? s->user : s->password, s->password};
    if (simple(s, s->user ? 3 : 2, a)) return -1;
  }
  if (s->db) {
    char db[24];
    const char *a[2] = {"SELECT", db};
    snprintf(db, sizeof db, "%ld", s->db);
    if (simple(s, 2, a)) return -1;
  }
  return 0;
}

/* runs the script; 0 with wait and peers, -1 when the store failed */
static int script(redis_store *s, const char *op, long long *wait, long long *peers) {
  const char *argv[11];
  size_t lens[11];
  redisReply *r;
  int i, tries;
  argv[1] = s->sha;
  argv[2] = "3";
  argv[3] = s->keys[0];
  argv[4] = s->keys[1];
  argv[5] = s->keys[2];
  argv[6] = op;
  argv[7] = s->t_us;
  argv[8] = s->tau_us;
  argv[9] = s->pen_ms;
  argv[10] = s->id;
  for (tries = 0; tries < 2; tries++) {
    argv[0] = tries ? "EVAL" : "EVALSHA";
    if (tries) argv[1] = cms_store_redis_script;
    for (i = 0; i < 11; i++) lens[i] = strlen(argv[i]);
    r = command(s, 11, argv, lens);
    if (!r) return -1;
    if (r->type == REDIS_REPLY_ERROR && tries == 0 && r->str &&
        strncmp(r->str, "NOSCRIPT", 8) == 0) {
      freeReplyObject(r);
      continue;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER &&
        r->element[1]->type == REDIS_REPLY_INTEGER) {
      *wait = r->element[0]->integer;
      *peers = r->element[1]->integer;
      freeReplyObject(r);
      return 0;
    }
    freeReplyObject(r);  /* an error (a read-only replica, OOM, ...): treat as lost */
    disconnect(s);
    return -1;
  }
  return -1;
}

/* the store is usable now (connecting again once its retry time came) */
static int reachable(redis_store *s, long long now) {
  if (s->closed) return 0;
  if (s->fd >= 0 && s->pid != getpid()) disconnect(s);  /* the parent's socket, after fork */
  if (s->fd >= 0 && !s->b.unreachable) return 1;
  if (s->b.unreachable && now < s->b.retry_at) return 0;
  if (try_connect(s) == 0) return 1;
  cms_store_lost(&s->b, now);
  return 0;
}

static long redis_take(cms_rate *r, long long now) {
  redis_store *s = (redis_store *)r;
  long long wait = 0, peers = 0;
  if (now < s->b.penalty_until) return (long)(s->b.penalty_until - now);
  if (!reachable(s, now)) return cms_store_local_take(&s->b, now);
  if (script(s, "t", &wait, &peers)) {
    cms_store_lost(&s->b, now);
    return cms_store_local_take(&s->b, now);
  }
  if (s->b.unreachable) cms_store_back(&s->b);
  s->b.peers = peers > 0 ? (unsigned)(peers > 1000000 ? 1000000 : peers) : 1;
  if (wait <= 0) return 0;
  return cms_store_wait_ms(wait * 1000000);
}

static void redis_penalty(cms_rate *r, long long now) {
  redis_store *s = (redis_store *)r;
  long long wait, peers;
  s->b.penalty_until = now + s->b.penalty_ms;
  if (s->b.local_ready) cms_pace_penalty(&s->b.local, now);
  if (!reachable(s, now)) return;
  if (script(s, "p", &wait, &peers)) cms_store_lost(&s->b, now);
  else if (s->b.unreachable) cms_store_back(&s->b);
}

static const char *redis_state(const cms_rate *r) {
  const redis_store *s = (const redis_store *)r;
  return s->b.unreachable || s->closed ? "unreachable" : "ok";
}

static void redis_close(cms_rate *r) {
  redis_store *s = (redis_store *)r;
  int i;
  if (s->closed) return;
  s->closed = 1;
  disconnect(s);
  for (i = 0; i < 3; i++) free(s->keys[i]);
  free(s->host);
  free(s->port);
  free(s->user);
  if (s->password) {
    memset(s->password, 0, strlen(s->password));
    free(s->password);
  }
  s->host = s->port = s->user = s->password = NULL;
  s->keys[0] = s->keys[1] = s->keys[2] = NULL;
}

static const cms_rate_ops redis_ops = {redis_take, redis_penalty, redis_state, redis_close};

static char *dup_n(const char *p, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, p, n);
    d[n] = 0;
  }
  return d;
}

/* [[user]:password@]host[:port][/db]; 0 or -1 with err (never quoting the password) */
static int parse_url(redis_store *s, const char *rest, char *err, size_t errlen) {
  const char *at = strrchr(rest, '@'), *h = rest, *slash, *end, *colon;
  if (at) {
    const char *c = memchr(rest, ':', (size_t)(at - rest));
    if (!c) return snprintf(err, errlen, "rate_store redis://: the part before @ must be "
                            ":password or user:password"), -1;
    if (c > rest) s->user = dup_n(rest, (size_t)(c - rest));
    s->password = dup_n(c + 1, (size_t)(at - c - 1));
    if (!s->password || (c > rest && !s->user)) return snprintf(err, errlen, "out of memory"), -1;
    h = at + 1;
  }
  slash = strchr(h, '/');
  end = slash ? slash : h + strlen(h);
  if (*h == '[') {
    const char *rb = memchr(h, ']', (size_t)(end - h));
    if (!rb) return snprintf(err, errlen, "rate_store redis://: unclosed [ in the host"), -1;
    s->host = dup_n(h + 1, (size_t)(rb - h - 1));
    colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    if (rb + 1 < end && !colon)
      return snprintf(err, errlen, "rate_store redis://: junk after the host"), -1;
  } else {
    colon = memchr(h, ':', (size_t)(end - h));
    s->host = dup_n(h, (size_t)((colon ? colon : end) - h));
  }
  if (!s->host) return snprintf(err, errlen, "out of memory"), -1;
  if (!*s->host) return snprintf(err, errlen, "rate_store redis://: no host"), -1;
  if (colon) {
    char *e;
    long port = strtol(colon + 1, &e, 10);
    if (e != end || colon + 1 == end || port < 1 || port > 65535)
      return snprintf(err, errlen, "rate_store redis://: the port must be 1 to 65535"), -1;
    s->port = dup_n(colon + 1, (size_t)(end - colon - 1));
  } else {
    s->port = dup_n("6379", 4);
  }
  if (!s->port) return snprintf(err, errlen, "out of memory"), -1;
  if (slash && slash[1]) {
    char *e;
    s->db = strtol(slash + 1, &e, 10);
    if (*e || s->db < 0 || s->db > 1000000)
      return snprintf(err, errlen, "rate_store redis://: the database after / must be a "
                      "number"), -1;
  }
  return 0;
}

static char *key(const char *appkey, const char *what) {
  size_t n = strlen(appkey) + strlen(what) + 16;
  char *k = malloc(n);
  if (k) snprintf(k, n, "commsease:{%s}:%s", appkey, what);
  return k;
}

cms_rate *cms_store_redis_open(const char *rest, const cms_store_opts *o, char *err,
                               size_t errlen) {
  redis_store *s = calloc(1, sizeof *s);
  const char *appkey = o->appkey ? o->appkey : "";
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  cms_store_base_init(&s->b, &redis_ops, o);
  s->fd = -1;
  s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : CMS_STORE_TIMEOUT_MS;
  if (parse_url(s, rest, err, errlen)) goto fail;
  s->keys[0] = key(appkey, "tat");
  s->keys[1] = key(appkey, "penalty");
  s->keys[2] = key(appkey, "peers");
  if (!s->keys[0] || !s->keys[1] || !s->keys[2] ||
      cms_sha1_hex(cms_store_redis_script, strlen(cms_store_redis_script), s->sha) ||
      cms_nonce(s->id)) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  snprintf(s->t_us, sizeof s->t_us, "%lld", s->b.limit > 0 ? (s->b.t_ns + 999) / 1000 : 0);
  snprintf(s->tau_us, sizeof s->tau_us, "%lld", s->b.tau_ns / 1000);
  snprintf(s->pen_ms, sizeof s->pen_ms, "%lld", s->b.penalty_ms);
  if (try_connect(s)) cms_store_lost(&s->b, cms_now_ms());
  return &s->b.rate;
fail:
  redis_close(&s->b.rate);
  free(s);
  return NULL;
}
