/* lcms_call.c -- one call over the client's easy handle, for client:send,
 * client:send_one and client:call: pacing, a fresh signature per attempt, the
 * one failover rule, the 431 path, and every attempt counted in the client's
 * stats and shown to opts.on_attempt.  Also what the multi driver and
 * client:send_plan share for the counting (lcms_note_attempt, lcms_note_call,
 * lcms_settle_call).
 *
 * The 431 path: NetEase's SDKs, and this module, keep a call's RequestId
 * across its attempts, and the service answers a RequestId it has already
 * processed with code 431.  So a 431 on a later attempt means an earlier one
 * was processed and its answer lost; the call goes once more with a new
 * RequestId and resendFlag = 1 on every message, and the service, which then
 * de-duplicates by msgId, answers each message's outcome. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lcms.h"
#include "lcms_json.h"
#include "lcms_wire.h"
#include "cms_form.h"

#define SINGLE_PATH "/chatroom/sendMsgToSomeone.action"

double lcms_clock_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static cms_tfail tfail_kind(cms_http_outcome out, const cms_http_xfer *x) {
  switch (out) {
    case CMS_HTTP_CONNECT: return CMS_TF_CONNECT;
    case CMS_HTTP_TOO_BIG: return CMS_TF_TOO_BIG;
    case CMS_HTTP_LOCAL: return CMS_TF_LOCAL;
    default: return x->rc == CURLE_OPERATION_TIMEDOUT ? CMS_TF_TIMEOUT : CMS_TF_LOST;
  }
}

/* ---- the hook and the counting ---- */

void lcms_push_hook(lua_State *L, int self) {
  lcms_client *c = lua_touserdata(L, self);
  if (!c || !c->has_hook) {
    lua_pushnil(L);
    return;
  }
  lua_getuservalue(L, self);
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_getfield(L, -1, "on_attempt");
    lua_remove(L, -2);
  } else {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
}

/* the hook, protected: an error in it is counted and dropped, never unwound
 * through the driver (or libcurl); the client's own calls raise meanwhile */
static void call_hook(lua_State *L, lcms_client *c, int hook, const lcms_attempt *a) {
  int rc;
  luaL_checkstack(L, 6, "commsease: no room on the Lua stack for on_attempt");
  lua_pushvalue(L, hook);
  lua_createtable(L, 0, 9);
  lua_pushstring(L, a->endpoint ? a->endpoint : "");
  lua_setfield(L, -2, "endpoint");
  lua_pushstring(L, a->path[0] == '/' ? a->path + 1 : a->path);
  lua_setfield(L, -2, "path");
  if (a->out == CMS_HTTP_OK) {
    lua_pushinteger(L, (lua_Integer)a->x->status);
    lua_setfield(L, -2, "status");
  } else {
    lua_pushstring(L, cms_tfail_names[tfail_kind(a->out, a->x)]);
    lua_setfield(L, -2, "transport");
  }
  if (a->code) {
    lua_pushinteger(L, (lua_Integer)a->code);
    lua_setfield(L, -2, "code");
  }
  lua_pushnumber(L, (lua_Number)(a->seconds * 1000.0));
  lua_setfield(L, -2, "ms");
  lua_pushinteger(L, a->attempt);
  lua_setfield(L, -2, "attempt");
  if (a->request_id) {
    lua_pushstring(L, a->request_id);
    lua_setfield(L, -2, "request_id");
  }
  lua_pushboolean(L, a->resend);
  lua_setfield(L, -2, "resend");
  c->stats.hook_calls++;
  c->in_hook = 1;
  rc = lua_pcall(L, 1, 0, 0);
  c->in_hook = 0;
  if (rc != LUA_OK) {
    c->stats.hook_errors++;
    lua_pop(L, 1);
  }
}

