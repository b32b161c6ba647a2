/* lcms_answer.c -- JSON text straight into Lua values, and the service's
 * answer straight into the result tables.
 *
 * src/core/cms_json.c checks every byte first and counts the members of each
 * container; the reader then walks the checked text once more and builds
 * tables of the right size, pushing each string once, straight from the text
 * when it has no escapes.  The values are lua-cjson's (strings, numbers as
 * floats, booleans, null as a NULL light userdata, tables), so results do not
 * change with the reader; spec/fuzz/fuzz_json_diff.c compares the two.
 *
 * For an answer, the top-level object is walked without building it: the
 * reader notes where `code`, `desc`, `success` and `fail` are (the last one
 * of a name counts, as in a decoded table), then builds the `success` and
 * `fail` maps directly from the lists, with no intermediate table of entries. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lcms_answer.h"
#include "cms_json.h"

#define COUNTS_CAP 256 /* containers presized per text; further ones grow */

typedef struct rd {
  lua_State *L;
  const unsigned char *s;
  size_t n;
  const cms_json_box *boxes;
  size_t ncap;
  size_t ci;  /* index of the next container to open */
  int grow;   /* 1: tables start empty and grow, as lua-cjson builds them (the same
               * layout, so lua-cjson's encoder writes their keys in the same order) */
} rd;

#define IS_WS(c) ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')

static size_t ws(const rd *r, size_t i) {
  while (i < r->n && IS_WS(r->s[i])) i++;
  return i;
}

static uint32_t next_count(rd *r) {
  uint32_t c = r->ci < r->ncap && !r->grow ? r->boxes[r->ci].count : 0;
  r->ci++;
  return c;
}

/* r->s[i] is an opening quote: the index after the closing one; *esc says
 * whether a backslash occurs (the text is checked: no bounds to fear) */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
#define HAS_BYTE(x, b) ((((x) ^ (ONES * (b))) - ONES) & ~((x) ^ (ONES * (b))) & HIGHS)

static size_t str_end(const rd *r, size_t i, int *esc) {
  const unsigned char *s = r->s;
  *esc = 0;
  i++;
  for (;;) {
    unsigned char c;
    int k;
    for (k = 0; k < 8 && s[i] != '"' && s[i] != '\\'; k++) i++; /* short ones byte by byte */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (k == 8 && i + 8 <= r->n) { /* eight bytes at a time up to a quote or a backslash */
      uint64_t x, m;
      memcpy(&x, s + i, 8);
      m = HAS_BYTE(x, '"') | HAS_BYTE(x, '\\');
      if (m) { /* the lowest flagged byte is a true one */
        i += (size_t)(__builtin_ctzll(m) >> 3);
        break;
      }
      i += 8;
    }
#endif
    c = s[i];
    if (c == '"') return i + 1;
    if (c == '\\') {
      *esc = 1;
      i += 2;
    } else {
      i++;
    }
  }
}

static unsigned hexval(unsigned char c) {
  return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

static unsigned hex4(const unsigned char *p) {
  return hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]);
}

/* pushes the string whose quotes are at i and j - 1 */
static void push_str(rd *r, size_t i, size_t j, int esc) {
  lua_State *L = r->L;
  const unsigned char *p = r->s + i + 1, *end = r->s + j - 1;
  luaL_Buffer b;
  char *out, *o;
  if (!esc) {
    lua_pushlstring(L, (const char *)p, (size_t)(end - p));
    return;
  }
  out = o = luaL_buffinitsize(L, &b, (size_t)(end - p)); /* never longer than the text */
  while (p < end) {
    unsigned cp;
    if (*p != '\\') { /* the run up to the next backslash, in one copy */
      const unsigned char *bs = memchr(p, '\\', (size_t)(end - p));
      size_t k = (size_t)((bs ? bs : end) - p);
      memcpy(o, p, k);
      o += k;
      p += k;
      continue;
    }
    switch (p[1]) {
      case 'b': *o++ = '\b'; p += 2; continue;
      case 'f': *o++ = '\f'; p += 2; continue;
      case 'n': *o++ = '\n'; p += 2; continue;
      case 'r': *o++ = '\r'; p += 2; continue;
      case 't': *o++ = '\t'; p += 2; continue;
      case 'u': break;
      default: *o++ = (char)p[1]; p += 2; continue; /* " \ / */
    }
    cp = hex4(p + 2);
    p += 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) { /* the checked text has the low half next */
      cp = 0x10000 + ((cp & 0x3FF) << 10 | (hex4(p + 2) & 0x3FF));
      p += 6;
    }
    if (cp < 0x80) {
      *o++ = (char)cp;
    } else if (cp < 0x800) {
      *o++ = (char)(0xC0 | cp >> 6);
      *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *o++ = (char)(0xE0 | cp >> 12);
      *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
      *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
      *o++ = (char)(0xF0 | cp >> 18);
      *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
      *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
      *o++ = (char)(0x80 | (cp & 0x3F));
    }
  }
  luaL_pushresultsize(&b, (size_t)(o - out));
}

