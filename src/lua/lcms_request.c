/* lcms_request.c -- what every path that sends (send, prepare, send_all,
 * fanout, plan) shares: the signature, the header list of an attempt, the
 * transfer's error values, the one failover rule and how an attempt's end is
 * classified for the scheduler. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "lcms.h"
#include "lcms_answer.h"

int lcms_sign(lcms_client *c, lcms_sig *s) {
  if (cms_rand_hex32(&c->rand, s->nonce)) return -1;
  cms_buf_itoa((long long)time(NULL), s->curtime);
  return cms_checksum(&c->sha1, c->secret, c->secret_len, s->nonce, s->curtime, s->checksum);
}

/* overwrites the value after "Name: " in a header line of the same length */
static int refill(struct curl_slist *node, size_t name_len, const char *value) {
  size_t n = strlen(value);
  if (!node || strlen(node->data) != name_len + n) return -1;
  memcpy(node->data + name_len, value, n);
  return 0;
}

/* The headers of one attempt: AppKey, a fresh Nonce, CurTime and CheckSum, the
 * call's RequestId, the Content-Type, no Expect.  The list is built once and
 * its values overwritten in place afterwards (they keep their lengths), so an
 * attempt allocates nothing; it is rebuilt when a length changes. */
int lcms_build_headers(lcms_client *c, struct curl_slist **list, const char *rid) {
  char line[512];
  struct curl_slist *h = NULL, *t;
  const char *fixed[] = {"Content-Type: " CMS_CONTENT_TYPE, "Expect:", NULL};
  int i;
  lcms_sig sg, *s = &sg;
  if (lcms_sign(c, s)) return -1;
  if (*list) {
    struct curl_slist *n = (*list)->next; /* Nonce, CurTime, CheckSum, RequestId */
    if (!refill(n, 7, s->nonce) && !refill(n->next, 9, s->curtime) &&
        !refill(n->next->next, 10, s->checksum) && !refill(n->next->next->next, 11, rid))
      return 0;
    curl_slist_free_all(*list);
    *list = NULL;
  }
#define ADD(str) do { t = curl_slist_append(h, str); if (!t) goto oom; h = t; } while (0)
  snprintf(line, sizeof line, "AppKey: %s", c->appkey);
  ADD(line);
  snprintf(line, sizeof line, "Nonce: %s", s->nonce);
  ADD(line);
  snprintf(line, sizeof line, "CurTime: %s", s->curtime);
  ADD(line);
  snprintf(line, sizeof line, "CheckSum: %s", s->checksum);
  ADD(line);
  snprintf(line, sizeof line, "RequestId: %s", rid);
  ADD(line);
  for (i = 0; fixed[i]; i++) ADD(fixed[i]);
#undef ADD
  *list = h;
  return 0;
oom:
  curl_slist_free_all(h);
  return -1;
}

void lcms_push_keys(lua_State *L) {
  static const char *const names[LCMS_K_COUNT] = {
    [LCMS_K_ID] = "id", [LCMS_K_METHOD] = "method", [LCMS_K_URL] = "url",
    [LCMS_K_HEADERS] = "headers", [LCMS_K_BODY] = "body", [LCMS_K_TIMEOUT] = "timeout",
    [LCMS_K_MSGIDS] = "msgIds", [LCMS_K_REQUEST_ID] = "request_id", [LCMS_K_APPKEY] = "AppKey",
    [LCMS_K_NONCE] = "Nonce", [LCMS_K_CURTIME] = "CurTime", [LCMS_K_CHECKSUM] = "CheckSum",
    [LCMS_K_CONTENT_TYPE] = "Content-Type", [LCMS_K_REQUESTID] = "RequestId",
    [LCMS_K_USER_AGENT] = "User-Agent", [LCMS_K_POST] = "POST",
    [LCMS_K_CT_VALUE] = CMS_CONTENT_TYPE, [LCMS_K_UA_VALUE] = "commsease-lua/" LCMS_VERSION,
  };
  int k;
  lua_createtable(L, LCMS_K_COUNT - 1, 0);
  for (k = 1; k < LCMS_K_COUNT; k++) {
    lua_pushstring(L, names[k]);
    lua_rawseti(L, -2, k);
  }
}

void lcms_set(lua_State *L, int keys, int t, lcms_key k) {
  lua_rawgeti(L, keys, k);
  lua_insert(L, -2);
  lua_rawset(L, t);
}

