/* lcms_client.c -- the client userdata: new, send, prepare, close.
 * One libcurl easy handle per client, reused so consecutive sends share one
 * kept-alive connection; per-client configuration only, no C globals. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lcms.h"
#include "lcms_wire.h"
#include "cms_sign.h"
#include "cms_store.h"

#define DEFAULT_ENDPOINT "https://api.netease.im/nimserver"

lcms_client *lcms_check_client(lua_State *L) {
  /* upvalue 2 of every method is the client metatable, compared directly;
   * luaL_checkudata (which looks it up by name) raises the usual error */
  lcms_client *c = lua_touserdata(L, 1);
  if (c && lua_getmetatable(L, 1) && lua_rawequal(L, -1, lua_upvalueindex(2))) lua_pop(L, 1);
  else c = luaL_checkudata(L, 1, LCMS_CLIENT_MT);
  if (!c->easy) luaL_error(L, "commsease: this client is closed");
  if (c->in_hook)
    luaL_error(L, "commsease: a client's own calls cannot be made from its on_attempt hook");
  return c;
}

/* --- options: everything is checked before anything is allocated --- */

/* s without the user:password@ of its authority, for anything shown (error
 * values, messages): at most cap - 1 bytes into buf */
static const char *shown_url(const char *s, size_t n, char *buf, size_t cap) {
  const char *auth = strstr(s, "://"), *end, *at = NULL, *p;
  size_t k = 0;
  if (!auth || (size_t)(auth - s) > n) {
    snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
    return buf;
  }
  auth += 3;
  for (end = auth; end < s + n && *end != '/' && *end != '?' && *end != '#'; end++)
    if (*end == '@') at = end;
  for (p = s; p < s + n && k + 1 < cap; p++) {
    if (at && p == auth) p = at + 1;
    buf[k++] = *p;
  }
  buf[k] = '\0';
  return buf;
}

static void check_endpoint(lua_State *L, const char *s, size_t n) {
  char shown[256];
  if (!((n > 7 && strncmp(s, "http://", 7) == 0) || (n > 8 && strncmp(s, "https://", 8) == 0)))
    luaL_error(L, "commsease.new: endpoint '%s' must be an http:// or https:// URL",
               shown_url(s, n, shown, sizeof shown));
  if (memchr(s, ' ', n) || memchr(s, '\0', n))
    luaL_error(L, "commsease.new: endpoint holds a space or a control character");
  {
    size_t i;
    for (i = 0; i < n; i++)
      if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
        luaL_error(L, "commsease.new: endpoint holds a space or a control character");
  }
}