/* the end of the number at i (checked: RFC grammar) */
static size_t num_end(const rd *r, size_t i, int *plain) {
  const unsigned char *s = r->s;
  size_t n = r->n;
  *plain = 1;
  if (s[i] == '-') i++;
  while (i < n && (unsigned char)(s[i] - '0') < 10) i++;
  if (i < n && (s[i] == '.' || (s[i] | 0x20) == 'e')) {
    *plain = 0;
    while (i < n && (s[i] == '.' || (s[i] | 0x20) == 'e' || s[i] == '+' || s[i] == '-' ||
                     (unsigned char)(s[i] - '0') < 10))
      i++;
  }
  return i;
}

/* pushes the number s[i..j): an integer literal beyond 2^53 in magnitude as
 * the string of its digits (a double would change it; lcms_parse.c's rule),
 * any other number as the double strtod gives (what lua-cjson pushes), in any
 * locale */
static void push_number(rd *r, size_t i, size_t j, int plain) {
  const unsigned char *s = r->s;
  char small[64], *copy = small, *end;
  size_t k, len = j - i, nd = len - (s[i] == '-');
  double d;
  if (plain && nd <= 16) { /* up to 16 digits: exact as an integer, if <= 2^53 */
    long long v = 0;
    for (k = i + (s[i] == '-'); k < j; k++) v = v * 10 + (s[k] - '0');
    if (v <= 9007199254740992LL) {
      d = (double)v;
      lua_pushnumber(r->L, (lua_Number)(s[i] == '-' ? -d : d)); /* "-0" is -0.0, as in strtod */
      return;
    }
  }
  if (plain) { /* beyond 2^53 (no leading zeros in checked text) */
    lua_pushlstring(r->L, (const char *)s + i, len);
    return;
  }
  if (len >= sizeof small) {
    luaL_Buffer b; /* a long mantissa: Lua-owned scratch, freed on any error */
    copy = luaL_buffinitsize(r->L, &b, len + 1);
    memcpy(copy, s + i, len);
    copy[len] = '\0';
    luaL_addsize(&b, len + 1);
    luaL_pushresult(&b);
    copy = (char *)lua_tostring(r->L, -1);
  } else {
    memcpy(copy, s + i, len);
    copy[len] = '\0';
  }
  {
    char dp = localeconv()->decimal_point[0];
    if (dp != '.') {
      char *dot = memchr(copy, '.', len);
      if (dot) *dot = dp;
    }
  }
  d = strtod(copy, &end);
  if (copy != small) lua_pop(r->L, 1);
  lua_pushnumber(r->L, (lua_Number)d);
}

static size_t push_value(rd *r, size_t i);

/* which of time, roomId and type (0, 1, 2) the name k of n bytes is; -1: none */
static int int_field(const char *k, size_t n) {
  if (n == 4 && memcmp(k, "time", 4) == 0) return 0;
  if (n == 6 && memcmp(k, "roomId", 6) == 0) return 1;
  if (n == 4 && memcmp(k, "type", 4) == 0) return 2;
  return -1;
}

/* record: a success record, whose time, roomId and type are made integers while
 * they are pushed, as lcms_result_ints makes them; then (size_t)-1 when the
 * last of one of those names is not an integer */
