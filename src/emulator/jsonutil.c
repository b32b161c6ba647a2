/* jsonutil.c -- small helpers around cJSON and strings. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "emu.h"

/* length of the valid UTF-8 sequence at s (1..4), 0 if invalid or NUL */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0], cp, need, k;
  if (c == 0) return 0;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; }
  else return 0;
  if (n <= need) return 0;
  for (k = 1; k <= need; k++) {
    if ((s[k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[k] & 0x3F);
  }
  if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return need + 1;
}

cJSON *emu_json_str(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0, o = 0;
  char *tmp;
  cJSON *out;
  if (!s) return cJSON_CreateNull();
  if (n > ((size_t)-1) / 3 - 1) return NULL;
  tmp = malloc(n * 3 + 1);
  if (!tmp) return NULL;
  while (i < n) {
    size_t k = utf8_seq(s + i, n - i);
    if (k == 0) {
      tmp[o++] = (char)0xEF; tmp[o++] = (char)0xBF; tmp[o++] = (char)0xBD;
      i++;
    } else {
      memcpy(tmp + o, s + i, k);
      o += k;
      i += k;
    }
  }
  tmp[o] = '\0';
  out = cJSON_CreateString(tmp);
  free(tmp);
  return out;
}

int emu_json_add_str(cJSON *obj, const char *key, const char *s, size_t n) {
  cJSON *v = emu_json_str(s, n);
  if (!v) return -1;
  if (!cJSON_AddItemToObject(obj, key, v)) { cJSON_Delete(v); return -1; }
  return 0;
}

cJSON *emu_json_int(long long v) {
  char num[32];
  snprintf(num, sizeof num, "%lld", v);
  return cJSON_CreateRaw(num);
}

int emu_json_is_int(const cJSON *v, long long *out) {
  double d;
  if (!cJSON_IsNumber(v)) return 0;
  d = v->valuedouble;
  if (!isfinite(d) || d > 9007199254740992.0 || d < -9007199254740992.0 ||
      d != (double)(long long)d)
    return 0;
  if (out) *out = (long long)d;
  return 1;
}

char *emu_strndup(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (!p) return NULL;
  if (n) memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *emu_lower_dup(const char *s, size_t n) {
  char *p = emu_strndup(s, n);
  size_t i;
  if (!p) return NULL;
  for (i = 0; i < n; i++) p[i] = (char)tolower((unsigned char)p[i]);
  return p;
}

int emu_strcaseeq(const char *a, const char *b) {
  for (; *a && *b; a++, b++)
    if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
  return *a == *b;
}
