/* cms_store.h -- a rate budget shared by every client of an appkey, behind
 * the cms_rate ops: "shm:/path/file" (cms_store_shm.c, one host) or
 * "redis://host:port[/db]" (cms_store_redis.c, any number of hosts).
 *
 * Both draw calls by the same rule, a GCRA (generic cell rate algorithm) on
 * one shared "theoretical arrival time": a call may start when that time is
 * at most tau ahead of now, and moves it T further.  T and tau are chosen so
 * that any window of 1 s + CMS_STORE_JITTER_MS holds at most `rate` calls:
 * T = (1000 + jitter) ms / (rate - burst + 1), tau = (burst - 1) T, with a
 * burst of 1 + rate/100 calls.  Calls are spread evenly, so calls arriving at
 * the service up to CMS_STORE_JITTER_MS closer together than they were drawn
 * still fit its one-second window.  For rate 100: one call every 10.86 ms
 * (92.1 calls/s), bursts of 2; a one-second window of draws holds at most 94,
 * so the service sees more than 100 only when calls drawn a second apart
 * arrive more than 75 ms closer together.  Each client spends its own T, so clients of
 * one store that disagree on `rate` never exceed the largest of them.
 *
 * A 416 seen by any client sets a shared "penalty until" time; every client
 * waits for it.  A client also keeps its own penalty, so a store lost during
 * a penalty still waits it out.
 *
 * When the store cannot be used (Redis down, the file gone bad), take falls
 * back to local pacing (cms_pace) at a share of the budget: rate / n, where n
 * is the number of clients that drew from the store in the last
 * CMS_STORE_PEER_WINDOW_MS before it was lost (Redis), or CMS_STORE_SHARE_N if
 * that is unknown.  It tries the store again every CMS_STORE_RETRY_MS and
 * counts each draw served locally in rate.fallbacks.  Nothing raises.
 * No Lua here. */
#ifndef CMS_STORE_H
#define CMS_STORE_H
#include <stddef.h>
#include "cms_pace.h"
#include "cms_rate.h"

#define CMS_STORE_JITTER_MS 75        /* compression of calls in transit tolerated */
#define CMS_STORE_RETRY_MS 1000       /* an unreachable store is tried again after */
#define CMS_STORE_MAX_WAIT_MS 1000    /* longest wait take answers: then ask again */
#define CMS_STORE_SHARE_N 4           /* fallback share 1/n when n is unknown */
#define CMS_STORE_PEER_WINDOW_MS 10000 /* a client drawing within it counts as a peer */
#define CMS_STORE_TIMEOUT_MS 50       /* default Redis connect and command timeout */
#define CMS_STORE_MAX_PENALTY_MS 3600000LL /* longer shared penalties are garbage */

typedef struct cms_store_opts {
  const char *url;      /* "shm:/path" or "redis://host:port[/db]" */
  const char *appkey;   /* names the budget; never the secret */
  double rate;          /* calls per second; 0 = no pacing (the penalty is still shared) */
  double penalty_s;     /* how long a 416 pauses every client */
  long timeout_ms;      /* Redis connect and command timeout; <= 0: the default */
} cms_store_opts;

/* Opens the store named by o->url.  NULL with a message in err when the URL
 * is malformed or names something unusable (a file that is not a rate store,
 * rediss://).  A Redis server that does not answer is not an error: the
 * budget starts "unreachable" and falls back as above. */
cms_rate *cms_store_open(const cms_store_opts *o, char *err, size_t errlen);

/* closes r (its ops->close) and frees it; NULL is fine */
void cms_store_free(cms_rate *r);

/* GCRA parameters for rate calls/s, in nanoseconds (rate > 0) */
void cms_store_gcra(double rate, long long *t_ns, long long *tau_ns);

/* ---- shared by the two stores (not for callers) ---- */
typedef struct cms_store_base {
  cms_rate rate;              /* first member: a cms_store_base * is a cms_rate * */
  double limit;               /* rate as asked */
  long long t_ns, tau_ns;     /* GCRA for limit */
  long long penalty_ms;
  long long penalty_until;    /* this client's own penalty (ms, monotonic) */
  int unreachable;            /* the last attempt to use the store failed */
  long long retry_at;         /* when to try the store again (ms) */
  unsigned peers;             /* clients seen by the store; 0 = unknown */
  cms_pace local;             /* fallback pacing */
  int local_ready;
} cms_store_base;

void cms_store_base_init(cms_store_base *b, const cms_rate_ops *ops, const cms_store_opts *o);
/* the store failed at now: switch to local pacing, try again later */
void cms_store_lost(cms_store_base *b, long long now);
/* the store answered: leave local pacing */
void cms_store_back(cms_store_base *b);
/* a draw from the fallback pacing (counted in fallbacks) */
long cms_store_local_take(cms_store_base *b, long long now);
/* ms to wait for a time ahead by ahead_ns (>= 1, at most CMS_STORE_MAX_WAIT_MS) */
long cms_store_wait_ms(long long ahead_ns);
/* a 64-bit FNV-1a hash (file identity checks; not for secrets) */
unsigned long long cms_store_hash(const void *data, size_t len);

#endif