static size_t push_object(rd *r, size_t i, int record) {
  lua_State *L = r->L;
  int bad[3] = {0, 0, 0};
  lua_createtable(L, 0, (int)next_count(r));
  i = ws(r, i + 1);
  if (r->s[i] == '}') return i + 1;
  for (;;) {
    int esc, which = -1;
    size_t j = str_end(r, i, &esc);
    push_str(r, i, j, esc);
    if (record) { /* the name as it decodes */
      size_t klen = j - i - 2;
      const char *key = esc ? lua_tolstring(L, -1, &klen) : (const char *)r->s + i + 1;
      which = int_field(key, klen);
    }
    i = ws(r, ws(r, j) + 1); /* the colon */
    i = push_value(r, i);
    if (which >= 0) {
      long long v;
      bad[which] = lcms_result_int(L, -1, &v) != 0;
      if (!bad[which]) {
        lua_pop(L, 1);
        lcms_push_result_int(L, v);
      }
    }
    lua_rawset(L, -3);
    i = ws(r, i);
    if (r->s[i] == '}') return bad[0] || bad[1] || bad[2] ? (size_t)-1 : i + 1;
    i = ws(r, i + 1); /* the comma */
  }
}

static size_t push_array(rd *r, size_t i) {
  lua_State *L = r->L;
  lua_Integer k = 1;
  lua_createtable(L, (int)next_count(r), 0);
  i = ws(r, i + 1);
  if (r->s[i] == ']') return i + 1;
  for (;;) {
    i = push_value(r, i);
    lua_rawseti(L, -2, k++);
    i = ws(r, i);
    if (r->s[i] == ']') return i + 1;
    i = ws(r, i + 1);
  }
}

/* pushes the value at i (its first byte); the index after it */
static size_t push_value(rd *r, size_t i) {
  lua_State *L = r->L;
  int esc, plain;
  size_t j;
  switch (r->s[i]) {
    case '{':
      luaL_checkstack(L, 3, "commsease: JSON nested too deep");
      return push_object(r, i, 0);
    case '[':
      luaL_checkstack(L, 2, "commsease: JSON nested too deep");
      return push_array(r, i);
    case '"':
      j = str_end(r, i, &esc);
      push_str(r, i, j, esc);
      return j;
    case 't': lua_pushboolean(L, 1); return i + 4;
    case 'f': lua_pushboolean(L, 0); return i + 5;
    case 'n': lua_pushlightuserdata(L, NULL); return i + 4;
    default:
      j = num_end(r, i, &plain);
      push_number(r, i, j, plain);
      return j;
  }
}

/* the index after the value at i, counting the containers it opens: a
 * container the scan noted is jumped over whole */
static size_t skip_value(rd *r, size_t i) {
  const unsigned char *s = r->s;
  int depth = 0, esc, plain;
  if ((s[i] == '{' || s[i] == '[') && r->ci < r->ncap) {
    const cms_json_box *b = &r->boxes[r->ci];
    r->ci = b->next;
    return (size_t)b->end + 1;
  }
  do {
    i = ws(r, i);
    switch (s[i]) {
      case '{':
      case '[': depth++; r->ci++; i++; break;
      case '}':
      case ']': depth--; i++; break;
      case ',':
      case ':': i++; break;
      case '"': i = str_end(r, i, &esc); break;
      case 't':
      case 'n': i += 4; break;
      case 'f': i += 5; break;
      default: i = num_end(r, i, &plain); break;
    }
  } while (depth > 0);
  return i;
}

int lcms_json_push(lua_State *L, const char *s, size_t n, const char **why) {
  cms_json_box boxes[COUNTS_CAP];
  cms_json_info sc;
  rd r;
  memset(&sc, 0, sizeof sc);
  sc.boxes = boxes;
  sc.boxes_cap = COUNTS_CAP;
  if (cms_json_scan(s, n, 0, &sc)) {
    if (why) *why = cms_json_strerror(sc.status);
    return -1;
  }
  luaL_checkstack(L, 4, "commsease: no room on the Lua stack for JSON");
  r.L = L;
  r.s = (const unsigned char *)s;
  r.n = n;
  r.boxes = boxes;
  r.ncap = COUNTS_CAP;
  r.ci = 0;
  r.grow = 0;
  push_value(&r, ws(&r, 0));
  return 0;
}

/* ---- the answer ---- */

typedef struct part {
  size_t at;  /* offset of the value, 0 = absent (a value never starts at 0 in an object) */
  size_t ci;  /* the container index at that offset */
} part;

enum { P_CODE, P_DESC, P_SUCCESS, P_FAIL, P_COUNT };

static size_t push_part(rd *r, const part *p) {
  r->ci = p->ci;
  return push_value(r, p->at);
}

/* a success record at i, kept as its outcome only (results = "outcomes"):
 * pushes its time (an integer, as lcms_result_ints makes it) or true when it has
 * none, and returns the index after it; (size_t)-1 when time, roomId or type
 * is not an integer (nothing pushed).  The record's table is never built. */
