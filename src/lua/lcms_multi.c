/* lcms_multi.c -- many calls at once over libcurl's multi interface:
 * client:send_all(list, opts) and client:fanout(params, opts).
 *
 * One loop serves both.  It never has more than `concurrency` requests in
 * flight, takes a token from the client's pacing before every attempt, waits
 * out a 416 penalty and sends the affected calls again, fails over on connect
 * errors and HTTP 502.  In fan-out mode it also resends ambiguous failures
 * (with resendFlag = 1 on every message of the call), spaces the calls that
 * carry further messages to the same recipients, and honours a deadline.
 * Lua callbacks (on_progress) run from this loop under lua_pcall, never from
 * inside a libcurl callback. */
#include <stdlib.h>
#include <string.h>
#include "lcms.h"
#include "cms_sign.h"

enum { IT_PENDING, IT_FLIGHT, IT_DONE };
#define MAX_416_WAITS 20   /* without a deadline, 416 resends of one call stop here */
#define LOOKAHEAD 64       /* how far past the first unstarted call pick() looks */

typedef struct item {
  int state, attempts, waits, ep, resend, prev, nmsgs;
  int queued;              /* back in the queue after an attempt */
  int sent;                /* an attempt may have reached the service */
  long long not_before, started_at, last_start;
  char rid[CMS_NONCE_LEN + 1];
} item;

typedef struct run {
  lua_State *L;
  lcms_client *c;
  int list, results, ids, perr, progress, bodies;
  int n, done, inflight, cursor, waiting;
  int concurrency, retries, fanout;
  double receiver_rate;
  long backoff_ms;
  long long deadline_at;
  item *items; /* 1..n, Lua-owned (userdata) */
} run;

void lcms_release_slots(lcms_client *c) {
  int i;
  for (i = 0; i < c->n_slots; i++) {
    lcms_slot *s = &c->slots[i];
    if (c->multi && s->easy) curl_multi_remove_handle(c->multi, s->easy);
    if (s->easy) curl_easy_cleanup(s->easy);
    s->easy = NULL;
    curl_slist_free_all(s->headers);
    s->headers = NULL;
    cms_buf_free(&s->form);
    cms_buf_free(&s->xfer.answer);
    s->item = 0;
  }
  c->n_slots = 0;
  if (c->multi) curl_multi_cleanup(c->multi);
  c->multi = NULL;
}

/* the multi handle and n configured slots; any handle left in the multi by
 * an earlier run that was unwound is taken out */
static int setup_slots(lcms_client *c, int n) {
  int i;
  if (!c->multi && !(c->multi = curl_multi_init())) return -1;
  for (i = 0; i < c->n_slots; i++) {
    curl_multi_remove_handle(c->multi, c->slots[i].easy);
    c->slots[i].item = 0;
  }
  while (c->n_slots < n) {
    lcms_slot *s = &c->slots[c->n_slots];
    memset(s, 0, sizeof *s);
    cms_buf_init(&s->form, 0);
    cms_buf_init(&s->xfer.answer, CMS_MAX_ANSWER);
    if (!(s->easy = curl_easy_init()) || cms_http_configure(s->easy, &c->http) != CURLE_OK) {
      if (s->easy) curl_easy_cleanup(s->easy);
      s->easy = NULL;
      return -1;
    }
    c->n_slots++;
  }
  return 0;
}

static lcms_slot *free_slot(run *r) {
  int i;
  for (i = 0; i < r->concurrency; i++)
    if (!r->c->slots[i].item) return &r->c->slots[i];
  return NULL;
}

/* one call reached its final outcome: res, or nil, err are on the stack top
 * (nret values); results[i] = { res = ... } or { err = ... } */
static void finalize(run *r, int i, int nret) {
  lua_State *L = r->L;
  item *it = &r->items[i];
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
  if (it->queued) {
    it->queued = 0;
    r->waiting--;
  }
  it->state = IT_DONE;
  r->done++;
  if (r->progress && lua_isnil(L, r->perr)) {
    lua_pushvalue(L, r->progress);
    lua_pushinteger(L, r->done);
    lua_pushinteger(L, r->n);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) lua_replace(L, r->perr);
  }
}

