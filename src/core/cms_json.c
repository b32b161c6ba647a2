/* cms_json.c -- the validating JSON scanner (see cms_json.h).  One pass, no
 * recursion, no allocation: the nesting lives in a fixed array on the C
 * stack (CMS_JSON_MAX_DEPTH entries). */
#include "cms_json.h"
#include <string.h>

/* string bytes: 0 plain, 1 the closing quote, 2 a backslash, 3 NUL, and in
 * strict mode 4 a raw control character, 5 the first byte of a UTF-8 sequence */
static const unsigned char lax_class[256] = {[0] = 3, ['"'] = 1, ['\\'] = 2};
static const unsigned char strict_class[256] = {[0] = 3, [0x01 ... 0x1f] = 4, ['"'] = 1,
                                                ['\\'] = 2, [0x80 ... 0xff] = 5};
/* bytes a strtod-style number reader would go on with */
static const unsigned char num_byte[256] = {['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1,
                                            ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
                                            ['8'] = 1, ['9'] = 1, ['.'] = 1, ['e'] = 1,
                                            ['E'] = 1, ['+'] = 1, ['-'] = 1};
/* one-character escapes */
static const unsigned char esc_ok[256] = {['"'] = 1, ['\\'] = 1, ['/'] = 1, ['b'] = 1,
                                          ['f'] = 1, ['n'] = 1, ['r'] = 1, ['t'] = 1};

/* eight bytes at a time (SWAR): a word's bytes equal to b, or below n (n <= 0x80) */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
#define HAS_BYTE(x, b) ((((x) ^ (ONES * (b))) - ONES) & ~((x) ^ (ONES * (b))) & HIGHS)
#define HAS_LESS(x, n) (((x) - ONES * (n)) & ~(x) & HIGHS)

/* the index of the first byte at or after i that may need a look: a quote, a
 * backslash, a NUL, and in strict mode a control byte or a byte >= 0x80 */
static size_t plain_run(const unsigned char *s, size_t n, size_t i, int strict) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  while (i + 8 <= n) {
    uint64_t x, m;
    memcpy(&x, s + i, 8);
    m = strict ? (HAS_BYTE(x, '"') | HAS_BYTE(x, '\\') | HAS_LESS(x, 0x20) | (x & HIGHS))
               : (HAS_BYTE(x, '"') | HAS_BYTE(x, '\\') | HAS_BYTE(x, 0));
    /* the lowest flagged byte is always a true one (a borrow only runs upwards) */
    if (m) return i + (size_t)(__builtin_ctzll(m) >> 3);
    i += 8;
  }
#else
  (void)s, (void)n, (void)strict;
#endif
  return i;
}

#define IS_DIGIT(c) ((unsigned char)((c) - '0') < 10)
#define IS_WS(c) ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')

/* four hex digits at s[i..i+4): their value, or -1 with *st set */
static long hex4(const unsigned char *s, size_t n, size_t i, cms_json_status *st, size_t *at) {
  long v = 0;
  size_t k;
  for (k = 0; k < 4; k++) {
    unsigned c;
    if (i + k >= n) {
      *st = CMS_JSON_E_END;
      *at = n;
      return -1;
    }
    c = s[i + k];
    if (IS_DIGIT(c)) v = v * 16 + (long)(c - '0');
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') v = v * 16 + (long)((c | 0x20) - 'a' + 10);
    else {
      *st = c ? CMS_JSON_E_ESCAPE : CMS_JSON_E_NUL;
      *at = i + k;
      return -1;
    }
  }
  return v;
}

/* the length of the UTF-8 sequence at s[i] (a byte >= 0x80), 0 if invalid
 * (overlongs, surrogates, beyond U+10FFFF, truncated) */
