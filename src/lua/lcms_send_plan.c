/* lcms_send_plan.c -- sp = client:send_plan(params): client:send for any event
 * loop, with no I/O of its own (commsease.resty's send drives it over cosockets).
 *
 *   job, wait, err = sp:next()  the attempt to send now, { id = 0, method, url,
 *                               headers, body, timeout }, its token of the client's
 *                               budget taken and signed at that moment; or nil,
 *                               seconds to wait for the budget; or nil, nil once the
 *                               call is settled (nil, nil, err when it settled here:
 *                               the request could not be signed)
 *   res, err = sp:done(status, body)
 *   res, err = sp:done(nil, { sent =, message = [, code =] })
 *                               the attempt's outcome: nil, nil while the call goes
 *                               on, else the call's result, as send returns it
 *
 * The rules are the blocking send's (lcms_call.c): the next endpoint only when
 * nothing was sent or on HTTP 502 (lcms_failover), up to `retries`; the RequestId
 * and the body kept across attempts, each signed afresh; after a 416 the penalty.
 * Every attempt is counted in client:stats() and shown to on_attempt through the
 * functions the blocking send counts with (lcms_note_attempt, lcms_settle_call),
 * its outcome read as plan:done reads one (lcms_outcome_check, lcms_outcome_push).
 * The 431 path is the blocking send's too: a 431 to a later attempt means an
 * earlier one was processed and its answer lost, so the call goes once more with
 * a new RequestId and resendFlag = 1 on every message (msgIds kept), at most
 * LCMS_MAX_REPEATS times. */
#include <string.h>
#include "lcms.h"
#include "lcms_wire.h"

#define LCMS_SEND_PLAN_MT "commsease.send_plan"

/* the send plan's Lua values, in its user value table */
enum { SUV_CLIENT = 1, SUV_BODY, SUV_MSGIDS, SUV_KEYS, SUV_PARAMS, SUV_N = SUV_PARAMS };

enum { SP_READY, SP_FLIGHT, SP_DONE };

typedef struct lcms_send_plan {
  lcms_client *c;
  char rid[CMS_NONCE_LEN + 1];
  int state;
  int attempt;     /* attempts whose outcome came back */
  int repeats;     /* 431 answers learnt from */
  int resend;      /* the attempts are resends (after a 431) */
  int ep;          /* the endpoint of the attempt out, or of the next one */
  double t_call;   /* when the first attempt was handed out (lcms_clock_s), 0 = not yet */
  double t_job;    /* when the attempt out was handed out */
} lcms_send_plan_ud;

/* pushes the user value's entries above the arguments; uv: the index of the first */
static lcms_send_plan_ud *load(lua_State *L, int *uv) {
  lcms_send_plan_ud *p = luaL_checkudata(L, 1, LCMS_SEND_PLAN_MT);
  int k;
  luaL_checkstack(L, SUV_N + 24, "commsease: no room on the Lua stack for a send plan");
  lua_getuservalue(L, 1);
  *uv = lua_gettop(L) + 1;
  for (k = 1; k <= SUV_N; k++) lua_rawgeti(L, *uv - 1, k);
  if (!p->c->easy) luaL_error(L, "commsease: this send plan's client is closed");
  if (p->c->in_hook)
    luaL_error(L, "commsease: a client's own calls cannot be made from its on_attempt hook");
  return p;
}

static int sp_next(lua_State *L) {
  int uv;
  lcms_send_plan_ud *p;
  lcms_client *c;
  lcms_sig sg;
  long wait;
  lua_settop(L, 1);
  p = load(L, &uv);
  c = p->c;
  if (p->state == SP_DONE) return 0;
  if (p->state == SP_FLIGHT)
    return luaL_error(L, "commsease: send_plan:next() while its attempt is out "
                      "(hand its outcome back with send_plan:done first)");
  if ((wait = c->rate->ops->take(c->rate, cms_now_ms())) > 0) {
    lua_pushnil(L);
    lua_pushnumber(L, (lua_Number)wait / 1000.0);
    return 2;
  }
  if (lcms_sign(c, &sg)) {
    p->state = SP_DONE;
    lua_pushnil(L);
    lua_pushnil(L);
    lcms_push_local_error(L, "could not sign the request (libcrypto failure)", p->rid);
    lua_remove(L, -2);
    return 3;
  }
  {
    size_t len;
    const char *body = lua_tolstring(L, uv + SUV_BODY - 1, &len);
    int keys = uv + SUV_KEYS - 1;
    int t = lcms_push_request(L, keys, c, p->ep, &sg, p->rid, body, len, 2);
    lua_pushinteger(L, 0);
    lcms_set(L, keys, t, LCMS_K_ID);
    lua_pushnumber(L, (lua_Number)c->http.timeout_ms / 1000.0);
    lcms_set(L, keys, t, LCMS_K_TIMEOUT);
  }
  p->t_job = lcms_clock_s();
  if (!p->t_call) p->t_call = p->t_job;
  p->state = SP_FLIGHT;
  return 1;
}

