/* lcms_json.c -- decoding (and re-encoding answers) through a private
 * lua-cjson instance (cjson.new()), so a script's own cjson settings never
 * change what goes on the wire; and the module's own writer of callers' tables
 * (lcms_json_write, below): raw reads, exact numbers, cycles refused, work
 * bounded by the field's limit. */
#include <string.h>
#include "lcms.h"

const char lcms_key_encode = 0, lcms_key_decode = 0;

void lcms_open_json(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "new");
  if (lua_isfunction(L, -1)) {
    lua_call(L, 0, 1);
    lua_remove(L, -2);
  } else {
    lua_pop(L, 1); /* an old cjson without new(): share the module's instance */
  }
  lua_getfield(L, -1, "encode_max_depth"); /* as deep as the encoder's number check goes */
  if (lua_isfunction(L, -1)) {
    lua_pushinteger(L, 32);
    lua_call(L, 1, 0);
  } else {
    lua_pop(L, 1);
  }
  lua_getfield(L, -1, "encode");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lcms_key_encode);
  lua_getfield(L, -1, "decode");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lcms_key_decode);
  lua_pop(L, 1);
}

/* lua-cjson writes "/" as "\/" (valid, but each one costs a character of
 * the 4096 allowed and reads badly in a URL).  Walking the escape pairs, this
 * writes it back as "/"; any other escape stays as it is. */
static void unescape_solidus(lua_State *L) {
  size_t n, i;
  const char *s = lua_tolstring(L, -1, &n);
  luaL_Buffer b;
  if (!memchr(s, '/', n)) return;
  luaL_buffinit(L, &b);
  for (i = 0; i < n; i++) {
    if (s[i] == '\\' && i + 1 < n) {
      if (s[i + 1] != '/') luaL_addchar(&b, '\\');
      luaL_addchar(&b, s[++i]);
    } else {
      luaL_addchar(&b, s[i]);
    }
  }
  luaL_pushresult(&b);
  lua_remove(L, -2);
}

int lcms_json_encode(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lcms_key_encode);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) return -1;
  unescape_solidus(L);
  return 0;
}

int lcms_json_decode(lua_State *L, const char *s, size_t n) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lcms_key_decode);
  lua_pushlstring(L, s, n);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) return -1;
  return 0;
}

/* ---- the module's own writer for callers' tables ---- */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "lcms_json.h"

/* the scratch the writer builds the text in: a userdata, so that a memory
 * error raised while it grows leaks nothing; kept in the registry between
 * calls, and taken out of it while in use (a __gc run by an allocation may
 * encode too, and then gets its own) */
static const char lcms_key_jscratch = 0;
#define SCRATCH_MIN 1024
#define SCRATCH_KEEP (64u << 10)

#define TWO53 9007199254740992.0

lcms_int_kind lcms_to_integer(lua_State *L, int idx, long long *out) {
  if (lua_type(L, idx) != LUA_TNUMBER) return LCMS_INT_NOT;
  return lcms_number_to_integer(L, idx, out);
}

lcms_int_kind lcms_number_to_integer(lua_State *L, int idx, long long *out) {
  double d;
#if LUA_VERSION_NUM >= 503
  if (lua_isinteger(L, idx)) {
    *out = (long long)lua_tointeger(L, idx);
    return LCMS_INT_OK;
  }
#endif
  d = (double)lua_tonumber(L, idx);
  if (!isfinite(d) || d != floor(d)) return LCMS_INT_NOT;
  if (fabs(d) >= TWO53) return LCMS_INT_IMPRECISE;
  *out = (long long)d;
  return LCMS_INT_OK;
}

