/* lcms_run.c -- the calls of one send_all, fanout or plan run, between the
 * scheduler (src/core/cms_sched.c) and a driver: the Lua-owned block that
 * holds the scheduler, encoding a call for an attempt (a fan-out's resends
 * marked resendFlag = 1, a send_all call sent again with its first body), and
 * the results: a settled call's { res = } / { err = } entry and on_progress.
 * The drivers (lcms_multi.c, lcms_plan.c) call in here; nothing here calls
 * a driver. */
#include <string.h>
#include "lcms.h"
#include "lcms_wire.h"

void lcms_run_alloc(lua_State *L, lcms_run *r, int n, const cms_sched_opts *o) {
  size_t sz = cms_sched_size(n), rz = sizeof(lcms_rid) * ((size_t)n + 1);
  size_t tz = sizeof(double) * ((size_t)n + 1), toff;
  char *block;
  toff = (sz + rz + sizeof(double) - 1) / sizeof(double) * sizeof(double);
  block = lua_newuserdata(L, toff + tz);
  r->s = (cms_sched *)(void *)block;
  cms_sched_init(r->s, n, o, r->c->rate, lcms_rand_below, r->c);
  r->rids = (lcms_rid *)(void *)(block + sz);
  memset(r->rids, 0, rz);
  r->t0 = (double *)(void *)(block + toff);
  memset(r->t0, 0, tz);
}

/* marks every message of call i as a resend (the chunk's copies, never the
 * caller's tables) */
static void mark_resend(lcms_run *r, int i) {
  lua_State *L = r->L;
  size_t k, n;
  lua_rawgeti(L, r->list, i);
  lua_getfield(L, -1, "msgList");
  if (lua_type(L, -1) == LUA_TTABLE) {
    n = (size_t)lua_rawlen(L, -1);
    for (k = 1; k <= n; k++) {
      lua_rawgeti(L, -1, (lua_Integer)k);
      if (lua_type(L, -1) == LUA_TTABLE) {
        lua_pushinteger(L, 1);
        lua_setfield(L, -2, "resendFlag");
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 2);
}

int lcms_run_encode(lcms_run *r, const cms_sched_step *st, cms_buf *form) {
  lua_State *L = r->L;
  int i = st->call, top = lua_gettop(L);
  cms_verr e;
  int kept = 0;
  if (st->new_rid) r->rids[i][0] = '\0'; /* after a 431: a new RequestId */
  if (!r->fanout && st->resend) {
    /* a send_all call after a 431: its messages as resends, with the msgIds
     * of its first body (generated ones included) */
    lua_rawgeti(L, r->list, i);
    lua_rawgeti(L, r->ids, i);
    if (lcms_encode_resend(L, top + 1, top + 2, form)) {
      lua_remove(L, top + 1); /* nil, err stay */
      lua_remove(L, top + 1);
      return -1;
    }
    lua_settop(L, top);
    kept = 1;
  } else if (!r->fanout) {
    /* a send_all call sent again goes with the body of its first attempt
     * (the same generated msgIds) */
    lua_rawgeti(L, r->bodies, i);
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t len;
      const char *body = lua_tolstring(L, -1, &len);
      cms_buf_reset(form);
      if (cms_buf_add(form, body, len)) {
        lua_settop(L, top);
        lcms_push_local_error(L, "out of memory", r->rids[i][0] ? r->rids[i] : NULL);
        return -1;
      }
      kept = 1;
    }
    lua_settop(L, top);
  }
  if (!kept) {
    if (r->fanout && st->resend) mark_resend(r, i);
    lua_rawgeti(L, r->list, i);
    if (lcms_encode(L, top + 1, form, &e)) {
      lua_settop(L, top);
      lcms_push_invalid(L, &e);
      return -1;
    }
    lua_rawseti(L, r->ids, i);
    lua_settop(L, top);
  }
  if (!r->rids[i][0] && cms_rand_hex32(&r->c->rand, r->rids[i])) {
    r->rids[i][0] = '\0';
    lcms_push_local_error(L, "no random bytes for a RequestId", NULL);
    return -1;
  }
  return 0;
}

void lcms_run_final(lcms_run *r, int i, int nret) {
  lua_State *L = r->L;
  if (r->t0[i] > 0) lcms_note_call(r->c, CMS_API_PATH, lcms_clock_s() - r->t0[i]);
  lua_createtable(L, 0, 1);
  if (nret == 1) {
    lua_insert(L, -2);
    lua_setfield(L, -2, "res");
  } else {
    lua_insert(L, -3);
    lua_setfield(L, -3, "err");
    lua_pop(L, 1);
  }
  lua_rawseti(L, r->results, i);
  if (r->progress && lua_isnil(L, r->perr)) {
    lua_pushvalue(L, r->progress);
    lua_pushinteger(L, r->s->done);
    lua_pushinteger(L, r->s->n);
    int rc = lua_pcall(L, 2, 0, 0);
    if (rc == LUA_ERRMEM) lua_error(L); /* a memory error raises, even from on_progress */
    if (rc != LUA_OK) lua_replace(L, r->perr);
  }
}

void lcms_run_outcome(lcms_run *r, int i, int nret, cms_sched_outcome out, long long now,
                      const cms_buf *form) {
  lua_State *L = r->L;
  int settled = cms_sched_done(r->s, i, out, now);
  if (settled == 1) {
    lcms_run_final(r, i, nret);
    return;
  }
  lua_pop(L, nret);
  if (settled == 0 && !r->fanout && form) {
    lua_rawgeti(L, r->bodies, i);
    if (lua_isnil(L, -1)) {
      lua_pushlstring(L, form->data ? form->data : "", form->len);
      lua_rawseti(L, r->bodies, i);
    }
    lua_pop(L, 1);
  }
}

void lcms_run_expire(lcms_run *r, const cms_sched_step *st) {
  lua_State *L = r->L;
  int i = st->call;
  lcms_errinfo ei = {"transport", 0, "deadline", NULL, 1, st->sent,
                     r->rids[i][0] ? r->rids[i] : NULL, r->c->endpoints[r->s->calls[i].ep]};
  lcms_push_error(L, &ei);
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "deadline");
  lcms_run_final(r, i, 2);
}

void lcms_run_prevalidate(lcms_run *r) {
  lua_State *L = r->L;
  int i, top = lua_gettop(L);
  cms_verr e;
  for (i = 1; i <= r->s->n; i++) {
    lua_rawgeti(L, r->list, i);
    if (lcms_encode(L, top + 1, NULL, &e)) {
      lua_settop(L, top);
      cms_sched_settle(r->s, i);
      lcms_run_final(r, i, lcms_push_invalid(L, &e));
    }
    lua_settop(L, top);
  }
}
