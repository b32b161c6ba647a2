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

static const char *const option_names[] = {
  "appkey", "secret", "endpoint", "endpoints", "timeout", "connect_timeout", "retries",
  "ca_file", "proxy", "rate_limit", "rate_limit_penalty", "on_attempt", NULL};

#define DEFAULT_ENDPOINT "https://api.netease.im/nimserver"

lcms_client *lcms_check_client(lua_State *L) {
  lcms_client *c = luaL_checkudata(L, 1, LCMS_CLIENT_MT);
  if (!c->easy) luaL_error(L, "commsease: this client is closed");
  if (c->in_hook)
    luaL_error(L, "commsease: a client's own calls cannot be made from its on_attempt hook");
  return c;
}

/* --- options: everything is checked before anything is allocated --- */

/* options are read raw: a proxy table with __index could hand back strings
 * that nothing keeps alive once popped */
static void opt_get(lua_State *L, const char *name) {
  lua_pushstring(L, name);
  lua_rawget(L, 1);
}

static int has_ctl(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 1;
  return 0;
}

static const char *opt_string(lua_State *L, const char *name, int required, size_t *len) {
  const char *s;
  opt_get(L, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    if (required) luaL_error(L, "commsease.new: option '%s' is required", name);
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "commsease.new: option '%s' must be a string, not a %s", name,
               luaL_typename(L, -1));
  s = lua_tolstring(L, -1, len);
  lua_pop(L, 1); /* still referenced by the options table */
  if (required && *len == 0) luaL_error(L, "commsease.new: option '%s' is empty", name);
  if (has_ctl(s, *len))
    luaL_error(L, "commsease.new: option '%s' holds a control character (CR, LF, NUL...)", name);
  return s;
}

static double opt_number(lua_State *L, const char *name, double def, double lo, double hi) {
  double v;
  opt_get(L, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return def;
  }
  if (lua_type(L, -1) != LUA_TNUMBER)
    luaL_error(L, "commsease.new: option '%s' must be a number", name);
  v = (double)lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (!(v >= lo && v <= hi)) {
    char range[64];
    snprintf(range, sizeof range, "from %g to %g", lo, hi);
    luaL_error(L, "commsease.new: option '%s' must be %s", name, range);
  }
  return v;
}