static size_t push_outcome(rd *r, size_t i) {
  static const char *const names[] = {"time", "roomId", "type"};
  lua_State *L = r->L;
  const unsigned char *s = r->s;
  size_t at[3] = {0, 0, 0}, ci_at[3] = {0, 0, 0}, after, keep;
  long long v, time = 0;
  int k;
  if (s[i] == '[') { /* a table with no fields */
    after = skip_value(r, i);
    lua_pushboolean(L, 1);
    return after;
  }
  r->ci++;
  i = ws(r, i + 1);
  if (s[i] != '}') {
    for (;;) {
      int esc, which = -1;
      size_t j = str_end(r, i, &esc), klen = j - i - 2;
      const char *key = (const char *)s + i + 1;
      if (esc) { /* an escaped name: compare what it decodes to */
        push_str(r, i, j, esc);
        key = lua_tolstring(L, -1, &klen);
      }
      for (k = 0; k < 3; k++)
        if (klen == strlen(names[k]) && memcmp(key, names[k], klen) == 0) which = k;
      if (esc) lua_pop(L, 1);
      i = ws(r, ws(r, j) + 1);
      if (which >= 0) { /* the last one of a name counts */
        at[which] = i;
        ci_at[which] = r->ci;
      }
      i = ws(r, skip_value(r, i));
      if (s[i] == '}') break;
      i = ws(r, i + 1);
    }
  }
  after = i + 1;
  keep = r->ci;
  for (k = 0; k < 3; k++) {
    if (!at[k]) continue;
    r->ci = ci_at[k];
    push_value(r, at[k]);
    if (lcms_result_int(L, -1, &v)) {
      lua_pop(L, 1);
      r->ci = keep;
      return (size_t)-1;
    }
    lua_pop(L, 1);
    if (k == 0) time = v;
  }
  r->ci = keep;
  if (at[0]) lcms_push_result_int(L, time);
  else lua_pushboolean(L, 1);
  return after;
}

/* success or fail at p: an array of objects keyed by msgId (or absent, null,
 * or an empty object, as a decoded table would pass) -> the map at dst */
static int read_list(rd *r, const part *p, int dst, int is_success, int outcomes) {
  lua_State *L = r->L;
  const unsigned char *s = r->s;
  size_t i = p->at;
  if (!i || s[i] == 'n') return 0; /* absent or null */
  if (s[i] == '{') return s[ws(r, i + 1)] == '}' ? 0 : -1;
  if (s[i] != '[') return -1;
  r->ci = p->ci + 1;
  i = ws(r, i + 1);
  if (s[i] == ']') return 0;
  for (;;) {
    /* an entry: an object, or an empty array (a table with no keys) */
    if (s[i] == '[') {
      r->ci++;
      i = ws(r, i + 1);
      if (s[i] != ']') return -1;
      i++;
    } else if (s[i] == '{') {
      r->ci++;
      i = ws(r, i + 1);
      if (s[i] == '}') {
        i++;
      } else {
        for (;;) {
          int esc;
          size_t j = str_end(r, i, &esc);
          push_str(r, i, j, esc); /* msgId */
          i = ws(r, ws(r, j) + 1);
          if (is_success) {
            if (s[i] != '{' && s[i] != '[') return -1;
            if (outcomes) {
              i = push_outcome(r, i);
              if (i == (size_t)-1) return -1;
            } else {
              if (s[i] == '{') {
                luaL_checkstack(L, 3, "commsease: JSON nested too deep");
                i = push_object(r, i, 1);
                if (i == (size_t)-1) return -1;
              } else {
                i = push_value(r, i); /* an empty array: a table with no fields */
              }
            }
          } else if (s[i] == '"') {
            j = str_end(r, i, &esc);
            push_str(r, i, j, esc);
            i = j;
          } else {
            /* a reason that is not text: kept readable as JSON text, from a
             * table built as lua-cjson builds it (its keys keep their order) */
            r->grow = 1;
            i = push_value(r, i);
            r->grow = 0;
            if (lua_type(L, -1) != LUA_TSTRING) { /* (an integer beyond 2^53 is its digits) */
              if (lcms_json_encode(L, -1)) return -1;
              lua_replace(L, -2);
            }
          }
          lua_rawset(L, dst);
          i = ws(r, i);
          if (s[i] == '}') {
            i++;
            break;
          }
          i = ws(r, i + 1);
        }
      }
    } else {
      return -1;
    }
    i = ws(r, i);
    if (s[i] == ']') return 0;
    i = ws(r, i + 1);
  }
}