static void push_deadline_error(lua_State *L, item *it, const char *endpoint) {
  lcms_errinfo ei = {"transport", 0, "deadline", NULL, 1, it->sent,
                     it->rid[0] ? it->rid : NULL, endpoint};
  lcms_push_error(L, &ei);
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "deadline");
}

/* the call goes back to the queue, to be sent again after delay_ms; a
 * send_all call keeps the body it went with (the same generated msgIds) */
static void requeue(run *r, lcms_slot *s, int i, long long now, long delay_ms) {
  item *it = &r->items[i];
  lua_State *L = r->L;
  if (!r->fanout) {
    lua_rawgeti(L, r->bodies, i);
    if (lua_isnil(L, -1)) {
      lua_pushlstring(L, s->form.data ? s->form.data : "", s->form.len);
      lua_rawseti(L, r->bodies, i);
    }
    lua_pop(L, 1);
  }
  it->state = IT_PENDING;
  it->not_before = now + delay_ms;
  it->queued = 1;
  r->waiting++;
}

static long backoff(run *r, int attempt) {
  long base = r->backoff_ms;
  int k;
  if (base <= 0) return 0;
  for (k = 1; k < attempt && base < 2000; k++) base *= 2;
  if (base > 2000) base = 2000;
  /* half the delay, plus up to the other half at random */
  return base / 2 + (long)cms_rand_below(&r->c->rand, (unsigned long)(base / 2 + 1));
}

