/* cms_store.c -- what the shared rate stores have in common: the URL, the GCRA
 * parameters and the fallback to local pacing (see cms_store.h). */
#include "cms_store.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cms_store_redis.h"
#include "cms_store_shm.h"

cms_rate *cms_store_open(const cms_store_opts *o, char *err, size_t errlen) {
  const char *url = o->url;
  if (!url || !*url) {
    snprintf(err, errlen, "rate_store is empty");
    return NULL;
  }
  if (strncmp(url, "shm:", 4) == 0) return cms_store_shm_open(url + 4, o, err, errlen);
  if (strncmp(url, "redis://", 8) == 0) return cms_store_redis_open(url + 8, o, err, errlen);
  if (strncmp(url, "rediss://", 9) == 0) {
    snprintf(err, errlen, "rate_store: rediss:// (Redis over TLS) is not supported: the "
             "libhiredis this module is built with (0.14) has no TLS; use redis:// over a "
             "trusted network or a TLS tunnel");
    return NULL;
  }
  snprintf(err, errlen, "rate_store must start with shm:/ or redis://");
  return NULL;
}

void cms_store_free(cms_rate *r) {
  if (!r) return;
  r->ops->close(r);
  free(r);
}

void cms_store_gcra(double rate, long long *t_ns, long long *tau_ns) {
  double burst = 1 + (double)(long long)(rate / 100), t;
  if (burst > rate) burst = 1;
  t = (1000.0 + CMS_STORE_JITTER_MS) * 1e6 / (rate - burst + 1 > 1 ? rate - burst + 1 : rate);
  if (t < 1) t = 1;
  *t_ns = (long long)t;
  *tau_ns = (long long)((burst - 1) * t);
}

void cms_store_base_init(cms_store_base *b, const cms_rate_ops *ops, const cms_store_opts *o) {
  memset(b, 0, sizeof *b);
  b->rate.ops = ops;
  b->limit = o->rate > 0 ? o->rate : 0;
  if (b->limit > 0) cms_store_gcra(b->limit, &b->t_ns, &b->tau_ns);
  b->penalty_ms = o->penalty_s > 0 ? (long long)(o->penalty_s * 1000) : 0;
}

void cms_store_lost(cms_store_base *b, long long now) {
  if (!b->unreachable || !b->local_ready) {
    unsigned n = b->peers ? b->peers : CMS_STORE_SHARE_N;
    cms_pace_init_at(&b->local, b->limit / n, (double)b->penalty_ms / 1000, now);
    b->local_ready = 1;
  }
  b->unreachable = 1;
  b->retry_at = now + CMS_STORE_RETRY_MS;
}

void cms_store_back(cms_store_base *b) {
  b->unreachable = 0;
  b->local_ready = 0;
}

long cms_store_local_take(cms_store_base *b, long long now) {
  long w = cms_pace_take(&b->local, now);
  if (w == 0) b->rate.fallbacks++;
  return w;
}

long cms_store_wait_ms(long long ahead_ns) {
  long long ms = (ahead_ns + 999999) / 1000000;
  if (ms < 1) ms = 1;
  if (ms > CMS_STORE_MAX_WAIT_MS) ms = CMS_STORE_MAX_WAIT_MS;
  return (long)ms;
}

unsigned long long cms_store_hash(const void *data, size_t len) {
  const unsigned char *p = data;
  unsigned long long h = 1469598103934665603ULL;
  size_t i;
  for (i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}