void lcms_note_attempt(lua_State *L, lcms_client *c, int hook, const lcms_attempt *a) {
  cms_stats *st = &c->stats;
  cms_stats_path_get(st, a->path)->attempts++;
  if (a->out == CMS_HTTP_OK) {
    cms_stats_http(st, a->x->status);
    if (a->code) cms_stats_code(st, a->code);
  } else {
    st->transport[tfail_kind(a->out, a->x)]++;
  }
  if (a->resend) st->resends++;
  if (a->code == 416) st->pauses++;
  if (hook) call_hook(L, c, hook, a);
}

void lcms_note_call(lcms_client *c, const char *path, double seconds) {
  cms_stats_path *p = cms_stats_path_get(&c->stats, path);
  p->calls++;
  cms_hist_add(&p->latency, seconds);
}

void lcms_settle_call(lcms_client *c, const char *path, long long code, double t_call) {
  if (code == 416) c->rate->ops->penalty(c->rate, cms_now_ms());
  lcms_note_call(c, path, lcms_clock_s() - t_call);
}

/* ---- one call over the easy handle ---- */

static const char *url_for(lcms_client *c, int ep, const char *path) {
  if (!path) return c->urls[ep];
  cms_buf_reset(&c->url);
  if (cms_buf_adds(&c->url, c->endpoints[ep]) || cms_buf_adds(&c->url, path)) return NULL;
  return cms_buf_cstr(&c->url);
}

static int push_answer(lua_State *L, const lcms_callspec *k, cms_http_outcome out,
                       const cms_http_xfer *x, const char *rid, const char *ep,
                       long long *code) {
  *code = 0;
  if (k->shape == LCMS_ANSWER_BATCH) return lcms_push_answer(L, out, x, k->msgids, rid, ep, code);
  if (out != CMS_HTTP_OK) return lcms_push_transfer_error(L, out, x, rid, ep);
  return lcms_parse_answer_shape(L, k->shape, x->status, x->answer.data ? x->answer.data : "",
                                 x->answer.len, rid, ep, code);
}

int lcms_easy_call(lua_State *L, lcms_client *c, const lcms_callspec *k) {
  char rid[CMS_NONCE_LEN + 1];
  int attempt = 0, ep = 0, repeats = 0, resend = 0, nret, hook;
  long long code = 0;
  double t_call = 0;
  const char *path = k->path ? k->path : CMS_API_PATH;
  lcms_attempt a;
  luaL_checkstack(L, 8, "commsease: no room on the Lua stack for a call");
  lcms_push_hook(L, 1);
  hook = lua_isnil(L, -1) ? 0 : lua_gettop(L);
  if (cms_rand_hex32(&c->rand, rid))
    return lcms_push_local_error(L, "no random bytes for a RequestId", NULL);
  for (;;) {
    CURLcode rc;
    long wait;
    const char *url;
    double t0;
    while ((wait = c->rate->ops->take(c->rate, cms_now_ms())) > 0) cms_sleep_ms(wait);
    if (lcms_build_headers(c, &c->headers, rid))
      return lcms_push_local_error(L, "could not sign the request (libcrypto or memory failure)",
                                   rid);
    if (!(url = url_for(c, ep, k->path)))
      return lcms_push_local_error(L, "out of memory", rid);
    t0 = lcms_clock_s();
    if (!t_call) t_call = t0;
    rc = cms_http_prepare(c->easy, &c->xfer, url, c->headers, k->body->data, k->body->len);
    if (rc == CURLE_OK) rc = curl_easy_perform(c->easy);
    a.out = cms_http_finish(c->easy, &c->xfer, rc);
    a.seconds = lcms_clock_s() - t0;
    a.path = path;
    a.endpoint = c->endpoints[ep];
    a.request_id = rid;
    a.x = &c->xfer;
    a.attempt = attempt + 1;
    a.resend = resend;
    a.code = 0;
    if (attempt < c->retries && lcms_failover(a.out, c->xfer.status)) {
      lcms_note_attempt(L, c, hook, &a);
      attempt++;
      ep = (ep + 1) % c->n_endpoints;
      continue;
    }
    nret = push_answer(L, k, a.out, &c->xfer, rid, c->endpoints[ep], &code);
    a.code = code;
    lcms_note_attempt(L, c, hook, &a);
    if (code == 431 && attempt > 0 && k->resend && repeats < LCMS_MAX_REPEATS) {
      lua_pop(L, nret);
      if (k->resend(L, c, k->ud)) {
        nret = 2; /* nil, err pushed */
        break;
      }
      repeats++;
      c->stats.repeats++;
      attempt++;
      resend = 1;
      if (cms_rand_hex32(&c->rand, rid))
        return lcms_push_local_error(L, "no random bytes for a RequestId", NULL);
      continue;
    }
    break;
  }
  lcms_settle_call(c, path, code, t_call);
  return nret;
}

