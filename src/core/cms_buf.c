#include "cms_buf.h"
#include <stdlib.h>
#include <string.h>

void cms_buf_init(cms_buf *b, size_t limit) {
  memset(b, 0, sizeof *b);
  b->limit = limit;
}

void cms_buf_free(cms_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void cms_buf_reset(cms_buf *b) {
  b->len = 0;
  b->overflow = b->oom = 0;
}

static int reserve(cms_buf *b, size_t extra) {
  size_t need, cap;
  char *p;
  if (b->oom || b->overflow) return -1;
  if (extra > (size_t)-1 - b->len - 1) { b->oom = 1; return -1; }
  need = b->len + extra + 1; /* room for a NUL */
  if (b->limit && need - 1 > b->limit) { b->overflow = 1; return -1; }
  if (need <= b->cap) return 0;
  cap = b->cap ? b->cap : 256;
  while (cap < need) cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
  p = realloc(b->data, cap);
  if (!p) { b->oom = 1; return -1; }
  b->data = p;
  b->cap = cap;
  return 0;
}

int cms_buf_add(cms_buf *b, const void *p, size_t n) {
  if (reserve(b, n)) return -1;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int cms_buf_adds(cms_buf *b, const char *s) { return cms_buf_add(b, s, strlen(s)); }

int cms_buf_addc(cms_buf *b, char c) { return cms_buf_add(b, &c, 1); }

size_t cms_buf_itoa(long long v, char out[24]) {
  char tmp[24], *e = tmp + sizeof tmp, *p = e;
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  size_t n;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--p = '-';
  n = (size_t)(e - p);
  memcpy(out, p, n);
  out[n] = '\0';
  return n;
}

char *cms_buf_reserve(cms_buf *b, size_t n) {
  if (reserve(b, n)) return NULL;
  return b->data + b->len;
}

const char *cms_buf_cstr(cms_buf *b) {
  if (!b->data || b->oom) return "";
  return b->data;
}
