/* lcms_plan.c -- plan = client:plan(params [, opts]): the fan-out engine for
 * any event loop, with no I/O of its own.
 *
 *   job, wait = plan:next()   a job to send now, { id, method, url, headers,
 *                             body, timeout }, signed at that moment; or nil,
 *                             seconds to wait; or nil, nil when every call is
 *                             settled
 *   plan:done(id, status, body)             an HTTP answer
 *   plan:done(id, nil, { sent =, message = }) a transport failure
 *   report = plan:report()    fanout's report, once every call is settled
 *
 * The scheduler (src/core/cms_sched.c) decides; lcms_run.c encodes the calls
 * and keeps the results, exactly as for fanout, so a plan driven by any loop
 * resends, fails over, paces and reports as fanout does.  What the jobs report
 * through plan:done is counted in client:stats() (and shown to on_attempt) as
 * send_all's attempts are: a job's time runs from plan:next to plan:done. */
#include <string.h>
#include "lcms.h"
#include "lcms_answer.h"
#include "lcms_wire.h"

#define LCMS_PLAN_MT "commsease.plan"

/* the plan's Lua values, in its user value table */
enum { UV_CLIENT = 1, UV_LIST, UV_RESULTS, UV_IDS, UV_PERR, UV_PROGRESS, UV_BODIES, UV_PCALLS,
       UV_META, UV_JOBS, UV_TIMES, UV_KEYS, UV_BLOCK, UV_N = UV_BLOCK };

typedef struct lcms_plan_ud {
  lcms_run r;
  lua_Integer last_id;  /* job ids follow a random base: base + 1, base + 2, ... */
  int busy;             /* inside next/done (on_progress may not call back) */
  double *t_job;        /* 1..n: when the call's job in flight was handed out (lcms_clock_s) */
  int pcalls, meta, jobs, uv; /* stack indexes while worked on */
} lcms_plan_ud;

/* pushes the user value's entries; sets the run's stack indexes */
static lcms_plan_ud *load(lua_State *L, int check_client) {
  lcms_plan_ud *p = luaL_checkudata(L, 1, LCMS_PLAN_MT);
  int uv, k;
  luaL_checkstack(L, UV_N + 24, "commsease: no room on the Lua stack for a plan");
  lua_getuservalue(L, 1);
  uv = lua_gettop(L);
  for (k = 1; k <= UV_N; k++) lua_rawgeti(L, uv, k);
  p->uv = uv;
  p->r.L = L;
  p->r.list = uv + UV_LIST;
  p->r.results = uv + UV_RESULTS;
  p->r.ids = uv + UV_IDS;
  p->r.perr = uv + UV_PERR;
  p->r.progress = lua_isnil(L, uv + UV_PROGRESS) ? 0 : uv + UV_PROGRESS;
  p->r.bodies = uv + UV_BODIES;
  p->pcalls = uv + UV_PCALLS;
  p->meta = uv + UV_META;
  p->jobs = uv + UV_JOBS;
  if (check_client && !p->r.c->easy) luaL_error(L, "commsease: this plan's client is closed");
  return p;
}

/* an error raised by on_progress is kept in the user value */
static void store_perr(lua_State *L, lcms_plan_ud *p) {
  lua_pushvalue(L, p->r.perr);
  lua_rawseti(L, p->uv, UV_PERR);
}

/* the job of call st->call, signed with sg */
static void push_job(lua_State *L, lcms_plan_ud *p, const cms_sched_step *st, const lcms_sig *sg) {
  lcms_client *c = p->r.c;
  int keys = p->uv + UV_KEYS;
  int t = lcms_push_request(L, keys, c, st->endpoint, sg, p->r.rids[st->call], c->form.data,
                            c->form.len, 2);
  lua_pushinteger(L, ++p->last_id);
  lua_pushvalue(L, -1);
  lua_pushinteger(L, st->call);
  lua_rawset(L, p->jobs); /* jobs[id] = call */
  lcms_set(L, keys, t, LCMS_K_ID);
  lua_pushnumber(L, (lua_Number)c->http.timeout_ms / 1000.0);
  lcms_set(L, keys, t, LCMS_K_TIMEOUT);
}