/* t[name of k] = the string s */
static void set_str(lua_State *L, int keys, int t, lcms_key k, const char *s, size_t n) {
  lua_rawgeti(L, keys, k);
  lua_pushlstring(L, s, n);
  lua_rawset(L, t);
}

/* t[name of k] = the interned string v */
static void set_key(lua_State *L, int keys, int t, lcms_key k, lcms_key v) {
  lua_rawgeti(L, keys, k);
  lua_rawgeti(L, keys, v);
  lua_rawset(L, t);
}

/* the headers table of a signed request */
static void push_headers(lua_State *L, int keys, const lcms_client *c, const lcms_sig *s,
                         const char *rid) {
  int t;
  lua_createtable(L, 0, 7);
  t = lua_gettop(L);
  set_str(L, keys, t, LCMS_K_APPKEY, c->appkey, strlen(c->appkey));
  set_str(L, keys, t, LCMS_K_NONCE, s->nonce, CMS_NONCE_LEN);
  set_str(L, keys, t, LCMS_K_CURTIME, s->curtime, strlen(s->curtime));
  set_str(L, keys, t, LCMS_K_CHECKSUM, s->checksum, 40);
  set_key(L, keys, t, LCMS_K_CONTENT_TYPE, LCMS_K_CT_VALUE);
  set_str(L, keys, t, LCMS_K_REQUESTID, rid, strlen(rid));
  set_key(L, keys, t, LCMS_K_USER_AGENT, LCMS_K_UA_VALUE);
}

int lcms_push_request(lua_State *L, int keys, const lcms_client *c, int ep, const lcms_sig *s,
                      const char *rid, const char *body, size_t len, int more) {
  int t;
  lua_createtable(L, 0, 4 + more);
  t = lua_gettop(L);
  set_key(L, keys, t, LCMS_K_METHOD, LCMS_K_POST);
  set_str(L, keys, t, LCMS_K_URL, c->urls[ep], strlen(c->urls[ep]));
  push_headers(L, keys, c, s, rid);
  lcms_set(L, keys, t, LCMS_K_HEADERS);
  set_str(L, keys, t, LCMS_K_BODY, body ? body : "", len);
  return t;
}

int lcms_push_transfer_error(lua_State *L, cms_http_outcome out, const cms_http_xfer *x,
                             const char *rid, const char *endpoint) {
  if (out == CMS_HTTP_TOO_BIG) {
    /* sent, and what became of it unknown: retryable, as every response error */
    return lcms_response_error(L, "the answer is over 1 MiB; cut off", rid, endpoint);
  } else {
    lcms_errinfo ei = {"transport", (long long)x->rc, cms_http_describe(x), NULL,
                       out != CMS_HTTP_LOCAL, out == CMS_HTTP_AMBIGUOUS, rid, endpoint};
    return lcms_push_error(L, &ei);
  }
}

int lcms_push_local_error(lua_State *L, const char *msg, const char *rid) {
  lcms_errinfo ei = {"transport", 0, msg, NULL, 0, 0, rid, NULL};
  return lcms_push_error(L, &ei);
}

int lcms_failover(cms_http_outcome out, long status) {
  return out == CMS_HTTP_CONNECT || (out == CMS_HTTP_OK && status == 502);
}

cms_sched_outcome lcms_classify(lua_State *L, int nret, cms_http_outcome out, long status,
                                long long api_code) {
  int retryable;
  if (nret == 1) return CMS_SCHED_FINAL;
  if (lcms_failover(out, status)) return out == CMS_HTTP_CONNECT ? CMS_SCHED_CONNECT
                                                                 : CMS_SCHED_GATEWAY;
  if (api_code == 416) return CMS_SCHED_RATE;
  if (api_code == 431) return CMS_SCHED_REPEATED;
  lua_getfield(L, -1, "retryable");
  retryable = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return retryable ? CMS_SCHED_AMBIGUOUS : CMS_SCHED_FINAL;
}

int lcms_push_answer(lua_State *L, cms_http_outcome out, const cms_http_xfer *x, int msgids,
                     const char *rid, const char *endpoint, long long *api_code) {
  *api_code = 0;
  if (out != CMS_HTTP_OK) return lcms_push_transfer_error(L, out, x, rid, endpoint);
  return lcms_parse_answer(L, x->status, x->answer.data ? x->answer.data : "", x->answer.len,
                           msgids, rid, endpoint, api_code);
}

