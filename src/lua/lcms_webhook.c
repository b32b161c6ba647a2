/* lcms_webhook.c -- commsease.verify_webhook: checks a webhook request of the
 * service (headers and raw body as received) and hands back the decoded
 * event.  The checks themselves are Lua-free (src/core/cms_webhook.c). */
#include <math.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "lcms.h"
#include "lcms_wire.h"
#include "cms_webhook.h"

static const char *const arg_names[] = {"secret", "headers", "body", "max_age", "now", NULL};

/* unknown keys are refused: a misspelt max_age must not silently fall back */
static void check_keys(lua_State *L) {
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    int i, known = 0;
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -1);
      for (i = 0; arg_names[i]; i++)
        if (strcmp(k, arg_names[i]) == 0) known = 1;
      if (!known)
        luaL_argerror(L, 1, lua_pushfstring(L, "unknown key '%s' (secret, headers, body, "
                                            "max_age, now)", k));
    } else {
      luaL_argerror(L, 1, "keys must be strings (secret, headers, body, max_age, now)");
    }
  }
}

static double opt_seconds(lua_State *L, const char *name, double def, double lo, double hi) {
  double v;
  lua_pushstring(L, name);
  lua_rawget(L, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return def;
  }
  if (lua_type(L, -1) != LUA_TNUMBER)
    luaL_argerror(L, 1, lua_pushfstring(L, "'%s' must be a number of seconds", name));
  v = (double)lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (!(v >= lo && v <= hi))
    luaL_argerror(L, 1, lua_pushfstring(L, "'%s' is out of range", name));
  return v;
}

/* finds one header by name in any case.  A name present twice (two
 * spellings, or a list of values as ngx.req.get_headers gives for a repeated
 * header) is refused: which copy was signed cannot be told. */
static int find_header(lua_State *L, int headers, const char *name, cms_wh_header *h,
                       cms_verr *e) {
  int found = 0;
  h->s = NULL;
  h->n = 0;
  lua_pushnil(L);
  while (lua_next(L, headers)) {
    if (lua_type(L, -2) == LUA_TSTRING && strcasecmp(lua_tostring(L, -2), name) == 0 &&
        strlen(lua_tostring(L, -2)) == strlen(name)) {
      if (found || lua_type(L, -1) == LUA_TTABLE) {
        lua_pop(L, 2);
        return cms_verr_set(e, name, "header %s appears more than once", name);
      }
      if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 2);
        return cms_verr_set(e, name, "header %s must be a string", name);
      }
      h->s = lua_tolstring(L, -1, &h->n); /* still referenced by the headers table */
      found = 1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

int lcms_verify_webhook(lua_State *L) {
  const char *secret, *body;
  size_t secret_len, body_len;
  double max_age, now;
  cms_wh_header md5, curtime, checksum;
  cms_verr e;
  luaL_checkstack(L, 8, "commsease.verify_webhook");
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  check_keys(L);
  lua_pushliteral(L, "secret");
  lua_rawget(L, 1); /* 2 */
  if (lua_type(L, 2) != LUA_TSTRING || lua_rawlen(L, 2) == 0)
    luaL_argerror(L, 1, "'secret' must be a non-empty string");
  secret = lua_tolstring(L, 2, &secret_len);
  lua_pushliteral(L, "headers");
  lua_rawget(L, 1); /* 3 */
  if (lua_type(L, 3) != LUA_TTABLE) luaL_argerror(L, 1, "'headers' must be a table");
  lua_pushliteral(L, "body");
  lua_rawget(L, 1); /* 4 */
  if (lua_type(L, 4) != LUA_TSTRING)
    luaL_argerror(L, 1, "'body' must be a string (the raw request body)");
  body = lua_tolstring(L, 4, &body_len);
  max_age = opt_seconds(L, "max_age", CMS_WEBHOOK_MAX_AGE, 0, 366.0 * 86400);
  {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  }
  now = opt_seconds(L, "now", now, 0, 1e11);

  memset(&e, 0, sizeof e);
  if (find_header(L, 3, "MD5", &md5, &e) || find_header(L, 3, "CurTime", &curtime, &e) ||
      find_header(L, 3, "CheckSum", &checksum, &e) ||
      cms_webhook_verify(secret, secret_len, md5, curtime, checksum, body, body_len,
                         (long long)floor(now * 1000.0), (long long)floor(max_age * 1000.0), &e))
    return lcms_push_invalid(L, &e);
  /* only a body that passed the signature is parsed */
  while (body_len && (*body == ' ' || *body == '\t' || *body == '\r' || *body == '\n')) {
    body++;
    body_len--;
  }
  if (!body_len || *body != '{' || lcms_json_decode(L, body, body_len) ||
      lua_type(L, -1) != LUA_TTABLE) {
    cms_verr_set(&e, "body", "the body is not a JSON object");
    return lcms_push_invalid(L, &e);
  }
  return 1;
}
