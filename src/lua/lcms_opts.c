/* lcms_opts.c -- the one option reader of commsease.new, send_all, fanout and
 * plan: a table of names, types and ranges, read raw (lua_next, never
 * __index), an unknown key or a wrong type refused naming the argument, one
 * range per option wherever it is taken.  Also the sequence check of lists
 * (the send_all list, endpoints): a hole is refused, never skipped. */
#include <stdio.h>
#include <string.h>
#include "lcms.h"

#define NEW LCMS_FOR_NEW
#define ALL LCMS_FOR_SEND_ALL
#define FAN LCMS_FOR_FANOUT

/* indexed by lcms_opt_id; to add an option, add its id in lcms.h and its row here */
static const lcms_opt_rule rules[] = {
  {LCMS_O_APPKEY, "appkey", LCMS_OT_STRING, 0, 0, 0, NEW},
  {LCMS_O_SECRET, "secret", LCMS_OT_STRING, 0, 0, 0, NEW},
  {LCMS_O_ENDPOINT, "endpoint", LCMS_OT_STRING, 0, 0, 0, NEW},
  {LCMS_O_ENDPOINTS, "endpoints", LCMS_OT_LIST, 0, 0, 0, NEW},
  {LCMS_O_TIMEOUT, "timeout", LCMS_OT_NUMBER, 0.001, 3600, 0, NEW},
  {LCMS_O_CONNECT_TIMEOUT, "connect_timeout", LCMS_OT_NUMBER, 0.001, 3600, 0, NEW},
  {LCMS_O_RETRIES, "retries", LCMS_OT_INTEGER, 0, 10, 0, NEW | ALL | FAN},
  {LCMS_O_CA_FILE, "ca_file", LCMS_OT_STRING, 0, 0, 0, NEW},
  {LCMS_O_PROXY, "proxy", LCMS_OT_STRING, 0, 0, 0, NEW},
  {LCMS_O_RATE_LIMIT, "rate_limit", LCMS_OT_NUMBER, 0, 1e6, 0, NEW},
  {LCMS_O_RATE_LIMIT_PENALTY, "rate_limit_penalty", LCMS_OT_NUMBER, 0, 3600, 0, NEW},
  {LCMS_O_CONCURRENCY, "concurrency", LCMS_OT_INTEGER, 1, LCMS_MAX_CONCURRENCY, 0, ALL | FAN},
  {LCMS_O_DEADLINE, "deadline", LCMS_OT_NUMBER, 0, 604800, LCMS_OF_LO_OPEN, ALL | FAN},
  {LCMS_O_PER_RECEIVER_RATE, "per_receiver_rate", LCMS_OT_NUMBER, 0.1, 1e6, LCMS_OF_ZERO_OFF, FAN},
  {LCMS_O_BACKOFF, "backoff", LCMS_OT_NUMBER, 0, 60, 0, FAN},
  {LCMS_O_ON_PROGRESS, "on_progress", LCMS_OT_FUNCTION, 0, 0, 0, ALL | FAN},
  {LCMS_O_RATE_STORE, "rate_store", LCMS_OT_STRING, 0, 0, 0, NEW},
  {LCMS_O_RATE_STORE_TIMEOUT, "rate_store_timeout", LCMS_OT_NUMBER, 0.001, 10, 0, NEW},
  {LCMS_O_RESULTS, "results", LCMS_OT_STRING, 0, 0, 0, ALL | FAN}, /* "full" or "outcomes" */
  {LCMS_O_ON_ATTEMPT, "on_attempt", LCMS_OT_FUNCTION, 0, 0, 0, NEW},
};
_Static_assert(sizeof rules / sizeof rules[0] == LCMS_O__COUNT, "one row per lcms_opt_id");

const lcms_opt_rule *lcms_opt_rules(void) { return rules; }

static const char *type_name(lcms_opt_type t) {
  switch (t) {
    case LCMS_OT_STRING: return "a string";
    case LCMS_OT_NUMBER: return "a number";
    case LCMS_OT_INTEGER: return "an integer";
    case LCMS_OT_FUNCTION: return "a function";
    case LCMS_OT_LIST: return "a list";
  }
  return "?";
}

static int has_ctl(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 1;
  return 0;
}

/* the range of a number option, for its error */
static void range_text(const lcms_opt_rule *r, char *buf, size_t cap) {
  if (r->flags & LCMS_OF_LO_OPEN) snprintf(buf, cap, "in (%g, %g]", r->lo, r->hi);
  else if (r->flags & LCMS_OF_ZERO_OFF) snprintf(buf, cap, "0 (off) or from %g to %g", r->lo, r->hi);
  else snprintf(buf, cap, "from %g to %g", r->lo, r->hi);
}