/* ---- resends after a 431 ---- */

/* pushes a copy of the params at `params` whose messages are copies marked
 * resendFlag = 1 and carry the msgIds of the first encoding (so generated
 * ones stay the same); the caller's tables are not touched */
void lcms_push_resend_copy(lua_State *L, int params, int msgids) {
  size_t i, n;
  params = lua_absindex(L, params);
  msgids = lua_absindex(L, msgids);
  luaL_checkstack(L, 8, "commsease: no room on the Lua stack for a resend");
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, params)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_pushliteral(L, "msgList");
  lua_rawget(L, params);
  n = lua_type(L, -1) == LUA_TTABLE ? (size_t)lua_rawlen(L, -1) : 0;
  lua_createtable(L, (int)n, 0);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -2, (lua_Integer)i);
    lua_newtable(L);
    if (lua_type(L, -2) == LUA_TTABLE) {
      lua_pushnil(L);
      while (lua_next(L, -3)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
      }
    }
    lua_rawgeti(L, msgids, (lua_Integer)i);
    lua_setfield(L, -2, "msgId");
    lua_pushinteger(L, 1);
    lua_setfield(L, -2, "resendFlag");
    lua_rawseti(L, -3, (lua_Integer)i);
    lua_pop(L, 1);
  }
  lua_remove(L, -2);
  lua_setfield(L, -2, "msgList");
}

typedef struct batch_ud {
  int params, msgids;
} batch_ud;

int lcms_encode_resend(lua_State *L, int params, int msgids, cms_buf *form) {
  cms_verr e;
  int top = lua_gettop(L);
  lcms_push_resend_copy(L, params, msgids);
  if (lcms_encode(L, top + 1, form, &e)) {
    lua_settop(L, top);
    return lcms_push_invalid(L, &e);
  }
  lua_settop(L, top);
  return 0;
}

static int resend_batch(lua_State *L, lcms_client *c, void *ud) {
  batch_ud *b = ud;
  return lcms_encode_resend(L, b->params, b->msgids, &c->form);
}

/* res, err = client:send(params): the batch call */
int lcms_send(lua_State *L) {
  lcms_client *c = lcms_check_client(L);
  cms_verr e;
  batch_ud b = {2, 3};
  lcms_callspec k;
  lua_settop(L, 2);
  if (lcms_encode(L, 2, &c->form, &e)) return lcms_push_invalid(L, &e);
  /* stack: self params msgIds */
  memset(&k, 0, sizeof k);
  k.shape = LCMS_ANSWER_BATCH;
  k.msgids = 3;
  k.body = &c->form;
  k.resend = resend_batch;
  k.ud = &b;
  return lcms_easy_call(L, c, &k);
}

/* ---- client:send_one ---- */

static int is_msg_field(const char *k) {
  const cms_rule *r;
  for (r = cms_msg_rules; r->name; r++)
    if (strcmp(r->name, k) == 0) return 1;
  return 0;
}

/* paths of the batch-shaped check name msgList[1].field: the single send's
 * fields stand at the top level */