static size_t utf8_len(const unsigned char *s, size_t n, size_t i) {
  unsigned c = s[i], cp, need, k;
  if (c >= 0xC2 && c <= 0xDF) need = 1, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) need = 2, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4) need = 3, cp = c & 0x07;
  else return 0;
  if (n - i <= need) return 0;
  for (k = 1; k <= need; k++) {
    if ((s[i + k] & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (s[i + k] & 0x3F);
  }
  if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return need + 1;
}

/* s[i] follows an opening quote: the index after the closing one, or
 * (size_t)-1 with *st and *at set */
static size_t scan_string(const unsigned char *s, size_t n, size_t i, const unsigned char *cls,
                          cms_json_status *st, size_t *at) {
  int strict = cls == strict_class;
  for (;;) {
    unsigned c;
    size_t stop = i + 8 < n ? i + 8 : n;
    while (i < stop && !cls[s[i]]) i++; /* short strings byte by byte, */
    if (i == stop) {                      /* long ones eight bytes at a time */
      i = plain_run(s, n, i, strict);
      while (i < n && !cls[s[i]]) i++;
    }
    if (i >= n) {
      *st = CMS_JSON_E_END;
      *at = n;
      return (size_t)-1;
    }
    c = cls[s[i]];
    if (c == 1) return i + 1;
    if (c == 3) {
      *st = CMS_JSON_E_NUL;
      *at = i;
      return (size_t)-1;
    }
    if (c == 4) {
      *st = CMS_JSON_E_CONTROL;
      *at = i;
      return (size_t)-1;
    }
    if (c == 5) {
      size_t k = utf8_len(s, n, i);
      if (!k) {
        *st = CMS_JSON_E_UTF8;
        *at = i;
        return (size_t)-1;
      }
      i += k;
      continue;
    }
    /* a backslash */
    if (i + 1 >= n) {
      *st = CMS_JSON_E_END;
      *at = n;
      return (size_t)-1;
    }
    c = s[i + 1];
    if (esc_ok[c]) {
      i += 2;
    } else if (c == 'u') {
      long cp = hex4(s, n, i + 2, st, at);
      if (cp < 0) return (size_t)-1;
      if (cp >= 0xDC00 && cp <= 0xDFFF) { /* a low surrogate first */
        *st = CMS_JSON_E_ESCAPE;
        *at = i;
        return (size_t)-1;
      }
      if (cp >= 0xD800 && cp <= 0xDBFF) { /* a high one: its low half must follow */
        long lo;
        size_t k;
        for (k = 6; k < 8; k++) {
          if (i + k >= n) {
            *st = CMS_JSON_E_END;
            *at = n;
            return (size_t)-1;
          }
          if (s[i + k] != (k == 6 ? '\\' : 'u')) {
            *st = s[i + k] ? CMS_JSON_E_ESCAPE : CMS_JSON_E_NUL;
            *at = s[i + k] ? i : i + k;
            return (size_t)-1;
          }
        }
        lo = hex4(s, n, i + 8, st, at);
        if (lo < 0) return (size_t)-1;
        if (lo < 0xDC00 || lo > 0xDFFF) {
          *st = CMS_JSON_E_ESCAPE;
          *at = i;
          return (size_t)-1;
        }
        i += 12;
      } else {
        i += 6;
      }
    } else {
      *st = c ? CMS_JSON_E_ESCAPE : CMS_JSON_E_NUL;
      *at = c ? i : i + 1;
      return (size_t)-1;
    }
  }
}

/* s[i] is '-' or a digit: the index after the number (RFC 8259 grammar), or
 * (size_t)-1 with *st = E_NUMBER and *at = the number's first byte.  A
 * number followed by a byte a strtod reader would take ("01", "1.", "1e",
 * "1.5.2") is refused here too, so the reason names the number. */
static size_t scan_number(const unsigned char *s, size_t n, size_t i, cms_json_status *st,
                          size_t *at) {
  size_t start = i;
  if (s[i] == '-') i++;
  if (i < n && s[i] == '0') {
    i++;
  } else if (i < n && IS_DIGIT(s[i])) {
    while (i < n && IS_DIGIT(s[i])) i++;
  } else {
    goto bad;
  }
  if (i < n && s[i] == '.') {
    i++;
    if (i >= n || !IS_DIGIT(s[i])) goto bad;
    while (i < n && IS_DIGIT(s[i])) i++;
  }
  if (i < n && (s[i] | 0x20) == 'e') {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    if (i >= n || !IS_DIGIT(s[i])) goto bad;
    while (i < n && IS_DIGIT(s[i])) i++;
  }
  if (i < n && num_byte[s[i]]) goto bad;
  return i;
bad:
  *st = CMS_JSON_E_NUMBER;
  *at = start;
  return (size_t)-1;
}

enum { S_VALUE, S_VALUE_OR_CLOSE, S_KEY, S_KEY_OR_CLOSE, S_COLON, S_AFTER };
#define OBJ_BIT 0x80000000u

int cms_json_scan(const char *text, size_t n, unsigned flags, cms_json_info *sc) {
  const unsigned char *s = (const unsigned char *)text;
  const unsigned char *cls = flags & CMS_JSON_STRICT ? strict_class : lax_class;
  uint32_t stack[CMS_JSON_MAX_DEPTH];
  int depth = 0, state = S_VALUE;
  size_t i = 0, nc = 0, at = 0;
  cms_json_status st = CMS_JSON_OK;
  size_t cap = n <= UINT32_MAX ? sc->boxes_cap : 0;
  sc->top = CMS_JSON_NONE;
  for (;;) {
    unsigned c;
    while (i < n && IS_WS(s[i])) i++;
    if (i >= n) {
      if (state == S_AFTER && depth == 0) break;
      st = CMS_JSON_E_END;
      at = n;
      goto fail;
    }
    c = s[i];
    if (c == 0) {
      st = CMS_JSON_E_NUL;
      at = i;
      goto fail;
    }
    switch (state) {
      case S_VALUE_OR_CLOSE:
        if (c == ']') goto close;
        /* fall through */
      case S_VALUE: {
        cms_json_type t;
        if (depth > 0) {
          uint32_t top = stack[depth - 1];
          if (!(top & OBJ_BIT) && top < cap) sc->boxes[top].count++;
        }
        switch (c) {
          case '{':
          case '[':
            if (depth >= CMS_JSON_MAX_DEPTH) {
              st = CMS_JSON_E_DEPTH;
              at = i;
              goto fail;
            }
            if (nc < cap) sc->boxes[nc].count = 0;
            t = c == '{' ? CMS_JSON_OBJECT : CMS_JSON_ARRAY;
            stack[depth++] = (uint32_t)(nc < OBJ_BIT - 1 ? nc : OBJ_BIT - 1) |
                             (c == '{' ? OBJ_BIT : 0);
            nc++;
            state = c == '{' ? S_KEY_OR_CLOSE : S_VALUE_OR_CLOSE;
            i++;
            if (depth == 1) sc->top = t;
            continue;
          case '"':
            i = scan_string(s, n, i + 1, cls, &st, &at);
            if (i == (size_t)-1) goto fail;
            t = CMS_JSON_STRING;
            break;
          case 't':
          case 'f':
          case 'n': {
            const char *word = c == 't' ? "true" : c == 'f' ? "false" : "null";
            size_t k, len = c == 'f' ? 5 : 4;
            for (k = 1; k < len; k++) {
              if (i + k >= n) {
                st = CMS_JSON_E_END;
                at = n;
                goto fail;
              }
              if (s[i + k] != (unsigned char)word[k]) {
                st = s[i + k] ? CMS_JSON_E_SYNTAX : CMS_JSON_E_NUL;
                at = i + k;
                goto fail;
              }
            }
            i += len;
            t = c == 't' ? CMS_JSON_TRUE : c == 'f' ? CMS_JSON_FALSE : CMS_JSON_NULL;
            break;
          }
          default:
            if (c == '-' || IS_DIGIT(c)) {
              i = scan_number(s, n, i, &st, &at);
              if (i == (size_t)-1) goto fail;
              t = CMS_JSON_NUMBER;
              break;
            }
            st = CMS_JSON_E_SYNTAX;
            at = i;
            goto fail;
        }
        if (depth == 0) sc->top = t;
        state = S_AFTER;
        continue;
      }
      case S_KEY_OR_CLOSE:
        if (c == '}') goto close;
        /* fall through */
      case S_KEY:
        if (c != '"') {
          st = CMS_JSON_E_SYNTAX;
          at = i;
          goto fail;
        }
        i = scan_string(s, n, i + 1, cls, &st, &at);
        if (i == (size_t)-1) goto fail;
        {
          uint32_t top = stack[depth - 1] & ~OBJ_BIT;
          if (top < cap) sc->boxes[top].count++;
        }
        state = S_COLON;
        continue;
      case S_COLON:
        if (c != ':') {
          st = CMS_JSON_E_SYNTAX;
          at = i;
          goto fail;
        }
        i++;
        state = S_VALUE;
        continue;
      default: /* S_AFTER */
        if (depth == 0) {
          st = CMS_JSON_E_TRAILING;
          at = i;
          goto fail;
        }
        if (c == ',') {
          i++;
          state = stack[depth - 1] & OBJ_BIT ? S_KEY : S_VALUE;
          continue;
        }
        if (c == (stack[depth - 1] & OBJ_BIT ? '}' : ']')) goto close;
        st = CMS_JSON_E_SYNTAX;
        at = i;
        goto fail;
    }
  close:
    depth--;
    {
      uint32_t k = stack[depth] & ~OBJ_BIT;
      if (k < cap) {
        sc->boxes[k].end = (uint32_t)i;
        sc->boxes[k].next = (uint32_t)nc;
      }
    }
    i++;
    state = S_AFTER;
  }
  sc->status = CMS_JSON_OK;
  sc->offset = n;
  sc->n_containers = nc;
  return 0;
fail:
  sc->status = st;
  sc->offset = at;
  sc->n_containers = nc;
  sc->top = CMS_JSON_NONE;
  return -1;
}

int cms_json_check(const char *s, size_t n, const char **why, size_t *at) {
  cms_json_info info;
  info.boxes = NULL;
  info.boxes_cap = 0;
  if (cms_json_scan(s, n, CMS_JSON_STRICT, &info) == 0) return 0;
  if (why) *why = cms_json_strerror(info.status);
  if (at) *at = info.offset;
  return -1;
}

const char *cms_json_strerror(cms_json_status st) {
  switch (st) {
    case CMS_JSON_OK: return "valid JSON";
    case CMS_JSON_E_SYNTAX: return "an unexpected byte";
    case CMS_JSON_E_END: return "the text ends before the JSON value does (or is empty)";
    case CMS_JSON_E_TRAILING: return "bytes after the JSON value";
    case CMS_JSON_E_NUL: return "a NUL byte";
    case CMS_JSON_E_NUMBER: return "a number outside the JSON grammar (leading zero, no digits)";
    case CMS_JSON_E_ESCAPE: return "an unknown escape or a lone UTF-16 surrogate in a string";
    case CMS_JSON_E_DEPTH: return "nesting deeper than 1000 levels";
    case CMS_JSON_E_CONTROL: return "a raw control character in a string (escape it)";
    case CMS_JSON_E_UTF8: return "a byte that is not UTF-8 in a string";
  }
  return "not JSON";
}

long cms_json_nul_escape(const char *s, size_t n) {
  size_t i = 0;
  int in_string = 0;
  while (i < n) {
    char c = s[i];
    if (!in_string) {
      if (c == '"') in_string = 1;
      i++;
    } else if (c == '"') {
      in_string = 0;
      i++;
    } else if (c == '\\' && i + 1 < n) {
      if (s[i + 1] == 'u' && n - i >= 6 && memcmp(s + i + 2, "0000", 4) == 0) return (long)i;
      i += 2;
    } else {
      i++;
    }
  }
  return -1;
}