static void check_value(lua_State *L, const lcms_opt_rule *r, int v, lcms_optv *out,
                        const char *fname, int argn) {
  int t = lua_type(L, v);
  int ok = 0;
  switch (r->type) {
    case LCMS_OT_STRING: ok = t == LUA_TSTRING; break;
    case LCMS_OT_NUMBER: ok = t == LUA_TNUMBER; break;
    case LCMS_OT_INTEGER: {
      int isint = 0;
      if (t == LUA_TNUMBER) (void)lua_tointegerx(L, v, &isint);
      ok = isint;
      break;
    }
    case LCMS_OT_FUNCTION: ok = t == LUA_TFUNCTION; break;
    case LCMS_OT_LIST: ok = t == LUA_TTABLE; break;
  }
  if (!ok)
    luaL_error(L, "%s: option '%s' must be %s, not a %s (argument #%d)", fname, r->name,
               type_name(r->type), luaL_typename(L, v), argn);
  out->set = 1;
  if (r->type == LCMS_OT_NUMBER || r->type == LCMS_OT_INTEGER) {
    double d = (double)lua_tonumber(L, v);
    int in = (r->flags & LCMS_OF_LO_OPEN) ? (d > r->lo && d <= r->hi) : (d >= r->lo && d <= r->hi);
    if ((r->flags & LCMS_OF_ZERO_OFF) && d == 0) in = 1;
    if (!in) {
      char range[80];
      range_text(r, range, sizeof range);
      luaL_error(L, "%s: option '%s' must be %s%s (argument #%d)", fname, r->name,
                 r->type == LCMS_OT_INTEGER ? "an integer " : "", range, argn);
    }
    out->num = d;
    if (r->type == LCMS_OT_INTEGER) out->i = lua_tointeger(L, v);
  } else if (r->type == LCMS_OT_STRING) {
    out->s = lua_tolstring(L, v, &out->len); /* kept alive by the options table */
    if (has_ctl(out->s, out->len))
      luaL_error(L, "%s: option '%s' holds a control character (CR, LF, NUL...) (argument #%d)",
                 fname, r->name, argn);
  }
}

void lcms_opts_read(lua_State *L, int idx, int users, const char *fname, int argn,
                    lcms_optv out[LCMS_O__COUNT]) {
  memset(out, 0, sizeof(lcms_optv) * LCMS_O__COUNT);
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 8, "commsease: no room on the Lua stack for the options");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int k = LCMS_O__COUNT;
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *key = lua_tostring(L, -2);
      for (k = 0; k < LCMS_O__COUNT; k++)
        if ((rules[k].users & users) && strcmp(key, rules[k].name) == 0) break;
    }
    if (k == LCMS_O__COUNT) {
      /* a copy of the key, so that luaL_tolstring cannot upset lua_next */
      lua_pushvalue(L, -2);
      luaL_error(L, "%s: unknown option '%s' (argument #%d)", fname, luaL_tolstring(L, -1, NULL),
                 argn);
    }
    check_value(L, &rules[k], lua_gettop(L), &out[k], fname, argn);
    lua_pop(L, 1);
  }
}

void lcms_read_runopts(lua_State *L, int opts, lcms_runopts *o, int fanout, int default_retries,
                       const char *fname) {
  lcms_optv v[LCMS_O__COUNT];
  /* the argument's number as the caller sees it (a method: self is not counted) */
  int argn = opts - 1;
  memset(o, 0, sizeof *o);
  o->sched.concurrency = 8;
  o->sched.retries = default_retries;
  o->sched.resend_ambiguous = fanout;
  o->sched.receiver_rate = fanout ? 20 : 0;
  o->sched.backoff_ms = fanout ? 100 : 0; /* send_all fails over at once, as send does */
  if (lua_isnoneornil(L, opts)) return;
  if (lua_type(L, opts) != LUA_TTABLE)
    luaL_error(L, "%s: the options (argument #%d) must be a table, not a %s", fname, argn,
               luaL_typename(L, opts));
  lcms_opts_read(L, opts, fanout ? LCMS_FOR_FANOUT : LCMS_FOR_SEND_ALL, fname, argn, v);
  if (v[LCMS_O_CONCURRENCY].set) o->sched.concurrency = (int)v[LCMS_O_CONCURRENCY].i;
  if (v[LCMS_O_RETRIES].set) o->sched.retries = (int)v[LCMS_O_RETRIES].i;
  if (v[LCMS_O_DEADLINE].set) o->deadline_s = v[LCMS_O_DEADLINE].num;
  if (v[LCMS_O_PER_RECEIVER_RATE].set) o->sched.receiver_rate = v[LCMS_O_PER_RECEIVER_RATE].num;
  if (v[LCMS_O_BACKOFF].set) o->sched.backoff_ms = (long)(v[LCMS_O_BACKOFF].num * 1000);
  if (v[LCMS_O_RESULTS].set) {
    if (strcmp(v[LCMS_O_RESULTS].s, "outcomes") == 0) o->outcomes = 1;
    else if (strcmp(v[LCMS_O_RESULTS].s, "full") != 0)
      luaL_error(L, "%s: option 'results' must be \"full\" or \"outcomes\" (argument #%d)", fname,
                 argn);
  }
  if (v[LCMS_O_ON_PROGRESS].set) {
    lua_pushliteral(L, "on_progress");
    lua_rawget(L, opts);
    o->progress = lua_gettop(L); /* stays on the stack */
  }
}

int lcms_check_list(lua_State *L, int idx, const char *fname, const char *what, int argn) {
  lua_Integer n = 0, max = 0, i;
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 4, "commsease: no room on the Lua stack to check a list");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int isint = 0;
    lua_Integer k = lua_type(L, -2) == LUA_TNUMBER ? lua_tointegerx(L, -2, &isint) : 0;
    lua_pop(L, 1);
    if (!isint || k < 1) {
      lua_pushvalue(L, -1);
      luaL_error(L, "%s: %s (argument #%d) must be a list; it holds the key '%s'", fname, what,
                 argn, luaL_tolstring(L, -1, NULL));
    }
    n++;
    if (k > max) max = k;
  }
  if (max != n) {
    for (i = 1; i <= max; i++) {
      lua_rawgeti(L, idx, i);
      if (lua_isnil(L, -1)) break;
      lua_pop(L, 1);
    }
    luaL_error(L, "%s: %s[%d] is missing (argument #%d): a list with holes would lose the "
               "entries after them",
               fname, what, (int)i, argn);
  }
  if (n > 0x7fffffff) luaL_error(L, "%s: %s is too long", fname, what);
  return (int)n;
}