static int next_impl(lua_State *L) {
  lcms_plan_ud *p = load(L, 1);
  lcms_run *r = &p->r;
  long long now = cms_now_ms();
  for (;;) {
    cms_sched_step st;
    cms_sched_next(r->s, now, &st);
    switch (st.what) {
      case CMS_SCHED_START: {
        lcms_sig sg;
        if (lcms_run_encode(r, &st, &r->c->form)) {
          lcms_run_outcome(r, st.call, 2, CMS_SCHED_FINAL, now, NULL);
          continue;
        }
        if (lcms_sign(r->c, &sg)) {
          lcms_push_local_error(L, "could not sign the request (libcrypto failure)",
                                r->rids[st.call]);
          lcms_run_outcome(r, st.call, 2, CMS_SCHED_FINAL, now, NULL);
          continue;
        }
        push_job(L, p, &st, &sg); /* signed now */
        p->t_job[st.call] = lcms_clock_s(); /* (a call has one job out at a time) */
        if (!r->t0[st.call]) r->t0[st.call] = p->t_job[st.call];
        store_perr(L, p);
        lua_pushnil(L);
        return 2;
      }
      case CMS_SCHED_EXPIRE:
        lcms_run_expire(r, &st);
        continue;
      case CMS_SCHED_WAIT:
        store_perr(L, p);
        lua_pushnil(L);
        lua_pushnumber(L, (lua_Number)st.wait_ms / 1000.0);
        return 2;
      case CMS_SCHED_IDLE:
        store_perr(L, p);
        lua_pushnil(L);
        lua_pushnil(L);
        return 2;
    }
  }
}

/* plan:done(id, status, body) | plan:done(id, nil, { sent =, message = }) */
static int done_impl(lua_State *L) {
  lcms_plan_ud *p = load(L, 1);
  lcms_run *r = &p->r;
  lua_Integer id;
  int i, nret, hook, repeats;
  long long code = 0, now = cms_now_ms();
  lcms_outcome o;
  const char *ep;
  /* the arguments are checked before the job is taken (the method runs under
   * lua_pcall, so its errors name it) */
  if (!lua_isinteger(L, 2))
    return luaL_error(L, "bad argument #1 to 'plan:done' (a job id (an integer) expected)");
  id = lua_tointeger(L, 2);
  lcms_outcome_check(L, 3, 2, "plan:done", &o);
  lua_pushinteger(L, id);
  lua_rawget(L, p->jobs);
  if (!lua_isinteger(L, -1))
    return luaL_error(L, "bad argument #1 to 'plan:done' (not a job of this plan, or its outcome "
                      "was handed back already)");
  i = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  lua_pushinteger(L, id);
  lua_pushnil(L);
  lua_rawset(L, p->jobs);
  if (r->s->calls[i].state != CMS_CALL_FLIGHT) { /* settled at the deadline meanwhile */
    store_perr(L, p);
    return 0;
  }
  ep = r->c->endpoints[r->s->calls[i].ep];
  lcms_push_hook(L, p->uv + UV_CLIENT); /* (stays below the outcome's values) */
  hook = lua_isnil(L, -1) ? 0 : lua_gettop(L);
  lua_rawgeti(L, r->ids, i);
  nret = lcms_outcome_push(L, 3, &o, lua_gettop(L), r->outcomes, r->rids[i], ep, &code);
  lua_remove(L, -1 - nret);
  {
    /* counted as send_all counts a finished transfer (lcms_multi.c finish) */
    lcms_attempt a;
    a.path = CMS_API_PATH;
    a.endpoint = ep;
    a.request_id = r->rids[i];
    a.out = o.out;
    a.x = &o.x;
    a.code = code;
    a.seconds = lcms_clock_s() - p->t_job[i];
    a.attempt = r->s->calls[i].attempts + r->s->calls[i].repeats + 1;
    a.resend = r->s->calls[i].resend;
    lcms_note_attempt(L, r->c, hook, &a);
  }
  repeats = r->s->calls[i].repeats;
  /* (an answer over the cap is classified by its status, as before) */
  lcms_run_outcome(r, i, nret,
                   lcms_classify(L, nret, o.out == CMS_HTTP_TOO_BIG ? CMS_HTTP_OK : o.out, o.status,
                                 code), now, NULL);
  if (r->s->calls[i].repeats > repeats) r->c->stats.repeats++; /* a 431 learnt from */
  store_perr(L, p);
  return 0;
}

static int report_impl(lua_State *L) {
  lcms_plan_ud *p = load(L, 0);
  if (p->r.s->done < p->r.s->n)
    return luaL_error(L, "commsease: plan:report() before the plan is finished "
                      "(%d of %d calls settled; plan:next() returns nil, nil at the end)",
                      p->r.s->done, p->r.s->n);
  lcms_push_report(L, p->r.list, p->r.results, p->pcalls, p->meta, p->r.perr);
  return 1;
}