static void unprefix(char *s) {
  static const char pre[] = "msgList[1].";
  char *p;
  while ((p = strstr(s, pre))) memmove(p, p + sizeof pre - 1, strlen(p + sizeof pre - 1) + 1);
}

static int hexval(int ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* the batch form of one message in c->form -> the single send's form in
 * c->single: every field as it is, msgList replaced by the message's fields */
static int to_single_form(lua_State *L, lcms_client *c) {
  const char *s = c->form.data ? c->form.data : "";
  size_t n = c->form.len, pos = 0;
  int first = 1;
  cms_buf *out = &c->single;
  cms_buf_reset(out);
  while (pos < n) {
    const char *amp = memchr(s + pos, '&', n - pos);
    size_t end = amp ? (size_t)(amp - s) : n;
    if (end - pos > 8 && memcmp(s + pos, "msgList=", 8) == 0) {
      const cms_rule *r;
      luaL_Buffer b;
      size_t i;
      int top = lua_gettop(L);
      luaL_buffinit(L, &b);
      for (i = pos + 8; i < end; i++) {
        if (s[i] == '%' && i + 2 < end && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
          luaL_addchar(&b, (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2])));
          i += 2;
        } else {
          luaL_addchar(&b, s[i]);
        }
      }
      luaL_pushresult(&b);
      {
        size_t jl;
        const char *json = lua_tolstring(L, -1, &jl);
        if (lcms_json_decode(L, json, jl) || lua_type(L, -1) != LUA_TTABLE) {
          lua_settop(L, top);
          return -1;
        }
      }
      lua_rawgeti(L, -1, 1);
      if (lua_type(L, -1) != LUA_TTABLE) {
        lua_settop(L, top);
        return -1;
      }
      for (r = cms_msg_rules; r->name; r++) {
        lua_getfield(L, -1, r->name);
        if (lua_type(L, -1) == LUA_TSTRING) {
          size_t vl;
          const char *v = lua_tolstring(L, -1, &vl);
          if (!first) cms_buf_add(out, "&", 1);
          cms_form_escape(out, r->name, strlen(r->name));
          cms_buf_add(out, "=", 1);
          cms_form_escape(out, v, vl);
          first = 0;
        } else if (lua_type(L, -1) == LUA_TNUMBER) {
          int isint = 0;
          lua_Integer v = lua_tointegerx(L, -1, &isint);
          if (!isint) {
            lua_settop(L, top);
            return -1;
          }
          if (!first) cms_buf_add(out, "&", 1);
          cms_form_escape(out, r->name, strlen(r->name));
          cms_buf_add(out, "=", 1);
          cms_form_int(out, (long long)v);
          first = 0;
        }
        lua_pop(L, 1);
      }
      lua_settop(L, top);
    } else {
      if (!first) cms_buf_add(out, "&", 1);
      cms_buf_add(out, s + pos, end - pos);
      first = 0;
    }
    pos = end + 1;
  }
  return out->oom ? -1 : 0;
}

/* the params at idx (send_one's, fields at the top) -> the batch shape
 * { ..., msgList = { message } }, pushed */
static int push_batch_shape(lua_State *L, int idx, cms_verr *e) {
  lua_newtable(L);      /* batch */
  lua_newtable(L);      /* message */
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TSTRING && is_msg_field(lua_tostring(L, -2))) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    } else if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "msgList") == 0) {
      lua_pop(L, 4);
      return cms_verr_set(e, "msgList", "send_one takes one message's fields (msgId, msgType, "
                          "attach, ext, subType, resendFlag) at the top level, not a msgList");
    } else {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -5);
    }
  }
  lua_createtable(L, 1, 0);
  lua_insert(L, -2);
  lua_rawseti(L, -2, 1);
  lua_setfield(L, -2, "msgList");
  return 0;
}

typedef struct single_ud {
  int batch, msgids;
} single_ud;