static char *dup_trimmed(const char *s, size_t n, const char *suffix) {
  size_t k = strlen(suffix);
  char *p;
  while (n > 0 && s[n - 1] == '/') n--;
  p = malloc(n + k + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  memcpy(p + n, suffix, k + 1);
  return p;
}

/* the endpoint as shown in error values: no user:password@ */
static char *dup_shown(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (!p) return NULL;
  shown_url(s, n, p, n + 1);
  n = strlen(p);
  while (n > 0 && p[n - 1] == '/') p[--n] = '\0';
  return p;
}

static void release(lcms_client *c);

/* the URL's form (the option reader refused control characters); whether the
 * store can be used is new's nil, err */
static void check_store(lua_State *L, const char *s, size_t n) {
  if (strlen(s) != n) luaL_error(L, "commsease.new: option 'rate_store' holds a NUL");
  if (strncmp(s, "rediss://", 9) == 0)
    luaL_error(L, "commsease.new: option 'rate_store': rediss:// (Redis over TLS) is not "
               "supported, the libhiredis this module is built with (0.14) has no TLS; use "
               "redis:// on a trusted network or through a TLS tunnel");
  if (strncmp(s, "shm:/", 5) != 0 && strncmp(s, "redis://", 8) != 0)
    luaL_error(L, "commsease.new: option 'rate_store' must be \"shm:/path/file\" or "
               "\"redis://host:port[/db]\"");
}

static const char *opt_str(const lcms_optv *v, int id, size_t *len) {
  *len = v[id].len;
  return v[id].set ? v[id].s : NULL;
}

int lcms_new(lua_State *L) {
  const char *appkey, *secret, *ca, *proxy, *eps[LCMS_MAX_ENDPOINTS], *store;
  size_t appkey_len, secret_len, eps_len[LCMS_MAX_ENDPOINTS], ca_len, proxy_len, store_len;
  int n_eps = 0, i, failed = 0;
  lcms_optv v[LCMS_O__COUNT];
  lcms_client *c;
  if (lua_type(L, 1) != LUA_TTABLE)
    return luaL_error(L, "commsease.new: the options (argument #1) must be a table, not a %s",
                      luaL_typename(L, 1));
  lua_settop(L, 1);
  lcms_opts_read(L, 1, LCMS_FOR_NEW, "commsease.new", 1, v);
  appkey = opt_str(v, LCMS_O_APPKEY, &appkey_len);
  secret = opt_str(v, LCMS_O_SECRET, &secret_len);
  if (!appkey) luaL_error(L, "commsease.new: option 'appkey' is required");
  if (!appkey_len) luaL_error(L, "commsease.new: option 'appkey' is empty");
  if (appkey_len > 256) luaL_error(L, "commsease.new: option 'appkey' is longer than 256 bytes");
  if (!secret) luaL_error(L, "commsease.new: option 'secret' is required");
  if (!secret_len) luaL_error(L, "commsease.new: option 'secret' is empty");
  ca = opt_str(v, LCMS_O_CA_FILE, &ca_len);
  proxy = opt_str(v, LCMS_O_PROXY, &proxy_len);
  store = opt_str(v, LCMS_O_RATE_STORE, &store_len);
  if (store) check_store(L, store, store_len);
  if (v[LCMS_O_ENDPOINTS].set) {
    int n;
    if (v[LCMS_O_ENDPOINT].set)
      luaL_error(L, "commsease.new: give 'endpoint' or 'endpoints', not both");
    lua_pushliteral(L, "endpoints");
    lua_rawget(L, 1);
    n = lcms_check_list(L, -1, "commsease.new", "endpoints", 1);
    if (n < 1 || n > LCMS_MAX_ENDPOINTS)
      luaL_error(L, "commsease.new: option 'endpoints' must hold 1 to %d URLs", LCMS_MAX_ENDPOINTS);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "commsease.new: endpoints[%d] must be a string", i);
      eps[n_eps] = lua_tolstring(L, -1, &eps_len[n_eps]);
      check_endpoint(L, eps[n_eps], eps_len[n_eps]);
      n_eps++;
      lua_pop(L, 1); /* kept alive by the endpoints table */
    }
    lua_pop(L, 1);
  } else {
    eps[0] = opt_str(v, LCMS_O_ENDPOINT, &eps_len[0]);
    if (!eps[0]) {
      eps[0] = DEFAULT_ENDPOINT;
      eps_len[0] = strlen(DEFAULT_ENDPOINT);
    }
    check_endpoint(L, eps[0], eps_len[0]);
    n_eps = 1;
  }

  /* everything is valid.  The metatable is attached at birth (as liolib
   * does), so __gc frees whatever exists if a later step raises */
  c = lua_newuserdata(L, sizeof *c);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, LCMS_CLIENT_MT);
  cms_stats_init(&c->stats);
  cms_buf_init(&c->url, 0);
  cms_buf_init(&c->single, 0);
  if (v[LCMS_O_ON_ATTEMPT].set) {
    /* kept in the user value, so a hook that refers to the client stays collectable */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "on_attempt");
    lua_rawget(L, 1);
    lua_setfield(L, -2, "on_attempt");
    lua_setuservalue(L, -2);
    c->has_hook = 1;
  }
  cms_buf_init(&c->form, 0);
  cms_buf_init(&c->xfer.answer, CMS_MAX_ANSWER);
  c->retries = v[LCMS_O_RETRIES].set ? (int)v[LCMS_O_RETRIES].i : 1;
  c->rate = cms_rate_local_init(&c->local_rate, v[LCMS_O_RATE_LIMIT].set ? v[LCMS_O_RATE_LIMIT].num : 100,
                                v[LCMS_O_RATE_LIMIT_PENALTY].set ? v[LCMS_O_RATE_LIMIT_PENALTY].num : 10,
                                cms_now_ms());
  cms_rand_init(&c->rand);
  c->n_endpoints = n_eps;
  c->appkey = dup_trimmed(appkey, appkey_len, "");
  c->secret = malloc(secret_len + 1);
  if (c->secret) {
    memcpy(c->secret, secret, secret_len + 1);
    c->secret_len = secret_len;
  }
  if (ca) c->ca_file = dup_trimmed(ca, ca_len, "");
  if (proxy) c->proxy = dup_trimmed(proxy, proxy_len, "");
  for (i = 0; i < n_eps; i++) {
    c->endpoints[i] = dup_shown(eps[i], eps_len[i]);
    c->urls[i] = dup_trimmed(eps[i], eps_len[i], CMS_API_PATH);
    if (!c->endpoints[i] || !c->urls[i]) failed = 1;
  }
  if (!c->appkey || !c->secret || (ca && !c->ca_file) || (proxy && !c->proxy)) failed = 1;
  cms_http_global_init();
  c->http.timeout_ms = (long)((v[LCMS_O_TIMEOUT].set ? v[LCMS_O_TIMEOUT].num : 5) * 1000);
  c->http.connect_timeout_ms =
    (long)((v[LCMS_O_CONNECT_TIMEOUT].set ? v[LCMS_O_CONNECT_TIMEOUT].num : 5) * 1000);
  c->http.ca_file = c->ca_file;
  c->http.proxy = c->proxy;
  c->http.user_agent = "commsease-lua/" LCMS_VERSION;
  if (failed) {
    release(c);
    lua_pushliteral(L, "not enough memory");
    return lua_error(L); /* a memory error raises, as Lua's own do */
  }
  c->easy = curl_easy_init();
  if (!c->easy || cms_http_configure(c->easy, &c->http) != CURLE_OK) {
    release(c);
    return luaL_error(L, "commsease.new: could not set up libcurl (out of memory?)");
  }
  if (store) {  /* the client exists (its __gc releases it): open the shared budget */
    char err[512];
    cms_store_opts so;
    cms_rate *r;
    so.url = store;
    so.appkey = c->appkey;
    so.rate = v[LCMS_O_RATE_LIMIT].set ? v[LCMS_O_RATE_LIMIT].num : 100;
    so.penalty_s = v[LCMS_O_RATE_LIMIT_PENALTY].set ? v[LCMS_O_RATE_LIMIT_PENALTY].num : 10;
    so.timeout_ms = (long)((v[LCMS_O_RATE_STORE_TIMEOUT].set ? v[LCMS_O_RATE_STORE_TIMEOUT].num
                                                             : CMS_STORE_TIMEOUT_MS / 1000.0) * 1000);
    if (so.timeout_ms < 1) so.timeout_ms = 1;
    r = cms_store_open(&so, err, sizeof err);
    if (!r) {
      lcms_errinfo ei;
      release(c);
      memset(&ei, 0, sizeof ei);
      ei.kind = "store";
      ei.message = err;
      ei.field = "rate_store";
      ei.retryable = 1;
      return lcms_push_error(L, &ei);
    }
    c->rate = r;
  }
  return 1;
}