/* the same for a decoded answer at ans (a table): what a list must be for
 * its entries to be read, key by key as lua_next gives them */
static int collect(lua_State *L, int ans, const char *key, int dst, int is_success) {
  size_t i, n, keys = 0;
  lua_getfield(L, ans, key);
  if (lua_isnil(L, -1) || lua_type(L, -1) == LUA_TLIGHTUSERDATA) { /* absent or null */
    lua_pop(L, 1);
    return 0;
  }
  if (lua_type(L, -1) != LUA_TTABLE) return -1;
  n = (size_t)lua_rawlen(L, -1);
  lua_pushnil(L);
  while (lua_next(L, -2)) { /* an array, not an object */
    lua_pop(L, 1);
    keys++;
  }
  if (keys != n) return -1;
  for (i = 1; i <= n; i++) {
    int entry;
    lua_rawgeti(L, -1, (lua_Integer)i);
    entry = lua_gettop(L);
    if (lua_type(L, entry) != LUA_TTABLE) return -1;
    lua_pushnil(L);
    while (lua_next(L, entry)) {
      if (lua_type(L, -2) != LUA_TSTRING) return -1;
      if (is_success) {
        if (lcms_result_ints(L)) return -1;
      } else if (lua_type(L, -1) != LUA_TSTRING) {
        if (lcms_json_encode(L, -1)) return -1;
        lua_replace(L, -2);
      }
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, dst);
    }
    lua_settop(L, entry - 1);
  }
  lua_pop(L, 1);
  return 0;
}