typedef struct jw {
  lua_State *L;
  int slot;                 /* stack slot of the scratch userdata */
  char *b;
  size_t len, cap, limit;
  int depth;
  const void *open[LCMS_JSON_MAX_DEPTH]; /* the tables on the current path */
  /* where the value being written sits, formatted only on a failure: level d
   * is the key (a stack index, or 0 with the array index in i) inside the
   * table open at depth d; the first plevels levels are valid */
  struct { int key; long long i; } lv[LCMS_JSON_MAX_DEPTH];
  int plevels;
  const char *base;         /* the field's path */
  char path[128];
  unsigned max_chars;
  cms_verr *e;
  int too_long;
} jw;

/* formats w->path from the base path and the valid levels */
static void make_path(jw *w) {
  size_t len;
  int d;
  snprintf(w->path, sizeof w->path, "%s", w->base);
  len = strlen(w->path);
  for (d = 0; d < w->plevels && len < sizeof w->path - 1; d++) {
    lua_State *L = w->L;
    int m;
    if (!w->lv[d].key) {
      m = snprintf(w->path + len, sizeof w->path - len, "[%lld]", w->lv[d].i);
    } else if (lua_type(L, w->lv[d].key) == LUA_TSTRING) {
      size_t n, i;
      const char *k = lua_tolstring(L, w->lv[d].key, &n);
      int ident = n > 0;
      for (i = 0; i < n && ident; i++) {
        unsigned char c = (unsigned char)k[i];
        if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (i && c >= '0' && c <= '9')))
          ident = 0;
      }
      m = ident ? snprintf(w->path + len, sizeof w->path - len, ".%.*s", (int)(n > 80 ? 80 : n), k)
                : snprintf(w->path + len, sizeof w->path - len, "[\"%.*s\"]",
                           (int)(n > 40 ? 40 : n), k);
    } else {
      long long v = 0;
      lcms_to_integer(L, w->lv[d].key, &v);
      m = snprintf(w->path + len, sizeof w->path - len, "[%lld]", v);
    }
    if (m < 0) break;
    len = len + (size_t)m < sizeof w->path ? len + (size_t)m : sizeof w->path - 1;
  }
}

static int jfail(jw *w, const char *fmt, const char *detail) {
  char msg[200];
  make_path(w);
  snprintf(msg, sizeof msg, fmt, detail);
  return cms_verr_set(w->e, w->path, "%s %s", w->path, msg);
}

static int grow(jw *w, size_t need) {
  size_t cap = w->cap;
  char *nb;
  if (need > w->limit) {
    w->too_long = 1;
    return -1;
  }
  while (cap < need) cap = cap > w->limit / 2 ? w->limit : cap * 2;
  nb = lua_newuserdata(w->L, cap);
  memcpy(nb, w->b, w->len);
  lua_replace(w->L, w->slot);
  w->b = nb;
  w->cap = cap;
  return 0;
}

static int put(jw *w, const char *s, size_t n) {
  if (w->len + n > w->cap && grow(w, w->len + n)) return -1;
  memcpy(w->b + w->len, s, n);
  w->len += n;
  return 0;
}
#define PUTLIT(w, lit) put((w), (lit), sizeof(lit) - 1)

/* a JSON string literal of s (valid UTF-8 checked first) */
static int put_string(jw *w, const char *s, size_t n) {
  static const char hexd[] = "0123456789abcdef";
  size_t i = 0, run = 0;
  if (cms_utf16_len(s, n) < 0) return jfail(w, "%sis not valid UTF-8", "");
  if (PUTLIT(w, "\"")) return -1;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[6];
    size_t el = 2;
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    if (put(w, s + run, i - run)) return -1;
    esc[0] = '\\';
    switch (c) {
      case '"': esc[1] = '"'; break;
      case '\\': esc[1] = '\\'; break;
      case '\n': esc[1] = 'n'; break;
      case '\r': esc[1] = 'r'; break;
      case '\t': esc[1] = 't'; break;
      case '\b': esc[1] = 'b'; break;
      case '\f': esc[1] = 'f'; break;
      default:
        esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
        esc[4] = hexd[c >> 4]; esc[5] = hexd[c & 15];
        el = 6;
    }
    if (put(w, esc, el)) return -1;
    run = i + 1;
  }
  if (put(w, s + run, n - run)) return -1;
  return PUTLIT(w, "\"");
}

