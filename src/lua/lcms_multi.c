/* lcms_multi.c -- client:send_all(list, opts) and client:fanout(params, opts):
 * a libcurl multi driver over the scheduler (src/core/cms_sched.c).
 *
 * The scheduler decides what starts when (pacing, receiver pacing, backoff,
 * resends, failover, the 416 penalty, the deadline); this loop starts the
 * transfers it names on the client's pool (lcms_pool.c), feeds the finished
 * ones back through lcms_run.c, and sleeps in curl_multi_poll for as long as
 * the scheduler says.  Lua callbacks (on_progress) run from this loop under
 * lua_pcall, never from inside a libcurl callback. */
#include <string.h>
#include "lcms.h"
#include "lcms_answer.h"
#include "lcms_wire.h"

typedef struct drv {
  lcms_run r;
  lcms_pool *pool;
  int concurrency;
} drv;

static void start(drv *d, const cms_sched_step *st, long long now) {
  lcms_run *r = &d->r;
  lcms_client *c = r->c;
  lua_State *L = r->L;
  int i = st->call;
  lcms_slot *s = lcms_pool_free_slot(d->pool, d->concurrency);
  if (!s) { /* the scheduler never starts more than the concurrency */
    lcms_push_local_error(L, "no free transfer slot", NULL);
    lcms_run_outcome(r, i, 2, CMS_SCHED_FINAL, now, NULL);
    return;
  }
  if (lcms_run_encode(r, st, &s->form)) {
    lcms_run_outcome(r, i, 2, CMS_SCHED_FINAL, now, NULL);
    return;
  }
  if (lcms_build_headers(c, &s->headers, r->rids[i]) ||
      cms_http_prepare(s->easy, &s->xfer, c->urls[st->endpoint], s->headers, s->form.data,
                       s->form.len) != CURLE_OK ||
      curl_multi_add_handle(d->pool->multi, s->easy) != CURLM_OK) {
    lcms_errinfo ei = {"transport", 0, "could not start the transfer (out of memory?)", NULL, 0,
                       0, r->rids[i], c->endpoints[st->endpoint]};
    lcms_push_error(L, &ei);
    lcms_run_outcome(r, i, 2, CMS_SCHED_FINAL, now, NULL);
    return;
  }
  s->call = i;
  s->t0 = lcms_clock_s();
  if (!r->t0[i]) r->t0[i] = s->t0;
}

/* a finished transfer: the answer (or the transfer's error) goes to the run */
static void finish(drv *d, lcms_slot *s, CURLcode rc) {
  lcms_run *r = &d->r;
  lua_State *L = r->L;
  int i = s->call, top = lua_gettop(L), nret;
  long long code = 0;
  cms_http_outcome out = cms_http_finish(s->easy, &s->xfer, rc);
  const char *ep = r->c->endpoints[r->s->calls[i].ep];
  curl_multi_remove_handle(d->pool->multi, s->easy);
  s->call = 0;
  lcms_attempt a;
  lua_rawgeti(L, r->ids, i);
  if (r->outcomes && out == CMS_HTTP_OK && s->xfer.status == 200) /* no records built */
    nret = lcms_answer_read(L, s->xfer.answer.data ? s->xfer.answer.data : "", s->xfer.answer.len,
                            top + 1, r->rids[i], ep, &code, LCMS_ANSWER_OUTCOMES);
  else
    nret = lcms_push_answer(L, out, &s->xfer, top + 1, r->rids[i], ep, &code);
  lua_remove(L, top + 1);
  a.path = CMS_API_PATH;
  a.endpoint = ep;
  a.request_id = r->rids[i];
  a.out = out;
  a.x = &s->xfer;
  a.code = code;
  a.seconds = lcms_clock_s() - s->t0;
  a.attempt = r->s->calls[i].attempts + r->s->calls[i].repeats + 1;
  a.resend = r->s->calls[i].resend && (r->fanout || r->s->calls[i].repeats > 0);
  lcms_note_attempt(L, r->c, r->hook, &a);
  {
    int repeats = r->s->calls[i].repeats;
    lcms_run_outcome(r, i, nret, lcms_classify(L, nret, out, s->xfer.status, code), cms_now_ms(),
                     &s->form);
    if (r->s->calls[i].repeats > repeats) r->c->stats.repeats++; /* a 431 learnt from */
  }
}

