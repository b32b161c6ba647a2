/* lcms_parse.c -- an HTTP status and body -> res, or nil, err.
 * A misbehaving server gets a 'response' error, never a crash or a raise. */
#include <math.h>
#include <string.h>
#include "lcms.h"


/* the integer value of a number or numeric string at idx */
static int to_int(lua_State *L, int idx, long long *out) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    if (lua_isinteger(L, idx)) {
      *out = (long long)lua_tointeger(L, idx);
      return 0;
    } else {
      double d = (double)lua_tonumber(L, idx);
      if (!isfinite(d) || d != floor(d) || fabs(d) > 9.2e18) return -1;
      *out = (long long)d;
      return 0;
    }
  }
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    return cms_parse_int64(s, n, out);
  }
  return -1;
}

static int fail_response(lua_State *L, const char *msg, const char *rid, const char *ep) {
  lcms_errinfo ei = {"response", 0, msg, NULL, 1, 1, rid, ep};
  return lcms_push_error(L, &ei);
}

/* success/fail: an array of single-key objects keyed by msgId -> map */
static int collect(lua_State *L, int ans, const char *key, int dst, int is_success) {
  size_t i, n;
  lua_getfield(L, ans, key);
  if (lua_isnil(L, -1) || lua_type(L, -1) == LUA_TLIGHTUSERDATA) { /* absent or null */
    lua_pop(L, 1);
    return 0;
  }
  if (lua_type(L, -1) != LUA_TTABLE) return -1;
  n = (size_t)lua_rawlen(L, -1);
  {
    size_t keys = 0; /* an array, not an object */
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pop(L, 1);
      keys++;
    }
    if (keys != n) return -1;
  }
  for (i = 1; i <= n; i++) {
    int entry;
    lua_rawgeti(L, -1, (lua_Integer)i);
    entry = lua_gettop(L);
    if (lua_type(L, entry) != LUA_TTABLE) return -1;
    lua_pushnil(L);
    while (lua_next(L, entry)) {
      if (lua_type(L, -2) != LUA_TSTRING) return -1;
      if (is_success) {
        static const char *const ints[] = {"time", "roomId", "type", NULL};
        int k;
        if (lua_type(L, -1) != LUA_TTABLE) return -1;
        for (k = 0; ints[k]; k++) {
          long long v;
          lua_getfield(L, -1, ints[k]);
          if (!lua_isnil(L, -1)) {
            if (to_int(L, -1, &v)) return -1;
            lua_pushinteger(L, (lua_Integer)v);
            lua_setfield(L, -3, ints[k]);
          }
          lua_pop(L, 1);
        }
      } else if (lua_type(L, -1) != LUA_TSTRING) {
        /* a reason that is not text: keep it readable */
        if (lcms_json_encode(L, -1)) return -1;
        lua_replace(L, -2);
      }
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, dst);
    }
    lua_settop(L, entry - 1);
  }
  lua_pop(L, 1);
  return 0;
}

int lcms_parse_answer(lua_State *L, long status, const char *body, size_t len, int msgids,
                      const char *request_id, const char *endpoint, long long *api_code) {
  int top = lua_gettop(L), ans, res;
  long long code;
  if (api_code) *api_code = 0;
  luaL_checkstack(L, 24, "commsease: no room on the Lua stack to parse an answer");
  if (msgids) msgids = lua_absindex(L, msgids);
  if (status != 200) {
    char msg[96];
    lcms_errinfo ei = {"http", status, msg, NULL, status >= 500 || status == 429 || status == 408,
                       1, request_id, endpoint};
    snprintf(msg, sizeof msg, "HTTP status %ld from the service (not a CommsEase answer)", status);
    return lcms_push_error(L, &ei);
  }
  if (lcms_json_decode(L, body, len) || lua_type(L, -1) != LUA_TTABLE) {
    lua_settop(L, top);
    return fail_response(L, "the answer is not a JSON object", request_id, endpoint);
  }
  ans = lua_gettop(L);
  lua_getfield(L, ans, "code");
  if (to_int(L, -1, &code)) {
    lua_settop(L, top);
    return fail_response(L, "the answer has no numeric code", request_id, endpoint);
  }
  lua_pop(L, 1);
  if (api_code) *api_code = code;
  if (code != 200) {
    const char *desc;
    lcms_errinfo ei = {"api", code, NULL, NULL, cms_api_code_retryable(code), 1, request_id, endpoint};
    lua_getfield(L, ans, "desc");
    if (lua_type(L, -1) == LUA_TTABLE && lcms_json_encode(L, -1) == 0) lua_replace(L, -2);
    desc = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    ei.message = desc && *desc ? desc : "the service refused the call (no desc)";
    lcms_push_error(L, &ei); /* ans desc nil err */
    lua_replace(L, top + 2);  /* ans err nil */
    lua_pop(L, 1);            /* ans err */
    lua_pushnil(L);
    lua_replace(L, top + 1);  /* nil err */
    return 2;
  }
  lua_createtable(L, 0, 6);
  res = lua_gettop(L);
  lua_pushinteger(L, 200);
  lua_setfield(L, res, "code");
  lua_newtable(L);
  lua_setfield(L, res, "success");
  lua_newtable(L);
  lua_setfield(L, res, "fail");
  lua_getfield(L, res, "success");
  if (collect(L, ans, "success", lua_gettop(L), 1)) {
    lua_settop(L, top);
    return fail_response(L, "the answer's success list is malformed", request_id, endpoint);
  }
  lua_pop(L, 1);
  lua_getfield(L, res, "fail");
  if (collect(L, ans, "fail", lua_gettop(L), 0)) {
    lua_settop(L, top);
    return fail_response(L, "the answer's fail list is malformed", request_id, endpoint);
  }
  lua_pop(L, 1);
  if (msgids) {
    lua_pushvalue(L, msgids);
    lua_setfield(L, res, "msgIds");
  }
  if (request_id) {
    lua_pushstring(L, request_id);
    lua_setfield(L, res, "request_id");
  }
  lua_replace(L, ans);
  lua_settop(L, ans);
  return 1;
}

/* commsease.parse(status, body) */
int lcms_parse(lua_State *L) {
  size_t len;
  lua_Integer status = luaL_checkinteger(L, 1);
  const char *body = luaL_checklstring(L, 2, &len);
  if (len > CMS_MAX_ANSWER)
    return fail_response(L, "the answer is over 1 MiB", NULL, NULL);
  return lcms_parse_answer(L, (long)status, body, len, 0, NULL, NULL, NULL);
}