/* marks every message of call i as a resend */
static void mark_resend(run *r, int i) {
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

static void start(run *r, int i, lcms_slot *s, long long now) {
  lua_State *L = r->L;
  lcms_client *c = r->c;
  item *it = &r->items[i];
  cms_verr e;
  int top = lua_gettop(L);
  CURLcode rc;
  if (it->queued) {
    it->queued = 0;
    r->waiting--;
  }
  if (!it->started_at) it->started_at = now;
  it->last_start = now;
  while (r->cursor <= r->n && r->items[r->cursor].started_at) r->cursor++;
  /* a send_all call sent again goes with the body of its first attempt (the
   * same generated msgIds); a fan-out call is encoded again, marked as a resend */
  lua_rawgeti(L, r->bodies, i);
  if (!r->fanout && lua_type(L, -1) == LUA_TSTRING) {
    size_t len;
    const char *body = lua_tolstring(L, -1, &len);
    cms_buf_reset(&s->form);
    if (cms_buf_add(&s->form, body, len)) {
      lcms_errinfo ei = {"transport", 0, "out of memory", NULL, 0, 0, it->rid, NULL};
      lua_settop(L, top);
      finalize(r, i, lcms_push_error(L, &ei));
      return;
    }
    lua_settop(L, top);
  } else {
    lua_settop(L, top);
    if (r->fanout && it->resend) mark_resend(r, i);
    lua_rawgeti(L, r->list, i);
    if (lcms_encode_params(L, top + 1, &s->form, &e)) {
      lua_settop(L, top);
      finalize(r, i, lcms_push_invalid(L, &e));
      return;
    }
    lua_rawseti(L, r->ids, i);
    lua_settop(L, top);
  }
  if ((!it->rid[0] && cms_rand_hex32(&c->rand, it->rid)) || lcms_build_headers(c, &s->headers, it->rid) ||
      (rc = cms_http_prepare(s->easy, &s->xfer, c->urls[it->ep], s->headers, s->form.data,
                             s->form.len)) != CURLE_OK ||
      curl_multi_add_handle(c->multi, s->easy) != CURLM_OK) {
    lcms_errinfo ei = {"transport", 0, "could not start the transfer (out of memory?)", NULL, 0,
                       0, it->rid, c->endpoints[it->ep]};
    finalize(r, i, lcms_push_error(L, &ei));
    return;
  }
  s->item = i;
  it->state = IT_FLIGHT;
  r->inflight++;
}

/* a finished transfer: final outcome, or back to the queue */
static void done(run *r, lcms_slot *s, CURLcode rc, long long now) {
  lua_State *L = r->L;
  lcms_client *c = r->c;
  int i = s->item, nret, top = lua_gettop(L);
  item *it = &r->items[i];
  cms_http_outcome out = cms_http_finish(s->easy, &s->xfer, rc);
  long long code = 0;
  const char *ep = c->endpoints[it->ep];
  curl_multi_remove_handle(c->multi, s->easy);
  s->item = 0;
  r->inflight--;
  if (out != CMS_HTTP_CONNECT) it->sent = 1;
  /* never reached the service, or a gateway said 502: the next endpoint */
  if ((out == CMS_HTTP_CONNECT || (out == CMS_HTTP_OK && s->xfer.status == 502)) &&
      it->attempts < r->retries) {
    it->attempts++;
    it->ep = (it->ep + 1) % c->n_endpoints;
    if (r->fanout) it->resend = 1;
    requeue(r, s, i, now, c->n_endpoints > 1 && out == CMS_HTTP_CONNECT ? 0 : backoff(r, it->attempts));
    return;
  }
  if (out == CMS_HTTP_OK) {
    lua_rawgeti(L, r->ids, i);
    nret = lcms_parse_answer(L, s->xfer.status, s->xfer.answer.data ? s->xfer.answer.data : "",
                             s->xfer.answer.len, top + 1, it->rid, ep, &code);
    lua_remove(L, top + 1);
    if (code == 416) {
      cms_pace_penalty(&c->pace, now);
      it->waits++;
      if (r->deadline_at || it->waits <= MAX_416_WAITS) {
        lua_settop(L, top);
        requeue(r, s, i, now, 0);
        return;
      }
    }
  } else {
    nret = lcms_push_transfer_error(L, out, &s->xfer, it->rid, ep);
  }
  /* an ambiguous failure in a fan-out: send again, marked as a resend */
  if (r->fanout && nret == 2 && it->attempts < r->retries) {
    int again;
    lua_getfield(L, -1, "retryable");
    again = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (again) {
      lua_settop(L, top);
      it->attempts++;
      it->resend = 1;
      requeue(r, s, i, now, backoff(r, it->attempts));
      return;
    }
  }
  finalize(r, i, nret);
}

/* the next call that may start now, or 0 (then *wait says how long).  A call
 * back in the queue may go once its backoff is over; a call not started yet
 * once the previous call to its recipients (fan-out) is done and that call's
 * messages are spaced out at per_receiver_rate, counted from its last attempt */
static int pick(run *r, long long now, long *wait) {
  int j, end = r->cursor + LOOKAHEAD < r->n ? r->cursor + LOOKAHEAD : r->n;
  for (j = r->waiting > 0 ? 1 : r->cursor; j <= end; j++) {
    item *it = &r->items[j];
    long long t = it->not_before;
    if (it->state != IT_PENDING || (!it->queued && it->started_at)) continue;
    if (!it->queued && it->prev && r->receiver_rate > 0) {
      item *p = &r->items[it->prev];
      long long pt;
      if (p->state != IT_DONE) continue;
      pt = p->last_start + (long long)(p->nmsgs * 1000.0 / r->receiver_rate);
      if (pt > t) t = pt;
    }
    if (t <= now) return j;
    if (t - now < *wait) *wait = (long)(t - now);
  }
  return 0;
}

static void abort_all(run *r) {
  int i;
  lua_State *L = r->L;
  for (i = 0; i < r->concurrency; i++) {
    lcms_slot *s = &r->c->slots[i];
    if (s->item) {
      curl_multi_remove_handle(r->c->multi, s->easy);
      r->inflight--;
      r->items[s->item].sent = 1; /* it may have gone out */
      r->items[s->item].state = IT_PENDING;
      s->item = 0;
    }
  }
  for (i = 1; i <= r->n; i++) {
    item *it = &r->items[i];
    if (it->state == IT_DONE) continue;
    push_deadline_error(L, it, r->c->endpoints[it->ep]); /* nil, err */
    it->state = IT_PENDING;
    finalize(r, i, 2);
  }
}

static void loop(run *r) {
  lcms_client *c = r->c;
  while (r->done < r->n) {
    long long now = cms_now_ms();
    long wait = 50;
    int running = 0, left = 0, finished = 0;
    CURLMsg *m;
    if (r->deadline_at && now >= r->deadline_at) {
      abort_all(r);
      break;
    }
    while (r->inflight < r->concurrency) {
      int i = pick(r, now, &wait);
      long w;
      if (!i) break;
      if ((w = cms_pace_take(&c->pace, now)) > 0) {
        if (w < wait) wait = w;
        break;
      }
      start(r, i, free_slot(r), now);
    }
    if (r->done >= r->n) break;
    curl_multi_perform(c->multi, &running);
    while ((m = curl_multi_info_read(c->multi, &left))) {
      int k;
      if (m->msg != CURLMSG_DONE) continue;
      for (k = 0; k < r->concurrency; k++)
        if (c->slots[k].easy == m->easy_handle && c->slots[k].item) {
          CURLcode rc = m->data.result;
          done(r, &c->slots[k], rc, cms_now_ms());
          finished++;
          break;
        }
    }
    if (r->done >= r->n) break;
    if (finished) continue; /* slots are free: start the next calls before waiting */
    if (r->deadline_at) {
      long long left_ms = r->deadline_at - cms_now_ms();
      if (left_ms < wait) wait = left_ms < 0 ? 0 : (long)left_ms;
    }
    if (wait < 1) wait = 1;
    if (wait > 1000) wait = 1000;
    curl_multi_poll(c->multi, NULL, 0, (int)wait, NULL);
  }
}

/* The loop runs under lua_pcall so that the client's `running` mark is
 * cleared however it ends (a memory error while building results would
 * otherwise leave it set).  The callee sees the tables as its own arguments. */
static int loop_protected(lua_State *L) {
  run *r = lua_touserdata(L, 1);
  luaL_checkstack(L, 40, "commsease: no room on the Lua stack for send_all");
  r->list = 2;
  r->results = 3;
  r->ids = 4;
  r->perr = 5;
  r->progress = lua_isnil(L, 6) ? 0 : 6;
  r->bodies = 7;
  loop(r);
  lua_pushvalue(L, 5);
  return 1;
}

static void run_loop(lua_State *L, run *r) {
  int list = r->list, results = r->results, ids = r->ids, perr = r->perr,
      progress = r->progress, rc;
  lua_pushcfunction(L, loop_protected);
  lua_pushlightuserdata(L, r);
  lua_pushvalue(L, list);
  lua_pushvalue(L, results);
  lua_pushvalue(L, ids);
  lua_pushvalue(L, perr);
  if (progress) lua_pushvalue(L, progress);
  else lua_pushnil(L);
  lua_newtable(L); /* bodies kept for resends */
  r->c->running = 1;
  rc = lua_pcall(L, 7, 1, 0);
  r->c->running = 0;
  r->list = list, r->results = results, r->ids = ids, r->perr = perr, r->progress = progress;
  if (rc != LUA_OK) lua_error(L);
  lua_replace(L, perr); /* a progress error, or nil */
}

static void check_not_running(lua_State *L, lcms_client *c) {
  if (c->running)
    luaL_error(L, "commsease: this client is already running send_all/fanout "
               "(called from on_progress?); use another client");
}

/* opts common to send_all and fanout; raises on misuse */
static void read_opts(lua_State *L, int opts, run *r, int default_retries) {
  r->concurrency = 8;
  r->retries = default_retries;
  r->receiver_rate = 20;
  r->backoff_ms = 100;
  r->deadline_at = 0;
  r->progress = 0;
  if (lua_isnoneornil(L, opts)) return;
  luaL_checktype(L, opts, LUA_TTABLE);
  lua_getfield(L, opts, "concurrency");
  if (!lua_isnil(L, -1)) {
    int isnum = 0;
    lua_Integer v = lua_tointegerx(L, -1, &isnum);
    if (!isnum || v < 1 || v > LCMS_MAX_CONCURRENCY)
      luaL_error(L, "commsease: opts.concurrency must be an integer from 1 to %d",
                 LCMS_MAX_CONCURRENCY);
    r->concurrency = (int)v;
  }
  lua_pop(L, 1);
  lua_getfield(L, opts, "retries");
  if (!lua_isnil(L, -1)) {
    int isnum = 0;
    lua_Integer v = lua_tointegerx(L, -1, &isnum);
    if (!isnum || v < 0 || v > 20) luaL_error(L, "commsease: opts.retries must be from 0 to 20");
    r->retries = (int)v;
  }
  lua_pop(L, 1);
  lua_getfield(L, opts, "deadline");
  if (!lua_isnil(L, -1)) {
    double d = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || !(d > 0 && d <= 604800))
      luaL_error(L, "commsease: opts.deadline must be a number of seconds in (0, 604800]");
    r->deadline_at = cms_now_ms() + (long long)(d * 1000);
  }
  lua_pop(L, 1);
  lua_getfield(L, opts, "per_receiver_rate");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER ||
        !(lua_tonumber(L, -1) == 0 || (lua_tonumber(L, -1) >= 0.1 && lua_tonumber(L, -1) <= 1e6)))
      luaL_error(L, "commsease: opts.per_receiver_rate must be 0 (off) or from 0.1 to 1e6");
    r->receiver_rate = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  lua_getfield(L, opts, "backoff");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0 && lua_tonumber(L, -1) <= 60))
      luaL_error(L, "commsease: opts.backoff must be a number of seconds from 0 to 60");
    r->backoff_ms = (long)(lua_tonumber(L, -1) * 1000);
  }
  lua_pop(L, 1);
  lua_getfield(L, opts, "on_progress");
  if (!lua_isnil(L, -1)) {
    if (!lua_isfunction(L, -1)) luaL_error(L, "commsease: opts.on_progress must be a function");
    r->progress = lua_gettop(L); /* stays on the stack */
  } else {
    lua_pop(L, 1);
  }
}