/* req, err = client:prepare(params) */
static int client_prepare(lua_State *L) {
  lcms_client *c = lcms_check_client(L);
  cms_verr e;
  lcms_sig s;
  char rid[CMS_NONCE_LEN + 1];
  lua_settop(L, 2);
  /* prepare signs with its own Nonce/CurTime; the caller sends it */
  if (lcms_encode(L, 2, &c->form, &e)) return lcms_push_invalid(L, &e);
  if (cms_rand_hex32(&c->rand, rid) || lcms_sign(c, &s))
    return lcms_push_local_error(L, "could not sign the request (libcrypto failure)", NULL);
  {
    int keys = lua_upvalueindex(1), t = lcms_push_request(L, keys, c, 0, &s, rid, c->form.data,
                                                        c->form.len, 2);
    lua_pushvalue(L, 3);
    lcms_set(L, keys, t, LCMS_K_MSGIDS);
    lua_pushlstring(L, rid, CMS_NONCE_LEN);
    lcms_set(L, keys, t, LCMS_K_REQUEST_ID);
  }
  return 1;
}

/* the one idempotent close behind close(), __gc and __close */
static void release(lcms_client *c) {
  int i;
  /* in a child that inherited the client, the parent's kept-alive connections are
   * swapped for dead sockets first: the cleanups below then drop them (no TLS
   * close_notify, no read) instead of shutting down the parent's connections */
  cms_http_fork_check();
  lcms_pool_release(c->pool);
  c->pool = NULL;
  if (c->rate && c->rate != &c->local_rate.base) cms_store_free(c->rate); /* a shared store */
  else if (c->rate) c->rate->ops->close(c->rate);
  c->rate = NULL;
  if (c->easy) curl_easy_cleanup(c->easy);
  c->easy = NULL;
  curl_slist_free_all(c->headers);
  c->headers = NULL;
  cms_sha1_free(&c->sha1);
  cms_rand_free(&c->rand);
  if (c->secret) {
    OPENSSL_cleanse(c->secret, c->secret_len);
    free(c->secret);
    c->secret = NULL;
  }
  free(c->appkey);
  c->appkey = NULL;
  free(c->ca_file);
  c->ca_file = NULL;
  free(c->proxy);
  c->proxy = NULL;
  for (i = 0; i < LCMS_MAX_ENDPOINTS; i++) {
    free(c->endpoints[i]);
    free(c->urls[i]);
    c->endpoints[i] = c->urls[i] = NULL;
  }
  cms_buf_free(&c->form);
  cms_buf_free(&c->url);
  cms_buf_free(&c->single);
  cms_buf_free(&c->xfer.answer);
}