/* next and done run protected, so that `busy` is cleared however they end */
static int guarded(lua_State *L, lua_CFunction f, const char *name) {
  lcms_plan_ud *p = luaL_checkudata(L, 1, LCMS_PLAN_MT);
  int n = lua_gettop(L), rc;
  if (p->busy) return luaL_error(L, "commsease: plan:%s called from on_progress or on_attempt", name);
  lua_pushcfunction(L, f);
  lua_insert(L, 1);
  p->busy = 1;
  rc = lua_pcall(L, n, LUA_MULTRET, 0);
  p->busy = 0;
  if (rc != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

static int plan_next(lua_State *L) { return guarded(L, next_impl, "next"); }
static int plan_done(lua_State *L) {
  lua_settop(L, 4);
  return guarded(L, done_impl, "done");
}
static int plan_report(lua_State *L) {
  lua_settop(L, 1);
  return report_impl(L);
}

static int plan_tostring(lua_State *L) {
  lcms_plan_ud *p = luaL_checkudata(L, 1, LCMS_PLAN_MT);
  lua_pushfstring(L, "commsease.plan (%p): %d of %d calls settled", (void *)p, p->r.s->done,
                  p->r.s->n);
  return 1;
}

/* plan = client:plan(params [, opts])  |  nil, err (invalid params) */
int lcms_plan(lua_State *L) {
  lcms_client *c = lcms_check_client(L);
  lcms_runopts o;
  lcms_plan_ud *p;
  cms_verr e;
  int meta, list, pcalls, uv, n, i;
  luaL_checkstack(L, 40, "commsease: no room on the Lua stack for plan");
  lua_settop(L, 3);
  lcms_read_runopts(L, 3, &o, 1, 3, "client:plan");
  if (lcms_chunk_params(L, 2, &e)) return lcms_push_invalid(L, &e);
  meta = lua_gettop(L);
  list = meta - 1;
  lua_getfield(L, meta, "calls");
  pcalls = lua_gettop(L);
  n = (int)lua_rawlen(L, list);
  p = lua_newuserdata(L, sizeof *p);
  memset(p, 0, sizeof *p);
  luaL_setmetatable(L, LCMS_PLAN_MT);
  lua_createtable(L, UV_N, 0);
  uv = lua_gettop(L);
  lua_pushvalue(L, 1);
  lua_rawseti(L, uv, UV_CLIENT);
  lua_pushvalue(L, list);
  lua_rawseti(L, uv, UV_LIST);
  lua_createtable(L, n, 0);
  lua_rawseti(L, uv, UV_RESULTS);
  lua_createtable(L, n, 0);
  lua_rawseti(L, uv, UV_IDS);
  if (o.progress) {
    lua_pushvalue(L, o.progress);
    lua_rawseti(L, uv, UV_PROGRESS);
  }
  lua_newtable(L);
  lua_rawseti(L, uv, UV_BODIES);
  lua_pushvalue(L, pcalls);
  lua_rawseti(L, uv, UV_PCALLS);
  lua_pushvalue(L, meta);
  lua_rawseti(L, uv, UV_META);
  lua_newtable(L);
  lua_rawseti(L, uv, UV_JOBS);
  p->t_job = lua_newuserdata(L, sizeof(double) * ((size_t)n + 1));
  memset(p->t_job, 0, sizeof(double) * ((size_t)n + 1));
  lua_rawseti(L, uv, UV_TIMES);
  lua_pushvalue(L, lua_upvalueindex(1)); /* the client's list of field names */
  lua_rawseti(L, uv, UV_KEYS);
  p->r.L = L;
  p->r.c = c;
  /* a random base (a multiple of 2^20 below 2^50, exact on every Lua), so that
   * a job id of another plan is refused as "not a job of this plan" instead of
   * taken for this plan's job of the same number */
  p->last_id = (lua_Integer)cms_rand_below(&c->rand, 1UL << 30) << 20;
  p->r.fanout = 1;
  p->r.outcomes = o.outcomes;
  o.sched.n_endpoints = c->n_endpoints;
  o.sched.attempt_ms = c->http.timeout_ms;
  if (o.deadline_s > 0) o.sched.deadline_ms = cms_now_ms() + (long long)(o.deadline_s * 1000);
  if (o.sched.concurrency > n && n > 0) o.sched.concurrency = n;
  lcms_run_alloc(L, &p->r, n, &o.sched);
  lua_rawseti(L, uv, UV_BLOCK);
  for (i = 1; i <= n; i++) {
    int g;
    lua_rawgeti(L, pcalls, i);
    lua_getfield(L, -1, "group");
    g = (int)lua_tointeger(L, -1);
    lua_rawgeti(L, list, i);
    lua_getfield(L, -1, "msgList");
    cms_sched_group(p->r.s, i, g, (int)lua_rawlen(L, -1));
    lua_pop(L, 4);
  }
  lua_setuservalue(L, uv - 1);
  return 1;
}

void lcms_open_plan(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"next", plan_next}, {"done", plan_done}, {"report", plan_report}, {NULL, NULL}};
  luaL_newmetatable(L, LCMS_PLAN_MT);
  lua_pushcfunction(L, plan_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "commsease: a plan's metatable is private");
  lua_setfield(L, -2, "__metatable");
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
