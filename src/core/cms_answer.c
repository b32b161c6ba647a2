#include "cms_answer.h"
#include <string.h>

#define DIGIT(c) ((c) >= '0' && (c) <= '9')

/* digits d[0..nd) (no sign) above 2^53 = 9007199254740992? */
static int over_2_53(const char *d, size_t nd) {
  while (nd > 1 && *d == '0') d++, nd--;
  if (nd != 16) return nd > 16;
  return memcmp(d, "9007199254740992", 16) > 0;
}

int cms_answer_next_big(const char *s, size_t n, size_t *pos, size_t *len) {
  size_t i = *pos;
  int in_string = 0;
  while (i < n) {
    char c = s[i];
    if (c == '\0') {
      *pos = i;
      return -1;
    }
    if (in_string) {
      if (c == '\\' && i + 1 < n && s[i + 1] != '\0') i++; /* the escaped byte (a NUL is seen next) */
      else if (c == '"') in_string = 0;
      i++;
    } else if (c == '"') {
      in_string = 1;
      i++;
    } else if (c == '-' || DIGIT(c)) {
      /* a whole number literal: -? digits (. digits)? ([eE] [+-]? digits)? */
      size_t start = i, d0, nd;
      int integer = 1;
      if (c == '-') i++;
      d0 = i;
      while (i < n && DIGIT(s[i])) i++;
      nd = i - d0;
      if (i < n && s[i] == '.') {
        integer = 0;
        for (i++; i < n && DIGIT(s[i]); i++) {}
      }
      if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        integer = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        while (i < n && DIGIT(s[i])) i++;
      }
      if (integer && nd > 0 && over_2_53(s + d0, nd)) {
        *pos = start;
        *len = i - start;
        return 1;
      }
    } else {
      i++;
    }
  }
  return 0;
}