/* the shortest %.*g text of d that reads back as d, with '.' whatever the
 * locale says; 0 ok */
static int format_double(double d, char *out, size_t cap) {
  int prec;
  const char *dp = localeconv()->decimal_point;
  for (prec = 15; prec <= 17; prec++) {
    snprintf(out, cap, "%.*g", prec, d);
    if (strtod(out, NULL) == d) break;
  }
  if (prec > 17) return -1;
  if (dp && strcmp(dp, ".") != 0) { /* e.g. "," under a de_DE LC_NUMERIC */
    char *p = strstr(out, dp);
    if (p) {
      size_t dl = strlen(dp);
      *p = '.';
      memmove(p + 1, p + dl, strlen(p + dl) + 1);
    }
  }
  return 0;
}

/* the number at idx, written exactly or refused */
static int put_number(jw *w, int idx) {
  lua_State *L = w->L;
  char num[40];
  long long v;
  double d;
  switch (lcms_to_integer(L, idx, &v)) {
    case LCMS_INT_OK:
      snprintf(num, sizeof num, "%lld", v);
      return put(w, num, strlen(num));
    case LCMS_INT_IMPRECISE:
      if (format_double((double)lua_tonumber(L, idx), num, sizeof num))
        snprintf(num, sizeof num, "%.17g", (double)lua_tonumber(L, idx));
      return jfail(w, "is %s, a whole float of 2^53 or more: a double may already have rounded "
                   "it; pass it as a string (on Lua 5.3 and later an integer is written exactly)",
                   num);
    case LCMS_INT_NOT:
      break;
  }
  d = (double)lua_tonumber(L, idx);
  if (!isfinite(d)) return jfail(w, "is %s: JSON has no such number", isnan(d) ? "NaN" : "infinite");
  if (format_double(d, num, sizeof num))
    return jfail(w, "is a number that cannot be written exactly (%s)", "no round trip");
  return put(w, num, strlen(num));
}

static int put_value(jw *w, int idx);

/* the table at idx: an array if its keys are positive integers (holes are
 * written as null, as lua-cjson does, unless the array would be over half holes
 * and longer than 10), else an object whose integer keys are written as
 * decimal strings; an empty table is {} */
static int put_table(jw *w, int idx) {
  lua_State *L = w->L;
  const void *self = lua_topointer(L, idx);
  size_t count = 0, i;
  long long maxk = 0;
  int is_array = 1, d, level;
  for (d = 0; d < w->depth; d++)
    if (w->open[d] == self)
      return jfail(w, "%sholds a table that contains it (a cycle): JSON has no references", "");
  if (w->depth == LCMS_JSON_MAX_DEPTH)
    return jfail(w, "is nested deeper than %s levels", "32");
  if (!lua_checkstack(L, 4)) return jfail(w, "%sis nested too deep for the Lua stack", "");
  level = w->depth;
  w->open[w->depth++] = self;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    long long k;
    lua_pop(L, 1);
    count++;
    if (is_array && lcms_to_integer(L, -1, &k) == LCMS_INT_OK && k >= 1) {
      if (k > maxk) maxk = k;
    } else {
      is_array = 0;
    }
  }
  if (count == 0) {
    w->depth--;
    return PUTLIT(w, "{}");
  }
  if (is_array && (unsigned long long)maxk > count * 2 && maxk > 10)
    is_array = 0; /* over half holes: an object with the keys as decimal strings */
  if (is_array) {
    if (PUTLIT(w, "[")) return -1;
    for (i = 1; i <= (size_t)maxk; i++) {
      if (i > 1 && PUTLIT(w, ",")) return -1;
      lua_rawgeti(L, idx, (lua_Integer)i);
      w->lv[level].key = 0;
      w->lv[level].i = (long long)i;
      w->plevels = level + 1;
      if (lua_isnil(L, -1) ? PUTLIT(w, "null") : put_value(w, lua_gettop(L))) return -1;
      w->plevels = level;
      lua_pop(L, 1);
    }
    if (PUTLIT(w, "]")) return -1;
  } else {
    int first = 1;
    if (PUTLIT(w, "{")) return -1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      size_t kn;
      long long k;
      if (!first && PUTLIT(w, ",")) return -1;
      first = 0;
      w->lv[level].key = lua_gettop(L) - 1;
      if (lua_type(L, -2) == LUA_TSTRING) {
        const char *ks = lua_tolstring(L, -2, &kn);
        w->plevels = level + 1;
        if (put_string(w, ks, kn)) return -1;
      } else if (lua_type(L, -2) == LUA_TNUMBER &&
                 lcms_to_integer(L, -2, &k) == LCMS_INT_OK) {
        char num[32];
        w->plevels = level + 1;
        snprintf(num, sizeof num, "\"%lld\"", k);
        if (put(w, num, strlen(num))) return -1;
      } else {
        char tn[40];
        snprintf(tn, sizeof tn, "%s", luaL_typename(L, -2));
        return jfail(w, "has a %s key; a JSON object's keys are strings (or whole numbers)", tn);
      }
      if (PUTLIT(w, ":") || put_value(w, lua_gettop(L))) return -1;
      w->plevels = level;
      lua_pop(L, 1);
    }
    if (PUTLIT(w, "}")) return -1;
  }
  w->depth--;
  return 0;
}