/* runs the calls of the list at r->list; leaves results at r->results */
static void run_all(lua_State *L, lcms_client *c, run *r) {
  int i;
  r->L = L;
  r->c = c;
  r->n = (int)lua_rawlen(L, r->list);
  r->done = r->inflight = r->waiting = 0;
  r->cursor = 1;
  lua_pushnil(L);
  r->perr = lua_gettop(L);
  lua_createtable(L, r->n, 0);
  r->results = lua_gettop(L);
  lua_createtable(L, r->n, 0);
  r->ids = lua_gettop(L);
  r->items = lua_newuserdata(L, sizeof(item) * (size_t)(r->n + 1));
  memset(r->items, 0, sizeof(item) * (size_t)(r->n + 1));
  for (i = 1; i <= r->n; i++) r->items[i].state = IT_PENDING;
  if (r->concurrency > r->n && r->n > 0) r->concurrency = r->n;
  if (setup_slots(c, r->concurrency)) luaL_error(L, "commsease: could not set up libcurl's multi interface");
}

/* results = client:send_all(list [, opts]) */
int lcms_send_all(lua_State *L) {
  lcms_client *c = lcms_check_client(L);
  run r;
  luaL_checkstack(L, 40, "commsease: no room on the Lua stack for send_all");
  memset(&r, 0, sizeof r);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 3);
  read_opts(L, 3, &r, c->retries);
  check_not_running(L, c);
  r.list = 2;
  r.fanout = 0;
  r.backoff_ms = 0;
  run_all(L, c, &r);
  run_loop(L, &r);
  lua_pushvalue(L, r.results);
  return 1;
}

