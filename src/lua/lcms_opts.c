/* lcms_opts.c -- the options of send_all, fanout and plan. */
#include <string.h>
#include "lcms.h"

void lcms_read_runopts(lua_State *L, int opts, lcms_runopts *o, int fanout, int default_retries,
                       const char *fname) {
  (void)fname;
  memset(o, 0, sizeof *o);
  o->sched.concurrency = 8;
  o->sched.retries = default_retries;
  o->sched.resend_ambiguous = fanout;
  o->sched.receiver_rate = fanout ? 20 : 0;
  o->sched.backoff_ms = 100;
  if (lua_isnoneornil(L, opts)) {
    if (!fanout) o->sched.backoff_ms = 0;
    return;
  }
  luaL_checktype(L, opts, LUA_TTABLE);
  lua_getfield(L, opts, "concurrency");
  if (!lua_isnil(L, -1)) {
    int isnum = 0;
    lua_Integer v = lua_tointegerx(L, -1, &isnum);
    if (!isnum || v < 1 || v > LCMS_MAX_CONCURRENCY)
      luaL_error(L, "commsease: opts.concurrency must be an integer from 1 to %d",
                 LCMS_MAX_CONCURRENCY);
    o->sched.concurrency = (int)v;
  }
  lua_pop(L, 1);
  lua_getfield(L, opts, "retries");
  if (!lua_isnil(L, -1)) {
    int isnum = 0;
    lua_Integer v = lua_tointegerx(L, -1, &isnum);
    if (!isnum || v < 0 || v > 20) luaL_error(L, "commsease: opts.retries must be from 0 to 20");
    o->sched.retries = (int)v;
  }
  lua_pop(L, 1);
  lua_getfield(L, opts, "deadline");
  if (!lua_isnil(L, -1)) {
    double d = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || !(d > 0 && d <= 604800))
      luaL_error(L, "commsease: opts.deadline must be a number of seconds in (0, 604800]");
    o->deadline_s = d;
  }
  lua_pop(L, 1);
  lua_getfield(L, opts, "per_receiver_rate");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER ||
        !(lua_tonumber(L, -1) == 0 || (lua_tonumber(L, -1) >= 0.1 && lua_tonumber(L, -1) <= 1e6)))
      luaL_error(L, "commsease: opts.per_receiver_rate must be 0 (off) or from 0.1 to 1e6");
    if (fanout) o->sched.receiver_rate = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  lua_getfield(L, opts, "backoff");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0 && lua_tonumber(L, -1) <= 60))
      luaL_error(L, "commsease: opts.backoff must be a number of seconds from 0 to 60");
    o->sched.backoff_ms = (long)(lua_tonumber(L, -1) * 1000);
  }
  lua_pop(L, 1);
  if (!fanout) o->sched.backoff_ms = 0; /* send_all fails over at once, as send does */
  lua_getfield(L, opts, "on_progress");
  if (!lua_isnil(L, -1)) {
    if (!lua_isfunction(L, -1)) luaL_error(L, "commsease: opts.on_progress must be a function");
    o->progress = lua_gettop(L); /* stays on the stack */
  } else {
    lua_pop(L, 1);
  }
}
