#include "cms_form.h"
#include "cms_chars.h"
#include "cms_rules.h"
#include <string.h>

static const char hexd[] = "0123456789ABCDEF";

/* 1 for the bytes that stay as they are */
static const unsigned char keep[256] = {
  ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1, CMS_ALNUM_BYTES
};

/* room for n more bytes; the fast path keeps the buffer's limit too */
static inline __attribute__((always_inline)) char *room(cms_buf *b, size_t n) {
  if (b->data && !b->oom && !b->overflow && b->cap - b->len > n &&
      (!b->limit || b->len + n <= b->limit))
    return b->data + b->len;
  return cms_buf_reserve(b, n);
}

int cms_form_key(cms_buf *b, const char *key) {
  size_t n = strlen(key);
  char *o;
  if (!b) return 0;
  if (!(o = room(b, n + 2))) return -1;
  if (b->len) *o++ = '&';
  memcpy(o, key, n);
  o[n] = '=';
  b->len = (size_t)(o + n + 1 - b->data);
  b->data[b->len] = '\0';
  return 0;
}

int cms_form_escape(cms_buf *b, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  char *o;
  size_t i;
  if (!b) return 0;
  if (n > (size_t)-1 / 3 || !(o = room(b, 3 * n))) return -1;
  for (i = 0; i < n; i++) {
    unsigned char c = p[i];
    if (keep[c]) {
      *o++ = (char)c;
    } else {
      *o++ = '%';
      *o++ = hexd[c >> 4];
      *o++ = hexd[c & 15];
    }
  }
  b->len = (size_t)(o - b->data);
  b->data[b->len] = '\0';
  return 0;
}

int cms_form_lit(cms_buf *b, const char *s) { return cms_form_escape(b, s, strlen(s)); }

/* What each byte of a JSON string's contents becomes in the form: itself
 * (unreserved), %XX, \" or \\ as %5C%22 / %5C%5C, a control byte as \u00XX
 * (%5Cu00XX); built by the compiler, 8 bytes an entry, so the writer copies
 * one entry per byte with no branch. */
#define HX(n) ((n) < 10 ? '0' + (n) : 'A' + (n) - 10)
#define KEEP(c) (((c) >= '0' && (c) <= '9') || ((c) >= 'A' && (c) <= 'Z') || \
                 ((c) >= 'a' && (c) <= 'z') || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~')
#define QB(c) ((c) == '"' || (c) == '\\')
#define CTL(c) ((c) < 0x20)
#define JE(c)                                                                              \
  {(char)(KEEP(c) ? (c) : '%'), (char)(KEEP(c) ? 0 : QB(c) || CTL(c) ? '5' : HX((c) >> 4)),  \
   (char)(KEEP(c) ? 0 : QB(c) || CTL(c) ? 'C' : HX((c) & 15)),                              \
   (char)(QB(c) ? '%' : CTL(c) ? 'u' : 0), (char)(QB(c) ? HX((c) >> 4) : CTL(c) ? '0' : 0), \
   (char)(QB(c) ? HX((c) & 15) : CTL(c) ? '0' : 0), (char)(CTL(c) ? HX((c) >> 4) : 0),      \
   (char)(CTL(c) ? HX((c) & 15) : 0)}
#define JL(c) (unsigned char)(KEEP(c) ? 1 : QB(c) ? 6 : CTL(c) ? 8 : 3)
#define R4(M, c) M(c), M((c) + 1), M((c) + 2), M((c) + 3)
#define R16(M, c) R4(M, c), R4(M, (c) + 4), R4(M, (c) + 8), R4(M, (c) + 12)
#define R64(M, c) R16(M, c), R16(M, (c) + 16), R16(M, (c) + 32), R16(M, (c) + 48)
static const char jtab[256][8] = {R64(JE, 0), R64(JE, 64), R64(JE, 128), R64(JE, 192)};
static const unsigned char jlen[256] = {R64(JL, 0), R64(JL, 64), R64(JL, 128), R64(JL, 192)};

/* s[0..n) as a quoted JSON string, percent-encoded, at o (room checked by
 * the caller: 18 bytes a byte and 16 more); returns the end */
static inline char *json_quoted(char *o, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *e = p + n;
  *o++ = '%', *o++ = '2', *o++ = '2'; /* " */
  while (p < e) {
    memcpy(o, jtab[*p], 8);
    o += jlen[*p++];
  }
  *o++ = '%', *o++ = '2', *o++ = '2';
  return o;
}

int cms_form_json_string(cms_buf *b, const char *s, size_t n) {
  char *o;
  if (!b) return 0;
  /* worst case: a control byte becomes \u00XX, 6 characters of 3 bytes each;
   * each entry is copied whole (8 bytes), so 8 more than that */
  if (n > ((size_t)-1 - 16) / 18 || !(o = room(b, 18 * n + 16))) return -1;
  o = json_quoted(o, s, n);
  b->len = (size_t)(o - b->data);
  b->data[b->len] = '\0';
  return 0;
}

/* what each byte of an accid becomes in the form: 1 itself, 2 '@' as %40, 0
 * a byte no accid holds (core_test checks it against cms_accid_chars) */
static const unsigned char accid_out[256] = {
  ['_'] = 1, ['.'] = 1, ['-'] = 1, CMS_ALNUM_BYTES, ['@'] = 2
};