int lcms_answer_read(lua_State *L, const char *body, size_t len, int msgids,
                     const char *request_id, const char *endpoint, long long *api_code,
                     unsigned flags) {
  cms_json_box boxes[COUNTS_CAP];
  cms_json_info sc;
  part parts[P_COUNT];
  rd r;
  int top = lua_gettop(L), res, k;
  size_t i;
  long long code;
  memset(&sc, 0, sizeof sc);
  memset(parts, 0, sizeof parts);
  sc.boxes = boxes;
  sc.boxes_cap = COUNTS_CAP;
  if (msgids) msgids = lua_absindex(L, msgids);
  if (cms_json_scan(body, len, 0, &sc)) {
    if (memchr(body, 0, len)) /* lua-cjson stopped there, so it gets its own word */
      return lcms_response_error(L, "the answer holds a NUL byte (JSON text never does)", request_id,
                           endpoint);
    return lcms_response_error(L, "the answer is not a JSON object", request_id, endpoint);
  }
  if (sc.top != CMS_JSON_OBJECT && sc.top != CMS_JSON_ARRAY)
    return lcms_response_error(L, "the answer is not a JSON object", request_id, endpoint);
  if (sc.top == CMS_JSON_ARRAY)
    return lcms_response_error(L, "the answer has no numeric code", request_id, endpoint);
  r.L = L;
  r.s = (const unsigned char *)body;
  r.n = len;
  r.boxes = boxes;
  r.ncap = COUNTS_CAP;
  r.ci = 1;
  r.grow = 0;
  /* where the parts are: the last of each name, as a table keeps it */
  i = ws(&r, ws(&r, 0) + 1);
  if (r.s[i] != '}') {
    for (;;) {
      int esc, which = -1;
      size_t j = str_end(&r, i, &esc), klen = j - i - 2;
      const char *key = body + i + 1;
      if (!esc) {
        if (klen == 4 && memcmp(key, "code", 4) == 0) which = P_CODE;
        else if (klen == 4 && memcmp(key, "desc", 4) == 0) which = P_DESC;
        else if (klen == 7 && memcmp(key, "success", 7) == 0) which = P_SUCCESS;
        else if (klen == 4 && memcmp(key, "fail", 4) == 0) which = P_FAIL;
      }
      i = ws(&r, ws(&r, j) + 1);
      if (which >= 0) {
        parts[which].at = i;
        parts[which].ci = r.ci;
      }
      i = ws(&r, skip_value(&r, i));
      if (r.s[i] == '}') break;
      i = ws(&r, i + 1);
    }
  }
  if (api_code) *api_code = 0;
  luaL_checkstack(L, 24, "commsease: no room on the Lua stack to parse an answer");
  /* code: a number or a numeric string */
  if (!parts[P_CODE].at) return lcms_response_error(L, "the answer has no numeric code", request_id,
                                              endpoint);
  push_part(&r, &parts[P_CODE]);
  if (lcms_result_int(L, -1, &code)) {
    lua_settop(L, top);
    return lcms_response_error(L, "the answer has no numeric code", request_id, endpoint);
  }
  lua_pop(L, 1);
  if (api_code) *api_code = code;
  if (code != 200) {
    const char *desc;
    lcms_errinfo ei = {"api", code, NULL, NULL, cms_api_code_retryable(code), 1, request_id,
                       endpoint};
    if (parts[P_DESC].at && (r.s[parts[P_DESC].at] == '{' || r.s[parts[P_DESC].at] == '[')) {
      /* a table, written back as JSON text: built as lua-cjson builds it */
      r.grow = 1;
      push_part(&r, &parts[P_DESC]);
      r.grow = 0;
    } else if (parts[P_DESC].at) {
      push_part(&r, &parts[P_DESC]);
    } else {
      lua_pushnil(L);
    }
    if (lua_type(L, -1) == LUA_TTABLE) {
      if (lcms_json_encode(L, -1) == 0) lua_replace(L, -2);
      else lua_pop(L, 1); /* cannot be written (inf): no desc; the stack stays as it was */
    }
    desc = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    ei.message = desc && *desc ? desc : "the service refused the call (no desc)";
    lcms_push_error(L, &ei); /* desc nil err */
    lua_replace(L, top + 1);  /* err nil */
    lua_pop(L, 1);            /* err */
    lua_pushnil(L);
    lua_insert(L, top + 1);   /* nil err */
    return 2;
  }
  lua_createtable(L, 0, 6);
  res = lua_gettop(L);
  lua_pushinteger(L, 200);
  lua_setfield(L, res, "code");
  for (k = P_SUCCESS; k <= P_FAIL; k++) {
    const part *p = &parts[k];
    /* presize the map: one member per entry is the usual shape */
    int hint = p->at && r.s[p->at] == '[' && p->ci < COUNTS_CAP ? (int)boxes[p->ci].count : 0;
    lua_createtable(L, 0, hint);
    if (read_list(&r, p, lua_gettop(L), k == P_SUCCESS, (flags & LCMS_ANSWER_OUTCOMES) != 0)) {
      /* a list read in one pass may still pass as a decoded table (a key
       * repeated inside an entry: the last one counts); decide on lua-cjson's
       * way of building the whole answer, as before this reader */
      lua_settop(L, top);
      r.grow = 1;
      r.ci = 0;
      push_value(&r, ws(&r, 0));
      lua_createtable(L, 0, 6);
      res = lua_gettop(L);
      lua_pushinteger(L, 200);
      lua_setfield(L, res, "code");
      for (k = P_SUCCESS; k <= P_FAIL; k++) {
        lua_newtable(L);
        if (collect(L, top + 1, k == P_SUCCESS ? "success" : "fail", lua_gettop(L),
                    k == P_SUCCESS)) {
          lua_settop(L, top);
          return lcms_response_error(L, k == P_SUCCESS ? "the answer's success list is malformed"
                                                 : "the answer's fail list is malformed",
                               request_id, endpoint);
        }
        if (k == P_SUCCESS && (flags & LCMS_ANSWER_OUTCOMES)) {
          /* outcomes only: each record becomes its time, or true */
          int dst = lua_gettop(L);
          lua_pushnil(L);
          while (lua_next(L, dst)) {
            lua_getfield(L, -1, "time");
            if (lua_isnil(L, -1)) {
              lua_pop(L, 1);
              lua_pushboolean(L, 1);
            }
            lua_replace(L, -2);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, dst);
          }
        }
        lua_setfield(L, res, k == P_SUCCESS ? "success" : "fail");
      }
      lua_remove(L, top + 1);
      res = top + 1;
      break;
    }
    lua_setfield(L, res, k == P_SUCCESS ? "success" : "fail");
  }
  if (msgids) {
    lua_pushvalue(L, msgids);
    lua_setfield(L, res, "msgIds");
  }
  if (request_id) {
    lua_pushstring(L, request_id);
    lua_setfield(L, res, "request_id");
  }
  return 1;
}