static int sp_done(lua_State *L) {
  int uv, hook, nret = 0;
  lcms_send_plan_ud *p;
  lcms_client *c;
  lcms_outcome o;
  lcms_attempt a;
  lua_settop(L, 3);
  p = load(L, &uv);
  c = p->c;
  if (p->state != SP_FLIGHT)
    return luaL_error(L, "commsease: send_plan:done() without an attempt out "
                      "(send_plan:next() hands one out)");
  lcms_outcome_check(L, 2, 1, "send_plan:done", &o);
  a.seconds = lcms_clock_s() - p->t_job;
  a.path = CMS_API_PATH;
  a.endpoint = c->endpoints[p->ep];
  a.request_id = p->rid;
  a.out = o.out;
  a.x = &o.x;
  a.code = 0;
  a.attempt = p->attempt + 1;
  a.resend = p->resend;
  lcms_push_hook(L, uv + SUV_CLIENT - 1); /* (stays below the result's values) */
  hook = lua_isnil(L, -1) ? 0 : lua_gettop(L);
  if (p->attempt < c->retries && lcms_failover(o.out, o.status)) {
    /* nothing was processed: the next endpoint, as the blocking send goes */
    lcms_note_attempt(L, c, hook, &a);
    p->attempt++;
    p->ep = (p->ep + 1) % c->n_endpoints;
    p->state = SP_READY;
    return 0;
  }
  nret = lcms_outcome_push(L, 2, &o, uv + SUV_MSGIDS - 1, 0, p->rid, c->endpoints[p->ep], &a.code);
  lcms_note_attempt(L, c, hook, &a);
  if (a.code == 431 && p->attempt > 0 && p->repeats < LCMS_MAX_REPEATS) {
    /* an earlier attempt was processed: once more, a new RequestId, resendFlag = 1 */
    lua_pop(L, nret);
    if ((nret = lcms_encode_resend(L, uv + SUV_PARAMS - 1, uv + SUV_MSGIDS - 1, &c->form)) == 0) {
      if (!cms_rand_hex32(&c->rand, p->rid)) {
        lua_pushlstring(L, c->form.data ? c->form.data : "", c->form.len);
        lua_rawseti(L, uv - 1, SUV_BODY);
        p->repeats++;
        c->stats.repeats++;
        p->attempt++;
        p->resend = 1;
        p->state = SP_READY;
        return 0;
      }
      nret = lcms_push_local_error(L, "no random bytes for a RequestId", NULL);
    }
  }
  p->attempt++;
  p->state = SP_DONE;
  lcms_settle_call(c, CMS_API_PATH, a.code, p->t_call);
  return nret;
}

static int sp_tostring(lua_State *L) {
  lcms_send_plan_ud *p = luaL_checkudata(L, 1, LCMS_SEND_PLAN_MT);
  lua_pushfstring(L, "commsease.send_plan (%p): %d attempt(s)%s", (void *)p, p->attempt,
                  p->state == SP_DONE ? ", settled" : "");
  return 1;
}

/* sp = client:send_plan(params)  |  nil, err (invalid params) */
int lcms_send_plan(lua_State *L) {
  lcms_client *c = lcms_check_client(L);
  lcms_send_plan_ud *p;
  cms_verr e;
  lua_settop(L, 2);
  if (lcms_encode(L, 2, &c->form, &e)) return lcms_push_invalid(L, &e);
  /* stack: self params msgIds */
  p = lua_newuserdata(L, sizeof *p);
  memset(p, 0, sizeof *p);
  luaL_setmetatable(L, LCMS_SEND_PLAN_MT);
  p->c = c;
  if (cms_rand_hex32(&c->rand, p->rid))
    return lcms_push_local_error(L, "no random bytes for a RequestId", NULL);
  lua_createtable(L, SUV_N, 0);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, SUV_CLIENT);
  lua_pushlstring(L, c->form.data ? c->form.data : "", c->form.len);
  lua_rawseti(L, -2, SUV_BODY);
  lua_pushvalue(L, 3);
  lua_rawseti(L, -2, SUV_MSGIDS);
  lua_pushvalue(L, lua_upvalueindex(1)); /* the client's list of field names */
  lua_rawseti(L, -2, SUV_KEYS);
  lua_pushvalue(L, 2); /* the params, for a resend after a 431 */
  lua_rawseti(L, -2, SUV_PARAMS);
  lua_setuservalue(L, -2);
  return 1;
}

void lcms_open_send_plan(lua_State *L) {
  static const luaL_Reg methods[] = {{"next", sp_next}, {"done", sp_done}, {NULL, NULL}};
  lcms_open_class(L, LCMS_SEND_PLAN_MT, methods, sp_tostring, "a send plan");
}