/* encodes the batch-shaped params at `batch` and makes the single form;
 * pushes the msgIds list, or returns -1 with e filled (nothing pushed) */
static int encode_single(lua_State *L, lcms_client *c, int batch, cms_verr *e) {
  if (lcms_encode(L, batch, &c->form, e)) {
    unprefix(e->field);
    unprefix(e->message);
    return -1;
  }
  if (to_single_form(L, c)) {
    /* the batch form was just written by the module itself: only memory can fail here */
    lua_pushliteral(L, "not enough memory");
    lua_error(L);
  }
  return 0;
}

static int resend_single(lua_State *L, lcms_client *c, void *ud) {
  single_ud *u = ud;
  cms_verr e;
  lua_getfield(L, u->batch, "msgList");
  lua_rawgeti(L, -1, 1);
  lua_rawgeti(L, u->msgids, 1);
  lua_setfield(L, -2, "msgId");
  lua_pushinteger(L, 1);
  lua_setfield(L, -2, "resendFlag");
  lua_pop(L, 2);
  if (encode_single(L, c, u->batch, &e)) return lcms_push_invalid(L, &e);
  lua_pop(L, 1);
  return 0;
}

/* res, err = client:send_one(params) */
int lcms_send_one(lua_State *L) {
  lcms_client *c = lcms_check_client(L);
  cms_verr e;
  single_ud u;
  lcms_callspec k;
  lua_settop(L, 2);
  memset(&e, 0, sizeof e);
  if (lua_type(L, 2) != LUA_TTABLE) {
    cms_verr_set(&e, "params", "params must be a table, not a %s", luaL_typename(L, 2));
    return lcms_push_invalid(L, &e);
  }
  if (push_batch_shape(L, 2, &e)) return lcms_push_invalid(L, &e);
  if (encode_single(L, c, 3, &e)) return lcms_push_invalid(L, &e);
  /* stack: self params batch msgIds */
  u.batch = 3;
  u.msgids = 4;
  memset(&k, 0, sizeof k);
  k.path = SINGLE_PATH;
  k.shape = LCMS_ANSWER_SINGLE;
  k.body = &c->single;
  k.resend = resend_single;
  k.ud = &u;
  return lcms_easy_call(L, c, &k);
}

/* ---- client:call ---- */

/* a nimserver path: letters, digits and _ . - / (no "..", no "//"), at most
 * 200 characters, given with or without its leading '/' */
static const char *check_path(lua_State *L, int idx) {
  size_t n, i;
  const char *p;
  luaL_checktype(L, idx, LUA_TSTRING);
  p = lua_tolstring(L, idx, &n);
  if (n && p[0] == '/') p++, n--;
  if (n == 0 || n > 200) luaL_argerror(L, idx, "a path like \"chatroom/sendMsg.action\" expected");
  for (i = 0; i < n; i++) {
    char ch = p[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '_' || ch == '.' || ch == '-' || ch == '/'))
      luaL_argerror(L, idx, "the path may hold letters, digits and _ . - / only");
  }
  if (strstr(p, "..") || strstr(p, "//") || p[n - 1] == '/')
    luaL_argerror(L, idx, "the path may not hold '..' or '//' or end with '/'");
  lua_pushfstring(L, "/%s", p);
  return lua_tostring(L, -1);
}

typedef struct form_key {
  const char *s;
  size_t len;
  int idx; /* in the keys table, which keeps the string alive */
} form_key;

/* byte order (strcmp's for keys without NUL) */
static int form_key_cmp(const void *a, const void *b) {
  const form_key *x = a, *y = b;
  int r = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
  return r ? r : (x->len > y->len) - (x->len < y->len);
}

/* the form: keys in byte order (the same table gives the same body), sorted
 * with qsort so that a form of many fields costs n log n, not n^2 */