static int put_value(jw *w, int idx) {
  lua_State *L = w->L;
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      return put_string(w, s, n);
    }
    case LUA_TNUMBER: return put_number(w, idx);
    case LUA_TBOOLEAN: return lua_toboolean(L, idx) ? PUTLIT(w, "true") : PUTLIT(w, "false");
    case LUA_TTABLE: return put_table(w, idx);
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) return PUTLIT(w, "null"); /* cjson.null */
      /* fall through */
    default: {
      char tn[40];
      snprintf(tn, sizeof tn, "%s", luaL_typename(L, idx));
      return jfail(w, "is a %s: it cannot be written as JSON", tn);
    }
  }
}

int lcms_json_write(lua_State *L, int idx, const char *path, unsigned max_chars, cms_verr *e) {
  jw w;
  int top = lua_gettop(L), rc;
  idx = lua_absindex(L, idx);
  memset(&w, 0, sizeof w);
  w.L = L;
  w.e = e;
  w.max_chars = max_chars;
  /* a text of at most max_chars UTF-16 units takes at most 3 bytes per unit */
  w.limit = max_chars ? 3 * (size_t)max_chars : LCMS_JSON_MAX_BYTES;
  w.base = path;
  luaL_checkstack(L, 8, "commsease: no room on the Lua stack to write JSON");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lcms_key_jscratch);
  if (lua_type(L, -1) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    lua_newuserdata(L, SCRATCH_MIN);
  } else {
    lua_pushnil(L); /* in use: out of the registry until done */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &lcms_key_jscratch);
  }
  w.slot = lua_gettop(L);
  w.b = lua_touserdata(L, w.slot);
  w.cap = (size_t)lua_rawlen(L, w.slot);
  rc = put_value(&w, idx);
  if (rc && w.too_long) {
    if (max_chars)
      cms_verr_set(e, path, "%s is longer than %u characters as JSON text; at most %u allowed",
                   path, max_chars, max_chars);
    else
      cms_verr_set(e, path, "%s is longer than %u bytes as JSON text", path, LCMS_JSON_MAX_BYTES);
  }
  lua_settop(L, w.slot);
  if (w.cap <= SCRATCH_KEEP) {
    lua_pushvalue(L, w.slot);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &lcms_key_jscratch);
  }
  if (rc) {
    lua_settop(L, top);
    return -1;
  }
  lua_pushlstring(L, w.b, w.len);
  lua_replace(L, w.slot);
  return 0;
}