long cms_form_accids(cms_buf *b, const cms_str *v, size_t n, size_t max) {
  size_t i, need = 16;
  char *o = NULL;
  if (max > ((size_t)1 << 20) || n > ((size_t)-1 / 4) / (3 * max + 9)) return -1;
  if (b) {
    /* one reservation for the whole list: 3 bytes a byte, 9 for a comma and
     * the quotes (each accid counted at most max long: a longer one is
     * refused before anything of it is written) */
    for (i = 0; i < n; i++) need += 3 * (v[i].n < max ? v[i].n : max) + 9;
    if (!(o = room(b, need))) return -1;
    memcpy(o, "%22", 3), o += 3;
  }
  for (i = 0; i < n; i++) {
    const unsigned char *p = (const unsigned char *)v[i].s, *e = p + v[i].n;
    if (v[i].n - 1 >= max) goto bad; /* 0 wraps round */
    if (!o) {
      while (p < e)
        if (!accid_out[*p++]) goto bad;
      continue;
    }
    while (p < e) {
      unsigned c = *p++, out = accid_out[c];
      if (out == 1) *o++ = (char)c;
      else if (out == 2) *o++ = '%', *o++ = '4', *o++ = '0';
      else goto bad;
    }
    if (i + 1 < n) memcpy(o, "%22%2C%22", 9), o += 9;
  }
  if (o) {
    memcpy(o, "%22", 3), o += 3;
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
  }
  return 0;
bad:
  if (o) b->data[b->len] = '\0'; /* the length as it was, and its NUL */
  return (long)i + 1;
}

int cms_form_int(cms_buf *b, long long v) {
  char *o;
  if (!b) return 0;
  if (!(o = room(b, 24))) return -1;
  b->len += cms_buf_itoa(v, o); /* NUL-terminated there */
  return 0;
}

#define PIECE(json, pct) {json, pct, sizeof pct - 1}
const cms_form_piece cms_form_pieces[CMS_P_COUNT] = {
  [CMS_P_LBRACKET] = PIECE("[", "%5B"),
  [CMS_P_RBRACKET] = PIECE("]", "%5D"),
  [CMS_P_COMMA] = PIECE(",", "%2C"),
  [CMS_P_MSGID] = PIECE("{\"msgId\":", "%7B%22msgId%22%3A"),
  [CMS_P_MSGTYPE] = PIECE(",\"msgType\":", "%2C%22msgType%22%3A"),
  [CMS_P_ATTACH] = PIECE(",\"attach\":", "%2C%22attach%22%3A"),
  [CMS_P_EXT] = PIECE(",\"ext\":", "%2C%22ext%22%3A"),
  [CMS_P_SUBTYPE] = PIECE(",\"subType\":", "%2C%22subType%22%3A"),
  [CMS_P_RESENDFLAG] = PIECE(",\"resendFlag\":", "%2C%22resendFlag%22%3A"),
  [CMS_P_RBRACE] = PIECE("}", "%7D"),
};

int cms_form_put(cms_buf *b, cms_piece p) {
  size_t n = cms_form_pieces[p].pct_len;
  char *o;
  if (!b) return 0;
  o = room(b, sizeof cms_form_pieces[p].pct);
  if (!o) return -1;
  memcpy(o, cms_form_pieces[p].pct, sizeof cms_form_pieces[p].pct);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

/* a piece at o (32 bytes copied, its length kept) */
static inline char *piece(char *o, cms_piece p) {
  memcpy(o, cms_form_pieces[p].pct, sizeof cms_form_pieces[p].pct);
  return o + cms_form_pieces[p].pct_len;
}

int cms_form_msg(cms_buf *b, const cms_msg_view *v, int first) {
  /* three texts of lim bytes, 18 bytes a byte, and 376 more fit a size_t (a
   * fixed 2^30 did not where size_t has 32 bits: 18 * 238609295 + 376 wraps
   * to 390, and msgId has no length limit of its own) */
  size_t text = v->msgId_len, lim = ((size_t)-1 - 512) / 54;
  char *o;
  if (!b) return 0;
  if (v->msgId_len > lim || v->attach_len > lim || v->ext_len > lim) return -1;
  if (v->attach) text += v->attach_len;
  if (v->ext) text += v->ext_len;
  /* 18 bytes a byte of text, 16 a string; 7 pieces of 32 and 3 integers of 24 */
  if (!(o = room(b, 18 * text + 3 * 16 + 8 * 32 + 3 * 24))) return -1;
  if (!first) o = piece(o, CMS_P_COMMA);
  o = piece(o, CMS_P_MSGID);
  o = json_quoted(o, v->msgId, v->msgId_len);
  o = piece(o, CMS_P_MSGTYPE);
  o += cms_buf_itoa(v->msgType, o);
  if (v->attach) { /* absent where the type allows it: left out */
    o = piece(o, CMS_P_ATTACH);
    o = json_quoted(o, v->attach, v->attach_len);
  }
  if (v->ext) {
    o = piece(o, CMS_P_EXT);
    o = json_quoted(o, v->ext, v->ext_len);
  }
  if (v->has_subType) {
    o = piece(o, CMS_P_SUBTYPE);
    o += cms_buf_itoa(v->subType, o);
  }
  if (v->has_resendFlag) {
    o = piece(o, CMS_P_RESENDFLAG);
    o += cms_buf_itoa(v->resendFlag, o);
  }
  o = piece(o, CMS_P_RBRACE);
  b->len = (size_t)(o - b->data);
  b->data[b->len] = '\0';
  return 0;
}