static void check_endpoint(lua_State *L, const char *s, size_t n) {
  if (!((n > 7 && strncmp(s, "http://", 7) == 0) || (n > 8 && strncmp(s, "https://", 8) == 0)))
    luaL_error(L, "commsease.new: endpoint '%s' must be an http:// or https:// URL", s);
  if (has_ctl(s, n) || memchr(s, ' ', n))
    luaL_error(L, "commsease.new: endpoint holds a space or a control character");
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

static void release(lcms_client *c);

int lcms_new(lua_State *L) {
  const char *appkey, *secret, *ca, *proxy, *eps[LCMS_MAX_ENDPOINTS];
  size_t appkey_len, secret_len, eps_len[LCMS_MAX_ENDPOINTS], ca_len, proxy_len;
  int n_eps = 0, i, failed = 0;
  long long retries = 1;
  double timeout, connect_timeout, rate, penalty;
  lcms_client *c;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    int k;
    lua_pop(L, 1);
    for (k = 0; option_names[k]; k++)
      if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), option_names[k]) == 0)
        break;
    if (!option_names[k])
      luaL_error(L, "commsease.new: unknown option '%s'", luaL_tolstring(L, -1, NULL));
  }
  appkey = opt_string(L, "appkey", 1, &appkey_len);
  if (appkey_len > 256) luaL_error(L, "commsease.new: option 'appkey' is longer than 256 bytes");
  secret = opt_string(L, "secret", 1, &secret_len);
  ca = opt_string(L, "ca_file", 0, &ca_len);
  proxy = opt_string(L, "proxy", 0, &proxy_len);
  timeout = opt_number(L, "timeout", 5, 0.001, 3600);
  connect_timeout = opt_number(L, "connect_timeout", 5, 0.001, 3600);
  rate = opt_number(L, "rate_limit", 100, 0, 1e6);
  penalty = opt_number(L, "rate_limit_penalty", 10, 0, 3600);
  opt_get(L, "retries");
  if (!lua_isnil(L, -1)) {
    int isnum = 0;
    retries = lua_type(L, -1) == LUA_TNUMBER ? (long long)lua_tointegerx(L, -1, &isnum) : -1;
    if (!isnum || retries < 0 || retries > 10)
      luaL_error(L, "commsease.new: option 'retries' must be an integer from 0 to 10");
  }
  lua_pop(L, 1);
  opt_get(L, "endpoints");
  if (!lua_isnil(L, -1)) {
    int n;
    opt_get(L, "endpoint");
    if (!lua_isnil(L, -1))
      luaL_error(L, "commsease.new: give 'endpoint' or 'endpoints', not both");
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TTABLE)
      luaL_error(L, "commsease.new: option 'endpoints' must be a list of URLs");
    n = (int)lua_rawlen(L, -1);
    if (n < 1 || n > LCMS_MAX_ENDPOINTS)
      luaL_error(L, "commsease.new: option 'endpoints' must hold 1 to %d URLs", LCMS_MAX_ENDPOINTS);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "commsease.new: endpoints[%d] must be a string", i);
      eps[n_eps] = lua_tolstring(L, -1, &eps_len[n_eps]);
      check_endpoint(L, eps[n_eps], eps_len[n_eps]);
      n_eps++;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  if (n_eps == 0) {
    eps[0] = opt_string(L, "endpoint", 0, &eps_len[0]);
    if (!eps[0]) {
      eps[0] = DEFAULT_ENDPOINT;
      eps_len[0] = strlen(DEFAULT_ENDPOINT);
    }
    check_endpoint(L, eps[0], eps_len[0]);
    n_eps = 1;
  }

  opt_get(L, "on_attempt");
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TFUNCTION)
    luaL_error(L, "commsease.new: option 'on_attempt' must be a function");
  lua_pop(L, 1);

  /* everything is valid: allocate; the metatable comes once it all exists */
  c = lua_newuserdata(L, sizeof *c);
  memset(c, 0, sizeof *c);
  cms_stats_init(&c->stats);
  cms_buf_init(&c->url, 0);
  cms_buf_init(&c->single, 0);
  opt_get(L, "on_attempt");
  if (!lua_isnil(L, -1)) { /* kept in the user value: a hook that refers to the client is collectable */
    lua_createtable(L, 0, 1);
    lua_insert(L, -2);
    lua_setfield(L, -2, "on_attempt");
    lua_setuservalue(L, -2);
    c->has_hook = 1;
  } else {
    lua_pop(L, 1);
  }
  cms_buf_init(&c->form, 0);
  cms_buf_init(&c->xfer.answer, CMS_MAX_ANSWER);
  c->retries = (int)retries;
  c->rate = cms_rate_local_init(&c->local_rate, rate, penalty, cms_now_ms());
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
    c->endpoints[i] = dup_trimmed(eps[i], eps_len[i], "");
    c->urls[i] = dup_trimmed(eps[i], eps_len[i], CMS_API_PATH);
    if (!c->endpoints[i] || !c->urls[i]) failed = 1;
  }
  if (!c->appkey || !c->secret || (ca && !c->ca_file) || (proxy && !c->proxy)) failed = 1;
  cms_http_global_init();
  if (!failed) c->easy = curl_easy_init();
  c->http.timeout_ms = (long)(timeout * 1000);
  c->http.connect_timeout_ms = (long)(connect_timeout * 1000);
  c->http.ca_file = c->ca_file;
  c->http.proxy = c->proxy;
  c->http.user_agent = "commsease-lua/" LCMS_VERSION;
  if (!c->easy || cms_http_configure(c->easy, &c->http) != CURLE_OK) {
    release(c); /* no metatable yet, so no __gc: free by hand */
    return luaL_error(L, "commsease.new: could not set up libcurl (out of memory?)");
  }
  luaL_setmetatable(L, LCMS_CLIENT_MT);
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
  if (lcms_encode_params(L, 2, &c->form, &e)) return lcms_push_invalid(L, &e);
  if (cms_rand_hex32(&c->rand, rid) || lcms_sign(c, &s))
    return lcms_push_local_error(L, "could not sign the request (libcrypto failure)", NULL);
  lua_createtable(L, 0, 6);
  lua_pushliteral(L, "POST");
  lua_setfield(L, -2, "method");
  lua_pushstring(L, c->urls[0]);
  lua_setfield(L, -2, "url");
  lcms_push_headers(L, c, &s, rid);
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, c->form.data ? c->form.data : "", c->form.len);
  lua_setfield(L, -2, "body");
  lua_pushvalue(L, 3);
  lua_setfield(L, -2, "msgIds");
  lua_pushstring(L, rid);
  lua_setfield(L, -2, "request_id");
  return 1;
}

/* the one idempotent close behind close(), __gc and __close */
static void release(lcms_client *c) {
  int i;
  lcms_pool_release(c->pool);
  c->pool = NULL;
  if (c->rate) c->rate->ops->close(c->rate);
  c->rate = NULL;
  if (c->easy) curl_easy_cleanup(c->easy);
  c->easy = NULL;
  curl_slist_free_all(c->headers);
  c->headers = NULL;
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

void lcms_open_client(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"send", lcms_send}, {"send_one", lcms_send_one}, {"call", lcms_call},
    {"prepare", client_prepare}, {"close", client_close},
    {"is_closed", client_closed}, {"send_all", lcms_send_all}, {"fanout", lcms_fanout},
    {"plan", lcms_plan}, {"stats", client_stats}, {NULL, NULL}};
  luaL_newmetatable(L, LCMS_CLIENT_MT);
  lua_pushcfunction(L, client_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, client_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, client_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "commsease: a client's metatable is private");
  lua_setfield(L, -2, "__metatable");
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lcms_open_report(L);
  lcms_open_plan(L);
}
