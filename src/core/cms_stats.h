/* cms_stats.h -- what a client did, counted: calls and attempts per API path,
 * answers by API code and by HTTP status, transport failures by kind,
 * resends, 416 pauses, hook errors, and call latency per path in a small fixed
 * histogram (log-linear buckets, 8 per doubling: a quantile is known within
 * 12.5 %).  Everything is fixed-size, allocated with the client: recording a
 * call allocates nothing.  Nothing here holds a secret.  No Lua here. */
#ifndef CMS_STATS_H
#define CMS_STATS_H
#include <stddef.h>

#define CMS_HIST_SUB 8                /* buckets per doubling */
#define CMS_HIST_MIN_US 16.0          /* the first bucket: up to 16 µs */
#define CMS_HIST_OCTAVES 28           /* 16 µs .. 16 µs · 2^28 (about 72 minutes) */
#define CMS_HIST_BUCKETS (1 + CMS_HIST_SUB * CMS_HIST_OCTAVES)

typedef struct cms_hist {
  unsigned long long count;
  double sum, max;                    /* seconds */
  unsigned buckets[CMS_HIST_BUCKETS];
} cms_hist;

void cms_hist_add(cms_hist *h, double seconds);
/* the q-quantile (0 < q <= 1) in seconds: the upper bound of the bucket
 * holding it, never above the largest value seen; 0 when empty */
double cms_hist_quantile(const cms_hist *h, double q);

#define CMS_STATS_PATHS 8    /* API paths counted apart; any further one counts as "other" */
#define CMS_STATS_PATH_MAX 96
#define CMS_STATS_CODES 32   /* distinct API codes / HTTP statuses counted; then "other" */

typedef enum cms_tfail {
  CMS_TF_CONNECT,  /* nothing was sent: DNS, connect, TLS, proxy */
  CMS_TF_TIMEOUT,  /* sent, then the attempt's timeout passed */
  CMS_TF_LOST,     /* sent, then the connection failed (reset, closed, no answer) */
  CMS_TF_TOO_BIG,  /* the answer was over the limit */
  CMS_TF_LOCAL,    /* a local failure: memory, options, random bytes */
  CMS_TF_KINDS
} cms_tfail;
extern const char *const cms_tfail_names[CMS_TF_KINDS];

typedef struct cms_stats_path {
  char path[CMS_STATS_PATH_MAX];      /* "chatroom/batchSendMsgToSomeone.action"; "" = free */
  unsigned long long calls, attempts;
  cms_hist latency;                   /* per call, first attempt to final answer */
} cms_stats_path;

typedef struct cms_count {
  long long key;                      /* an API code or an HTTP status */
  unsigned long long n;
} cms_count;

typedef struct cms_stats {
  cms_stats_path paths[CMS_STATS_PATHS + 1]; /* the last one is "other" */
  cms_count codes[CMS_STATS_CODES], http[CMS_STATS_CODES];
  int ncodes, nhttp;
  unsigned long long codes_other, http_other;
  unsigned long long transport[CMS_TF_KINDS];
  unsigned long long resends;         /* attempts sent again as a resend (resendFlag = 1) */
  unsigned long long pauses;          /* 416 answers: the client paused for the penalty */
  unsigned long long repeats;         /* 431 answers learnt from by a resend (new RequestId) */
  unsigned long long hook_calls, hook_errors; /* on_attempt */
} cms_stats;

void cms_stats_init(cms_stats *s);
/* the counters of an API path ("chatroom/..."; a leading '/' is dropped) */
cms_stats_path *cms_stats_path_get(cms_stats *s, const char *path);
void cms_stats_code(cms_stats *s, long long code);   /* an answer's API code */
void cms_stats_http(cms_stats *s, long status);      /* an answer's HTTP status */
void cms_stats_count_add(cms_count *t, int *n, unsigned long long *other, long long key);

#endif
