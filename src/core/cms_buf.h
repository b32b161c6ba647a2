/* cms_buf.h -- growable byte buffer; never aborts, reports ENOMEM to the caller.
 * No Lua here: shared by the module, the emulator and the C benchmark. */
#ifndef CMS_BUF_H
#define CMS_BUF_H
#include <stddef.h>

typedef struct cms_buf {
  char *data;
  size_t len, cap;
  size_t limit;   /* 0 = unlimited; appends beyond it fail with overflow set */
  int overflow;   /* set when an append hit the limit */
  int oom;        /* set when an allocation failed */
} cms_buf;

void cms_buf_init(cms_buf *b, size_t limit);
void cms_buf_free(cms_buf *b);
void cms_buf_reset(cms_buf *b);                       /* len = 0, flags cleared, memory kept */
int cms_buf_add(cms_buf *b, const void *p, size_t n); /* 0 ok, -1 failed (flag set) */
int cms_buf_adds(cms_buf *b, const char *s);
int cms_buf_addc(cms_buf *b, char c);
const char *cms_buf_cstr(cms_buf *b);                 /* NUL-terminated view, or "" on OOM */
/* room for n more bytes (and a NUL): returns where to write them, or NULL;
 * the writer then sets len itself */
char *cms_buf_reserve(cms_buf *b, size_t n);

/* v in decimal into out (NUL-terminated); returns its length */
size_t cms_buf_itoa(long long v, char out[24]);

/* a view of n bytes that someone else owns (a Lua string, say) */
typedef struct cms_str {
  const char *s;
  size_t n;
} cms_str;

#endif