/* report = client:fanout(params [, opts])  |  nil, err (invalid params) */
int lcms_fanout(lua_State *L) {
  lcms_client *c = lcms_check_client(L);
  run r;
  luaL_checkstack(L, 40, "commsease: no room on the Lua stack for fanout");
  cms_verr e;
  int plan, pcalls, report, failures, i, nf = 0, ok = 0;
  memset(&r, 0, sizeof r);
  check_not_running(L, c);
  lua_settop(L, 3);
  read_opts(L, 3, &r, 3);
  if (lcms_chunk_params(L, 2, &e)) return lcms_push_invalid(L, &e);
  plan = lua_gettop(L);
  r.list = plan - 1;
  lua_getfield(L, plan, "calls");
  pcalls = lua_gettop(L);
  r.fanout = 1;
  run_all(L, c, &r);
  /* receiver pacing: a call waits for the previous call to its recipients */
  {
    int n = r.n, g;
    int *last = lua_newuserdata(L, ((size_t)n + 1) * sizeof(int)); /* Lua-owned scratch */
    memset(last, 0, ((size_t)n + 1) * sizeof(int));
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, pcalls, i);
      lua_getfield(L, -1, "group");
      g = (int)lua_tointeger(L, -1);
      lua_pop(L, 2);
      if (g >= 1 && g <= n) {
        r.items[i].prev = last[g];
        last[g] = i;
      }
      lua_rawgeti(L, r.list, i);
      lua_getfield(L, -1, "msgList");
      r.items[i].nmsgs = (int)lua_rawlen(L, -1);
      lua_pop(L, 2);
    }
    lua_pop(L, 1); /* last */
  }
  run_loop(L, &r);

  /* the report */
  luaL_checkstack(L, 40, "commsease: no room on the Lua stack for the report");
  lua_createtable(L, 0, 8);
  report = lua_gettop(L);
  lua_newtable(L);
  failures = lua_gettop(L);
  for (i = 1; i <= r.n; i++) {
    int call, res, origin, msgs, k, n_msgs, call_ok = 1;
    lua_rawgeti(L, r.list, i);
    call = lua_gettop(L);
    lua_rawgeti(L, r.results, i);
    res = lua_gettop(L);
    lua_rawgeti(L, pcalls, i);
    lua_getfield(L, -1, "origin");
    origin = lua_gettop(L);
    lua_getfield(L, call, "msgList");
    msgs = lua_gettop(L);
    n_msgs = (int)lua_rawlen(L, msgs);
    lua_getfield(L, res, "res");
    lua_getfield(L, res, "err");
    for (k = 1; k <= n_msgs; k++) {
      int failed = 0;
      lua_rawgeti(L, msgs, k);
      lua_getfield(L, -1, "msgId");      /* derived id */
      if (!lua_isnil(L, msgs + 1)) {       /* a result: look the message up */
        lua_getfield(L, msgs + 1, "success");
        lua_pushvalue(L, -2);
        lua_rawget(L, -2);
        if (lua_isnil(L, -1)) {
          failed = 1;
          lua_getfield(L, msgs + 1, "fail");
          lua_pushvalue(L, -4);
          lua_rawget(L, -2);
          if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushliteral(L, "missing from the answer");
          }
          lua_insert(L, -4);
          lua_pop(L, 3); /* ... id reason */
          lua_pushinteger(L, 200);
        } else {
          lua_pop(L, 2);
        }
      } else {
        failed = 1;
        lua_getfield(L, msgs + 2, "message");
        lua_getfield(L, msgs + 2, "code");
      }
      if (failed) {
        /* stack: msg id reason code */
        call_ok = 0;
        lua_createtable(L, 0, 5);
        lua_insert(L, -3);
        lua_setfield(L, -3, "code");
        lua_setfield(L, -2, "reason");
        lua_pushvalue(L, -2);
        lua_rawget(L, origin);
        lua_setfield(L, -2, "msgId");
        lua_getfield(L, call, "toAccids");
        lua_setfield(L, -2, "accids");
        if (!lua_isnil(L, msgs + 2)) {
          lua_getfield(L, msgs + 2, "kind");
          lua_setfield(L, -2, "kind");
        }
        lua_rawseti(L, failures, ++nf);
      }
      lua_settop(L, msgs + 2);
    }
    ok += call_ok;
    lua_settop(L, failures);
  }
  lua_pushinteger(L, r.n);
  lua_setfield(L, report, "calls");
  lua_pushinteger(L, ok);
  lua_setfield(L, report, "ok");
  lua_pushinteger(L, r.n - ok);
  lua_setfield(L, report, "failed");
  lua_getfield(L, plan, "messages");
  lua_setfield(L, report, "messages");
  lua_getfield(L, plan, "recipients");
  lua_setfield(L, report, "recipients");
  lua_pushvalue(L, failures);
  lua_setfield(L, report, "failures");
  lua_pushvalue(L, r.results);
  lua_setfield(L, report, "results");
  if (!lua_isnil(L, r.perr)) {
    lua_pushvalue(L, r.perr);
    lua_setfield(L, report, "progress_error");
  }
  lua_pushvalue(L, report);
  return 1;
}