unsigned long lcms_rand_below(void *client, unsigned long below) {
  return cms_rand_below(&((lcms_client *)client)->rand, below);
}

int lcms_encode(lua_State *L, int params, cms_buf *form, cms_verr *e) {
  if (lcms_encode_params(L, params, form, e) == 0) return 0;
  if (form && form->oom) {
    /* a memory error raises, as Lua's own do; it is not bad data */
    lua_pushliteral(L, "not enough memory");
    lua_error(L);
  }
  return -1;
}

/* ---- an attempt's outcome handed back by a Lua driver (plan:done, send_plan:done) ---- */

static void raw_field(lua_State *L, int t, const char *k) {
  lua_pushstring(L, k);
  lua_rawget(L, t);
}

/* misuse of a driver's done; the caller may run under lua_pcall, so it names itself */
static int bad_arg(lua_State *L, int arg, const char *fname, const char *what) {
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, fname, what);
}

void lcms_outcome_check(lua_State *L, int idx, int argn, const char *fname, lcms_outcome *o) {
  int top = lua_gettop(L);
  memset(o, 0, sizeof *o);
  if (lua_isnil(L, idx)) {
    if (lua_type(L, idx + 1) != LUA_TTABLE)
      bad_arg(L, argn + 1, fname,
              "a transport failure { sent = true|false, message = \"...\" } expected");
    raw_field(L, idx + 1, "sent");
    if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
      bad_arg(L, argn + 1, fname, "sent must be a boolean (true when unknown)");
    o->sent = lua_isnil(L, -1) || lua_toboolean(L, -1); /* unknown counts as sent */
    raw_field(L, idx + 1, "message");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
      bad_arg(L, argn + 1, fname, "message must be a string");
    raw_field(L, idx + 1, "code");
    if (!lua_isnil(L, -1) && (!lua_isinteger(L, -1) || lua_tointeger(L, -1) <= 0))
      bad_arg(L, argn + 1, fname, "code must be a positive integer (libcurl's numbering)");
    o->tcode = lua_isnil(L, -1) ? 0 : (long long)lua_tointeger(L, -1);
    lua_settop(L, top);
    o->out = o->sent ? CMS_HTTP_AMBIGUOUS : CMS_HTTP_CONNECT;
    /* all the stats read of a transfer: its status, and rc for the kind timeout */
    if (o->tcode == CURLE_OPERATION_TIMEDOUT) o->x.rc = CURLE_OPERATION_TIMEDOUT;
  } else {
    lua_Integer st;
    size_t len;
    if (!lua_isinteger(L, idx)) bad_arg(L, argn, fname, "an HTTP status (an integer) or nil expected");
    st = lua_tointeger(L, idx);
    if (st < 100 || st > 999) bad_arg(L, argn, fname, "an HTTP status from 100 to 999 expected");
    if (lua_type(L, idx + 1) != LUA_TSTRING)
      bad_arg(L, argn + 1, fname, "the answer body (a string) expected");
    lua_tolstring(L, idx + 1, &len);
    o->status = o->x.status = (long)st;
    /* counted as send counts an answer over the cap: too_big, no status */
    o->out = len > CMS_MAX_ANSWER ? CMS_HTTP_TOO_BIG : CMS_HTTP_OK;
  }
}

int lcms_outcome_push(lua_State *L, int idx, const lcms_outcome *o, int msgids, int outcomes,
                      const char *rid, const char *ep, long long *code) {
  int nret;
  *code = 0;
  if (o->out == CMS_HTTP_TOO_BIG) return lcms_push_transfer_error(L, o->out, &o->x, rid, ep);
  if (o->out != CMS_HTTP_OK) {
    const char *msg;
    raw_field(L, idx + 1, "message");
    msg = lua_tostring(L, -1);
    {
      lcms_errinfo ei = {"transport", o->tcode, msg && *msg ? msg : "transport failure", NULL, 1,
                         o->sent, rid, ep};
      nret = lcms_push_error(L, &ei);
    }
    lua_remove(L, -1 - nret); /* the message: the error stays */
    return nret;
  } else {
    size_t len;
    const char *body = lua_tolstring(L, idx + 1, &len);
    if (outcomes && o->status == 200) /* no records built */
      return lcms_answer_read(L, body, len, msgids, rid, ep, code, LCMS_ANSWER_OUTCOMES);
    return lcms_parse_answer(L, o->status, body, len, msgids, rid, ep, code);
  }
}