static void abort_call(drv *d, int i) {
  int k;
  for (k = 0; k < d->pool->n; k++) {
    lcms_slot *s = d->pool->slots[k];
    if (s->call == i) {
      curl_multi_remove_handle(d->pool->multi, s->easy);
      s->call = 0;
    }
  }
}

static void loop(drv *d) {
  lcms_run *r = &d->r;
  CURLM *multi = d->pool->multi;
  for (;;) {
    long long now = cms_now_ms();
    long wait;
    int running = 0, left = 0, finished = 0;
    CURLMsg *m;
    cms_sched_step st;
    for (;;) {
      cms_sched_next(r->s, now, &st);
      if (st.what == CMS_SCHED_START) {
        start(d, &st, now);
      } else if (st.what == CMS_SCHED_EXPIRE) {
        if (st.in_flight) abort_call(d, st.call);
        lcms_run_expire(r, &st);
      } else {
        break;
      }
    }
    if (st.what == CMS_SCHED_IDLE) break;
    wait = st.wait_ms;
    curl_multi_perform(multi, &running);
    while ((m = curl_multi_info_read(multi, &left))) {
      lcms_slot *s;
      if (m->msg != CURLMSG_DONE) continue;
      s = lcms_pool_find(d->pool, d->concurrency, m->easy_handle);
      if (s && s->call) {
        finish(d, s, m->data.result);
        finished++;
      }
    }
    if (finished) continue; /* slots are free: start the next calls before waiting */
    if (wait > 1000) wait = 1000;
    curl_multi_poll(multi, NULL, 0, (int)wait, NULL);
  }
}

/* The loop runs under lua_pcall so that the client's `running` mark is
 * cleared however it ends (a memory error while building results would
 * otherwise leave it set).  The callee sees the tables as its own arguments. */
static int loop_protected(lua_State *L) {
  drv *d = lua_touserdata(L, 1);
  luaL_checkstack(L, 40, "commsease: no room on the Lua stack for send_all");
  d->r.list = 2;
  d->r.results = 3;
  d->r.ids = 4;
  d->r.perr = 5;
  d->r.progress = lua_isnil(L, 6) ? 0 : 6;
  d->r.bodies = 7;
  d->r.hook = lua_isnil(L, 8) ? 0 : 8;
  d->r.L = L;
  /* send_all: when tokens cost time (a paced or shared budget), every entry
   * is validated before any is paced, so an invalid entry takes no token.
   * Without pacing a token is free and the entry is validated as it is
   * encoded (validating twice costs about 20 k instructions an entry).  A
   * fan-out's calls come from chunk, valid. */
  if (!d->r.fanout && (d->r.c->rate != &d->r.c->local_rate.base ||
                       d->r.c->local_rate.pace.rate > 0))
    lcms_run_prevalidate(&d->r);
  loop(d);
  lua_pushvalue(L, 5);
  return 1;
}

static void check_not_running(lua_State *L, lcms_client *c) {
  if (c->running)
    luaL_error(L, "commsease: this client is already running send_all/fanout "
               "(called from on_progress?); use another client");
}

/* the run's tables and block for the n calls of the list at `list`; pushes
 * perr (nil), results, ids, bodies and the block */
static void setup(lua_State *L, drv *d, lcms_client *c, int list, lcms_runopts *o, int fanout) {
  int n = (int)lua_rawlen(L, list);
  memset(d, 0, sizeof *d);
  d->r.L = L;
  d->r.c = c;
  d->r.fanout = fanout;
  d->r.outcomes = o->outcomes;
  d->r.list = list;
  d->r.progress = o->progress;
  lua_pushnil(L);
  d->r.perr = lua_gettop(L);
  lua_createtable(L, n, 0);
  d->r.results = lua_gettop(L);
  lua_createtable(L, n, 0);
  d->r.ids = lua_gettop(L);
  lua_newtable(L);
  d->r.bodies = lua_gettop(L);
  o->sched.n_endpoints = c->n_endpoints;
  o->sched.attempt_ms = c->http.timeout_ms;
  if (o->deadline_s > 0) o->sched.deadline_ms = cms_now_ms() + (long long)(o->deadline_s * 1000);
  if (o->sched.concurrency > n && n > 0) o->sched.concurrency = n;
  d->concurrency = o->sched.concurrency;
  lcms_run_alloc(L, &d->r, n, &o->sched);
  if (!(d->pool = lcms_pool_get(c, d->concurrency)))
    luaL_error(L, "commsease: could not set up libcurl's multi interface (out of memory?)");
}

