#include "cms_json.h"
#include <string.h>

typedef struct jc {
  const unsigned char *s;
  size_t n, i;
  const char *why;
} jc;

static int fail(jc *c, const char *why) {
  c->why = why;
  return -1;
}

static void ws(jc *c) {
  while (c->i < c->n) {
    unsigned char ch = c->s[c->i];
    if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') break;
    c->i++;
  }
}

static int hex(unsigned char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* one UTF-8 sequence starting at c->i (a byte >= 0x80) */
static int utf8_seq(jc *c) {
  const unsigned char *s = c->s;
  unsigned ch = s[c->i], cp, need, k;
  if (ch >= 0xC2 && ch <= 0xDF) { need = 1; cp = ch & 0x1F; }
  else if (ch >= 0xE0 && ch <= 0xEF) { need = 2; cp = ch & 0x0F; }
  else if (ch >= 0xF0 && ch <= 0xF4) { need = 3; cp = ch & 0x07; }
  else return fail(c, "a byte that is not UTF-8");
  if (c->n - c->i <= need) return fail(c, "a truncated UTF-8 sequence");
  for (k = 1; k <= need; k++) {
    unsigned cc = s[c->i + k];
    if ((cc & 0xC0) != 0x80) return fail(c, "a byte that is not UTF-8");
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return fail(c, "a byte that is not UTF-8");
  c->i += need + 1;
  return 0;
}

/* a string; c->i at the opening quote */
static int string(jc *c) {
  c->i++;
  while (c->i < c->n) {
    unsigned char ch = c->s[c->i];
    if (ch == '"') {
      c->i++;
      return 0;
    }
    if (ch == '\\') {
      unsigned char e;
      if (++c->i >= c->n) break;
      e = c->s[c->i];
      if (e == 'u') {
        int k;
        for (k = 1; k <= 4; k++)
          if (c->i + (size_t)k >= c->n || !hex(c->s[c->i + k]))
            return fail(c, "a \\u escape without 4 hex digits");
        c->i += 5;
      } else if (strchr("\"\\/bfnrt", e) && e) {
        c->i++;
      } else {
        return fail(c, "an unknown escape in a string");
      }
    } else if (ch < 0x20) {
      return fail(c, ch ? "a control character in a string (escape it)"
                        : "a NUL byte in a string");
    } else if (ch >= 0x80) {
      if (utf8_seq(c)) return -1;
    } else {
      c->i++;
    }
  }
  return fail(c, "a string that never ends");
}

static int digits(jc *c) {
  size_t start = c->i;
  while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') c->i++;
  return c->i > start ? 0 : fail(c, "a number without digits");
}

static int number(jc *c) {
  if (c->s[c->i] == '-') c->i++;
  if (c->i < c->n && c->s[c->i] == '0') {
    c->i++;
    if (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9')
      return fail(c, "a number with a leading zero");
  } else if (digits(c)) {
    return -1;
  }
  if (c->i < c->n && c->s[c->i] == '.') {
    c->i++;
    if (digits(c)) return -1;
  }
  if (c->i < c->n && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
    c->i++;
    if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-')) c->i++;
    if (digits(c)) return -1;
  }
  return 0;
}

static int literal(jc *c, const char *word) {
  size_t len = strlen(word);
  if (c->n - c->i < len || memcmp(c->s + c->i, word, len) != 0)
    return fail(c, "an unexpected byte where a value should be");
  c->i += len;
  return 0;
}

int cms_json_check(const char *text, size_t n, const char **why, size_t *at) {
  unsigned char open[CMS_JSON_MAX_DEPTH]; /* '{' or '[' per level */
  size_t depth = 0;
  jc c;
  c.s = (const unsigned char *)text;
  c.n = n;
  c.i = 0;
  c.why = NULL;
  ws(&c);
  if (c.i == n) {
    fail(&c, n ? "only whitespace, no JSON value" : "empty text, no JSON value");
    goto bad;
  }
  for (;;) {
    unsigned char ch;
    /* a value at c.i */
    ws(&c);
    if (c.i >= n) {
      fail(&c, "the text ends where a value should be");
      goto bad;
    }
    ch = c.s[c.i];
    if (ch == '{' || ch == '[') {
      if (depth == CMS_JSON_MAX_DEPTH) {
        fail(&c, "nesting deeper than 1000 levels");
        goto bad;
      }
      open[depth++] = ch;
      c.i++;
      ws(&c);
      if (c.i < n && c.s[c.i] == (ch == '{' ? '}' : ']')) {
        depth--;
        c.i++;
        goto after_value;
      }
      if (ch == '[') continue;
      goto member;
    }
    if (ch == '"') {
      if (string(&c)) goto bad;
    } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
      if (number(&c)) goto bad;
    } else if (ch == 't') {
      if (literal(&c, "true")) goto bad;
    } else if (ch == 'f') {
      if (literal(&c, "false")) goto bad;
    } else if (ch == 'n') {
      if (literal(&c, "null")) goto bad;
    } else {
      fail(&c, ch ? "an unexpected byte where a value should be" : "a NUL byte");
      goto bad;
    }
  after_value:
    for (;;) {
      ws(&c);
      if (depth == 0) {
        if (c.i == n) return 0;
        fail(&c, c.s[c.i] ? "bytes after the JSON value" : "a NUL byte after the JSON value");
        goto bad;
      }
      if (c.i >= n) {
        fail(&c, "the text ends inside an object or array");
        goto bad;
      }
      ch = c.s[c.i];
      if (ch == ',') {
        c.i++;
        if (open[depth - 1] == '[') break; /* the next value */
        goto member;
      }
      if (ch == (open[depth - 1] == '{' ? '}' : ']')) {
        depth--;
        c.i++;
        continue;
      }
      fail(&c, open[depth - 1] == '{' ? "an unexpected byte where ',' or '}' should be"
                                      : "an unexpected byte where ',' or ']' should be");
      goto bad;
    }
    continue;
  member: /* "key" : then a value */
    ws(&c);
    if (c.i >= n || c.s[c.i] != '"') {
      fail(&c, "an object key that is not a string");
      goto bad;
    }
    if (string(&c)) goto bad;
    ws(&c);
    if (c.i >= n || c.s[c.i] != ':') {
      fail(&c, "a missing ':' after an object key");
      goto bad;
    }
    c.i++;
  }
bad:
  if (why) *why = c.why;
  if (at) *at = c.i;
  return -1;
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