static int encode_form(lua_State *L, lcms_client *c, int form, cms_verr *e) {
  int top = lua_gettop(L), keys, n = 0, i;
  cms_buf *b = &c->form;
  form_key *order;
  lua_newtable(L);
  keys = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, form)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      const char *tn = luaL_typename(L, -1);
      lua_settop(L, top);
      return cms_verr_set(e, "form", "form has a %s key; only named fields are allowed", tn);
    }
    lua_pushvalue(L, -1);
    lua_rawseti(L, keys, ++n);
  }
  order = lua_newuserdata(L, sizeof *order * (size_t)(n > 0 ? n : 1)); /* at keys + 1 */
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, keys, i);
    order[i - 1].s = lua_tolstring(L, -1, &order[i - 1].len);
    order[i - 1].idx = i;
    lua_pop(L, 1);
  }
  qsort(order, (size_t)n, sizeof *order, form_key_cmp);
  cms_buf_reset(b);
  for (i = 1; i <= n; i++) {
    size_t kl, vl;
    const char *k, *v;
    long long iv;
    lua_rawgeti(L, keys, order[i - 1].idx);
    k = lua_tolstring(L, -1, &kl);
    lua_pushvalue(L, -1);
    lua_rawget(L, form);
    if (i > 1) cms_buf_add(b, "&", 1);
    cms_form_escape(b, k, kl);
    cms_buf_add(b, "=", 1);
    switch (lua_type(L, -1)) {
      case LUA_TSTRING:
        v = lua_tolstring(L, -1, &vl);
        cms_form_escape(b, v, vl);
        break;
      case LUA_TNUMBER:
        switch (lcms_to_integer(L, -1, &iv)) {
          case LCMS_INT_OK:
            cms_form_int(b, iv);
            break;
          case LCMS_INT_IMPRECISE:
            lua_settop(L, top);
            return cms_verr_set(e, k, "%s is a number a double cannot hold exactly; pass it as a "
                                "string", k);
          default: {
            char num[40];
            snprintf(num, sizeof num, "%.17g", (double)lua_tonumber(L, -1));
            if (strchr(num, 'n') || strchr(num, 'i')) { /* nan, inf */
              lua_settop(L, top);
              return cms_verr_set(e, k, "%s is not a finite number", k);
            }
            cms_form_escape(b, num, strlen(num));
          }
        }
        break;
      case LUA_TBOOLEAN:
        cms_form_lit(b, lua_toboolean(L, -1) ? "true" : "false");
        break;
      case LUA_TTABLE: {
        cms_verr je;
        if (lcms_json_write(L, -1, k, 0, &je)) {
          *e = je;
          lua_settop(L, top);
          return -1;
        }
        v = lua_tolstring(L, -1, &vl);
        cms_form_escape(b, v, vl);
        break;
      }
      default: {
        const char *tn = luaL_typename(L, -1);
        lua_settop(L, top);
        return cms_verr_set(e, k, "%s is a %s; form values are strings, numbers, booleans or "
                            "tables (sent as JSON)", k, tn);
      }
    }
    lua_settop(L, keys + 1);
  }
  lua_settop(L, top);
  if (b->oom) { /* a memory error raises, as Lua's own do */
    lua_pushliteral(L, "not enough memory");
    lua_error(L);
  }
  return 0;
}

/* res, err = client:call(path, form) */
int lcms_call(lua_State *L) {
  lcms_client *c = lcms_check_client(L);
  cms_verr e;
  lcms_callspec k;
  const char *path;
  lua_settop(L, 3);
  path = check_path(L, 2); /* 4 */
  if (lua_isnil(L, 3)) {
    lua_newtable(L);
    lua_replace(L, 3);
  }
  luaL_checktype(L, 3, LUA_TTABLE);
  memset(&e, 0, sizeof e);
  if (encode_form(L, c, 3, &e)) return lcms_push_invalid(L, &e);
  memset(&k, 0, sizeof k);
  k.path = path;
  k.shape = LCMS_ANSWER_ANY;
  k.body = &c->form;
  return lcms_easy_call(L, c, &k);
}