static void run(lua_State *L, drv *d) {
  lcms_run *r = &d->r;
  int list = r->list, results = r->results, ids = r->ids, perr = r->perr,
      progress = r->progress, bodies = r->bodies, rc;
  lua_pushcfunction(L, loop_protected);
  lua_pushlightuserdata(L, d);
  lua_pushvalue(L, list);
  lua_pushvalue(L, results);
  lua_pushvalue(L, ids);
  lua_pushvalue(L, perr);
  if (progress) lua_pushvalue(L, progress);
  else lua_pushnil(L);
  lua_pushvalue(L, bodies);
  lcms_push_hook(L, 1);
  r->c->running = 1;
  rc = lua_pcall(L, 8, 1, 0);
  r->c->running = 0;
  r->L = L;
  r->list = list, r->results = results, r->ids = ids, r->perr = perr, r->progress = progress;
  r->bodies = bodies;
  if (rc != LUA_OK) lua_error(L);
  lua_replace(L, perr); /* a progress error, or nil */
}

/* results = client:send_all(list [, opts]) */
int lcms_send_all(lua_State *L) {
  lcms_client *c = lcms_check_client(L);
  lcms_runopts o;
  drv d;
  luaL_checkstack(L, 40, "commsease: no room on the Lua stack for send_all");
  if (lua_type(L, 2) != LUA_TTABLE)
    return luaL_error(L, "client:send_all: the list (argument #1) must be a table, not a %s",
                      luaL_typename(L, 2));
  lua_settop(L, 3);
  lcms_read_runopts(L, 3, &o, 0, c->retries, "client:send_all");
  check_not_running(L, c);
  lcms_check_list(L, 2, "client:send_all", "list", 1);
  setup(L, &d, c, 2, &o, 0);
  run(L, &d);
  if (!lua_isnil(L, d.r.perr)) { /* on_progress raised: kept, as in fanout's report */
    lua_pushvalue(L, d.r.perr);
    lua_setfield(L, d.r.results, "progress_error");
  }
  lua_pushvalue(L, d.r.results);
  return 1;
}

/* report = client:fanout(params [, opts])  |  nil, err (invalid params) */
int lcms_fanout(lua_State *L) {
  lcms_client *c = lcms_check_client(L);
  lcms_runopts o;
  drv d;
  cms_verr e;
  int plan, pcalls, i;
  luaL_checkstack(L, 40, "commsease: no room on the Lua stack for fanout");
  check_not_running(L, c);
  lua_settop(L, 3);
  lcms_read_runopts(L, 3, &o, 1, 3, "client:fanout");
  if (lcms_chunk_params(L, 2, &e)) return lcms_push_invalid(L, &e);
  plan = lua_gettop(L);
  lua_getfield(L, plan, "calls");
  pcalls = lua_gettop(L);
  setup(L, &d, c, plan - 1, &o, 1);
  /* receiver pacing: a call waits for the previous call to its recipients */
  for (i = 1; i <= d.r.s->n; i++) {
    int g;
    lua_rawgeti(L, pcalls, i);
    lua_getfield(L, -1, "group");
    g = (int)lua_tointeger(L, -1);
    lua_rawgeti(L, d.r.list, i);
    lua_getfield(L, -1, "msgList");
    cms_sched_group(d.r.s, i, g, (int)lua_rawlen(L, -1));
    lua_pop(L, 4);
  }
  run(L, &d);
  lcms_push_report(L, d.r.list, d.r.results, pcalls, plan, d.r.perr);
  return 1;
}
