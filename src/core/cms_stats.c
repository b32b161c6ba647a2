/* cms_stats.c -- fixed-size counters and latency histograms (cms_stats.h). */
#include "cms_stats.h"
#include <math.h>
#include <string.h>

const char *const cms_tfail_names[CMS_TF_KINDS] = {"connect", "timeout", "lost", "too_big",
                                                   "local"};

/* bucket 0: up to 16 µs; then CMS_HIST_SUB linear buckets per doubling */
static int bucket_of(double us) {
  int e, sub, i;
  double m;
  if (!(us > CMS_HIST_MIN_US)) return 0;
  m = frexp(us / CMS_HIST_MIN_US, &e); /* us/16 = m · 2^e, m in [0.5, 1), e >= 1 */
  sub = (int)((m * 2.0 - 1.0) * CMS_HIST_SUB);
  if (sub >= CMS_HIST_SUB) sub = CMS_HIST_SUB - 1;
  i = 1 + (e - 1) * CMS_HIST_SUB + sub;
  return i < CMS_HIST_BUCKETS ? i : CMS_HIST_BUCKETS - 1;
}

/* the upper bound of bucket i, in µs */
static double bucket_top(int i) {
  int e, sub;
  if (i == 0) return CMS_HIST_MIN_US;
  e = (i - 1) / CMS_HIST_SUB;
  sub = (i - 1) % CMS_HIST_SUB;
  return CMS_HIST_MIN_US * ldexp(1.0 + (double)(sub + 1) / CMS_HIST_SUB, e);
}

void cms_hist_add(cms_hist *h, double seconds) {
  if (!(seconds >= 0)) seconds = 0; /* NaN or a clock step back */
  h->count++;
  h->sum += seconds;
  if (seconds > h->max) h->max = seconds;
  h->buckets[bucket_of(seconds * 1e6)]++;
}

double cms_hist_quantile(const cms_hist *h, double q) {
  unsigned long long rank, seen = 0;
  int i;
  double top;
  if (!h->count) return 0;
  if (!(q > 0)) q = 0;
  if (q > 1) q = 1;
  rank = (unsigned long long)(q * (double)h->count);
  if ((double)rank < q * (double)h->count) rank++; /* the ceiling, without libm */
  if (rank < 1) rank = 1;
  for (i = 0; i < CMS_HIST_BUCKETS; i++) {
    seen += h->buckets[i];
    if (seen >= rank) break;
  }
  if (i >= CMS_HIST_BUCKETS - 1) return h->max; /* the last bucket has no upper bound */
  top = bucket_top(i) / 1e6;
  return top < h->max ? top : h->max;
}

void cms_stats_init(cms_stats *s) {
  memset(s, 0, sizeof *s);
  strcpy(s->paths[CMS_STATS_PATHS].path, "other");
}

cms_stats_path *cms_stats_path_get(cms_stats *s, const char *path) {
  int i;
  size_t n;
  if (path[0] == '/') path++;
  n = strlen(path);
  for (i = 0; i < CMS_STATS_PATHS; i++) {
    cms_stats_path *p = &s->paths[i];
    if (!p->path[0]) {
      if (n >= sizeof p->path) break; /* too long to keep: counted as other */
      memcpy(p->path, path, n + 1);
      return p;
    }
    if (strcmp(p->path, path) == 0) return p;
  }
  return &s->paths[CMS_STATS_PATHS];
}

void cms_stats_count_add(cms_count *t, int *n, unsigned long long *other, long long key) {
  int i;
  for (i = 0; i < *n; i++)
    if (t[i].key == key) {
      t[i].n++;
      return;
    }
  if (*n < CMS_STATS_CODES) {
    t[*n].key = key;
    t[*n].n = 1;
    (*n)++;
  } else {
    (*other)++;
  }
}

void cms_stats_code(cms_stats *s, long long code) {
  cms_stats_count_add(s->codes, &s->ncodes, &s->codes_other, code);
}

void cms_stats_http(cms_stats *s, long status) {
  cms_stats_count_add(s->http, &s->nhttp, &s->http_other, status);
}