/* __gc and __close: never raise, free everything whatever the state (Lua
 * closing inside a running fan-out, os.exit(n, true) from on_progress: the
 * loop below will never resume) */
static int client_gc(lua_State *L) {
  lcms_client *c = luaL_testudata(L, 1, LCMS_CLIENT_MT);
  if (c) release(c);
  return 0;
}

static int client_close(lua_State *L) {
  lcms_client *c = luaL_checkudata(L, 1, LCMS_CLIENT_MT);
  if (c->running)
    return luaL_error(L, "commsease: cannot close a client inside its own send_all/fanout");
  if (c->in_hook)
    return luaL_error(L, "commsease: cannot close a client inside its own on_attempt hook");
  release(c);
  return 0;
}

static int client_tostring(lua_State *L) {
  lcms_client *c = luaL_checkudata(L, 1, LCMS_CLIENT_MT);
  lua_pushfstring(L, "commsease.client (%p)%s", (void *)c, c->easy ? "" : " closed");
  return 1;
}

static int client_closed(lua_State *L) {
  lcms_client *c = luaL_checkudata(L, 1, LCMS_CLIENT_MT);
  lua_pushboolean(L, c->easy == NULL);
  return 1;
}

/* stats = client:stats(): a plain table of counters, built afresh per call */
static int client_stats(lua_State *L) {
  lcms_client *c = luaL_checkudata(L, 1, LCMS_CLIENT_MT);
  lcms_push_stats(L, &c->stats);
  lua_pushstring(L, c->rate ? c->rate->ops->state(c->rate) : "closed");
  lua_setfield(L, -2, "rate_store");
  lua_pushinteger(L, c->rate ? (lua_Integer)c->rate->fallbacks : 0);
  lua_setfield(L, -2, "rate_store_fallbacks");
  return 1;
}

/* wait = client:pace_take(): the non-blocking half of send's pacing, for drivers that
 * wait in their own event loop (commsease.resty): 0 when a call may start now (its
 * share of the client's budget, shared store included, is taken), else the seconds to
 * wait before asking again */
static int client_pace_take(lua_State *L) {
  lcms_client *c = lcms_check_client(L);
  long wait = c->rate->ops->take(c->rate, cms_now_ms());
  lua_pushnumber(L, wait > 0 ? (lua_Number)wait / 1000.0 : 0);
  return 1;
}

/* client:pace_penalty(): a 416 answer arrived; every call of the budget pauses */
static int client_pace_penalty(lua_State *L) {
  lcms_client *c = lcms_check_client(L);
  c->rate->ops->penalty(c->rate, cms_now_ms());
  return 0;
}

void lcms_open_client(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"send", lcms_send}, {"send_one", lcms_send_one}, {"call", lcms_call},
    {"prepare", client_prepare}, {"close", client_close},
    {"is_closed", client_closed}, {"send_all", lcms_send_all}, {"fanout", lcms_fanout},
    {"plan", lcms_plan}, {"stats", client_stats}, {"pace_take", client_pace_take},
    {"pace_penalty", client_pace_penalty}, {"send_plan", lcms_send_plan}, {NULL, NULL}};
  luaL_newmetatable(L, LCMS_CLIENT_MT);
  lua_pushcfunction(L, client_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, client_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, client_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "commsease: a client's metatable is private");
  lua_setfield(L, -2, "__metatable");
  /* every method has the list of field names (lcms_push_keys) as upvalue 1
   * and the metatable as upvalue 2 (lcms_check_client) */
  luaL_newlibtable(L, methods);
  lcms_push_keys(L);
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, methods, 2);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lcms_open_report(L);
  lcms_open_plan(L);
  lcms_open_send_plan(L);
}
