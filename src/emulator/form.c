/* form.c -- application/x-www-form-urlencoded decoding over a raw body.
 * '+' is a space, %XX a byte; a '%' without two hex digits is malformed.
 * Values keep their length (a %00 stays a NUL byte inside the value). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "emu.h"

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* decodes s[0..n) into a new string; -1 malformed (at = offset), -2 oom */
static int decode(const char *s, size_t n, char **out, size_t *outlen, size_t *at) {
  char *p = malloc(n + 1);
  size_t i, o = 0;
  if (!p) return -2;
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (c == '+') {
      p[o++] = ' ';
    } else if (c == '%') {
      int h, l;
      if (i + 2 >= n) { free(p); *at = i; return -1; }
      h = hexval((unsigned char)s[i + 1]);
      l = hexval((unsigned char)s[i + 2]);
      if (h < 0 || l < 0) { free(p); *at = i; return -1; }
      p[o++] = (char)(h * 16 + l);
      i += 2;
    } else {
      p[o++] = c;
    }
  }
  p[o] = '\0';
  *out = p;
  *outlen = o;
  return 0;
}

int emu_form_parse(const char *body, size_t len, emu_form *f, char *err, size_t errlen) {
  size_t pos = 0;
  memset(f, 0, sizeof *f);
  while (pos < len) {
    const char *seg = body + pos, *amp = memchr(seg, '&', len - pos), *eq;
    size_t seglen = amp ? (size_t)(amp - seg) : len - pos, klen, at = 0;
    emu_kv kv;
    int rc;
    if (seglen == 0) { pos += 1; continue; }
    eq = memchr(seg, '=', seglen);
    klen = eq ? (size_t)(eq - seg) : seglen;
    memset(&kv, 0, sizeof kv);
    rc = decode(seg, klen, &kv.key, &kv.klen, &at);
    if (rc == 0) {
      if (eq) rc = decode(eq + 1, seglen - klen - 1, &kv.val, &kv.vlen, &at), at += klen + 1;
      else rc = decode("", 0, &kv.val, &kv.vlen, &at);
    }
    if (rc) {
      free(kv.key);
      emu_form_free(f);
      if (rc == -2) { snprintf(err, errlen, "out of memory"); return -2; }
      snprintf(err, errlen, "malformed form encoding: '%%' without two hex digits at byte %zu",
               pos + at + 1);
      return -1;
    }
    if (f->n == f->cap) {
      size_t cap = f->cap ? f->cap * 2 : 16;
      emu_kv *nk = realloc(f->kv, cap * sizeof *nk);
      if (!nk) {
        free(kv.key); free(kv.val); emu_form_free(f);
        snprintf(err, errlen, "out of memory");
        return -2;
      }
      f->kv = nk;
      f->cap = cap;
    }
    f->kv[f->n++] = kv;
    pos += seglen + 1;
  }
  return 0;
}

const emu_kv *emu_form_get(const emu_form *f, const char *key) {
  size_t i, kl = strlen(key);
  for (i = 0; i < f->n; i++)
    if (f->kv[i].klen == kl && memcmp(f->kv[i].key, key, kl) == 0) return &f->kv[i];
  return NULL;
}

void emu_form_free(emu_form *f) {
  size_t i;
  for (i = 0; i < f->n; i++) {
    free(f->kv[i].key);
    free(f->kv[i].val);
  }
  free(f->kv);
  memset(f, 0, sizeof *f);
}
