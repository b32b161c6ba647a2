/* lcms_parse.c -- an HTTP status and body -> res, or nil, err.
 * A misbehaving server gets a 'response' error, never a crash or a raise. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "lcms.h"
#include "cms_answer.h"
#include "lcms_answer.h"


/* the integer value of a number or numeric string at idx */
int lcms_result_int(lua_State *L, int idx, long long *out) {
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

/* an integer of a result: a Lua integer where the runtime has 64-bit
 * integers; where it has only doubles (5.1, 5.2, LuaJIT), a number up to 2^53
 * and beyond it the exact decimal string (a double would change it) */
void lcms_push_result_int(lua_State *L, long long v) {
#if LUA_VERSION_NUM >= 503
  if (sizeof(lua_Integer) >= sizeof(long long)) {
    lua_pushinteger(L, (lua_Integer)v);
    return;
  }
#endif
  if (v >= -9007199254740992LL && v <= 9007199254740992LL) {
    lua_pushnumber(L, (lua_Number)v);
  } else {
    char digits[24];
    snprintf(digits, sizeof digits, "%lld", v);
    lua_pushstring(L, digits);
  }
}

int lcms_response_error(lua_State *L, const char *msg, const char *rid, const char *ep) {
  lcms_errinfo ei = {"response", 0, msg, NULL, 1, 1, rid, ep};
  return lcms_push_error(L, &ei);
}

/* a message object on top: time, roomId and type become integers (the
 * service sometimes sends numeric strings); -1 if it is not an object or one
 * of them is not an integer */
int lcms_result_ints(lua_State *L) {
  static const char *const ints[] = {"time", "roomId", "type", NULL};
  int k;
  if (lua_type(L, -1) != LUA_TTABLE) return -1;
  for (k = 0; ints[k]; k++) {
    long long v;
    lua_getfield(L, -1, ints[k]);
    if (!lua_isnil(L, -1)) {
      if (lcms_result_int(L, -1, &v)) return -1;
      lcms_push_result_int(L, v);
      lua_setfield(L, -3, ints[k]);
    }
    lua_pop(L, 1);
  }
  return 0;
}


/* Decodes the answer, every byte of it: a NUL byte is refused (lua-cjson
 * would stop there and take what comes before for the whole answer), and an
 * integer literal beyond 2^53 goes to the decoder quoted, so that it comes back
 * as a string with its digits instead of a rounded double.  Pushes the value
 * and returns 0; -2 on a NUL, -1 when the text is not JSON (the message pushed). */
static int decode_exact(lua_State *L, const char *body, size_t len) {
  size_t pos = 0, n = 0, done = 0;
  luaL_Buffer b;
  int r = cms_answer_next_big(body, len, &pos, &n);
  if (r < 0) return -2;
  if (r == 0) return lcms_json_decode(L, body, len);
  luaL_buffinit(L, &b);
  do {
    luaL_addlstring(&b, body + done, pos - done);
    luaL_addchar(&b, '"');
    luaL_addlstring(&b, body + pos, n);
    luaL_addchar(&b, '"');
    done = pos += n;
  } while ((r = cms_answer_next_big(body, len, &pos, &n)) == 1);
  luaL_addlstring(&b, body + done, len - done);
  luaL_pushresult(&b);
  if (r < 0) return -2;
  {
    size_t tl;
    const char *text = lua_tolstring(L, -1, &tl);
    if (lcms_json_decode(L, text, tl)) return -1;
  }
  lua_remove(L, -2);
  return 0;
}

/* what every shape of answer shares: the HTTP status, the JSON, the code.
 * Returns 0 with the decoded answer (code 200) pushed; else the number of
 * values pushed (nil, err) */
static int parse_head(lua_State *L, long status, const char *body, size_t len,
                      const char *request_id, const char *endpoint, long long *api_code) {
  int top = lua_gettop(L), ans;
  long long code;
  if (api_code) *api_code = 0;
  luaL_checkstack(L, 24, "commsease: no room on the Lua stack to parse an answer");
  if (status != 200) {
    char msg[96];
    lcms_errinfo ei = {"http", status, msg, NULL, status >= 500 || status == 429 || status == 408,
                       1, request_id, endpoint};
    snprintf(msg, sizeof msg, "HTTP status %ld from the service (not a CommsEase answer)", status);
    return lcms_push_error(L, &ei);
  }
  switch (decode_exact(L, body, len)) {
    case 0:
      break;
    case -2:
      lua_settop(L, top);
      return lcms_response_error(L, "the answer holds a NUL byte (JSON text never does)", request_id,
                           endpoint);
    default:
      lua_settop(L, top);
      return lcms_response_error(L, "the answer is not a JSON object", request_id, endpoint);
  }
  if (lua_type(L, -1) != LUA_TTABLE) {
    lua_settop(L, top);
    return lcms_response_error(L, "the answer is not a JSON object", request_id, endpoint);
  }
  ans = lua_gettop(L);
  lua_getfield(L, ans, "code");
  if (lcms_result_int(L, -1, &code)) {
    lua_settop(L, top);
    return lcms_response_error(L, "the answer has no numeric code", request_id, endpoint);
  }
  lua_pop(L, 1);
  if (api_code) *api_code = code;
  if (code != 200) {
    const char *desc;
    lcms_errinfo ei = {"api", code, NULL, NULL, cms_api_code_retryable(code), 1, request_id, endpoint};
    lua_settop(L, ans);
    lua_getfield(L, ans, "desc"); /* top + 2 */
    if (lua_type(L, top + 2) == LUA_TTABLE) {
      /* a desc object reads as its JSON; one that cannot be written again
       * (a number lua-cjson decoded as inf) counts as no desc */
      if (lcms_json_encode(L, top + 2) == 0) lua_replace(L, top + 2);
      else lua_settop(L, top + 1), lua_pushnil(L);
    }
    desc = lua_type(L, top + 2) == LUA_TSTRING ? lua_tostring(L, top + 2) : NULL;
    ei.message = desc && *desc ? desc : "the service refused the call (no desc)";
    lcms_push_error(L, &ei); /* ans desc nil err */
    lua_replace(L, top + 2);  /* ans err nil */
    lua_pop(L, 1);            /* ans err */
    lua_pushnil(L);
    lua_replace(L, top + 1);  /* nil err */
    return 2;
  }
  return 0;
}

int lcms_parse_answer(lua_State *L, long status, const char *body, size_t len, int msgids,
                      const char *request_id, const char *endpoint, long long *api_code) {
  /* a status-200 answer goes through the one-pass reader (lcms_answer.c):
   * every byte checked, the result tables built straight from the text */
  if (status != 200) return parse_head(L, status, body, len, request_id, endpoint, api_code);
  return lcms_answer_read(L, body, len, msgids, request_id, endpoint, api_code, 0);
}

/* lua-cjson decodes every number as a float: whole ones (up to 2^53, beyond
 * which decode_exact already gave strings) become integers, as the rest of
 * the module's results are, at most 64 levels deep */
static void integers(lua_State *L, int t, int depth) {
#if LUA_VERSION_NUM >= 503
  if (depth > 64 || !lua_checkstack(L, 4)) return;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
      double d = (double)lua_tonumber(L, -1);
      if (d == floor(d) && fabs(d) <= 9007199254740992.0) {
        lua_pushvalue(L, -2);
        lua_pushinteger(L, (lua_Integer)d);
        lua_rawset(L, t);
      }
    } else if (lua_type(L, -1) == LUA_TTABLE) {
      integers(L, lua_gettop(L), depth + 1);
    }
    lua_pop(L, 1);
  }
#else
  (void)L; (void)t; (void)depth;
#endif
}

int lcms_parse_answer_shape(lua_State *L, int shape, long status, const char *body, size_t len,
                            const char *request_id, const char *endpoint, long long *api_code) {
  int top = lua_gettop(L), nret;
  if (shape == LCMS_ANSWER_BATCH)
    return lcms_parse_answer(L, status, body, len, 0, request_id, endpoint, api_code);
  if ((nret = parse_head(L, status, body, len, request_id, endpoint, api_code))) return nret;
  if (shape == LCMS_ANSWER_SINGLE) {
    lua_getfield(L, -1, "desc");
    if (lcms_result_ints(L)) {
      lua_settop(L, top);
      return lcms_response_error(L, "the answer's desc is not a message object", request_id, endpoint);
    }
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
  } else {
    integers(L, lua_gettop(L), 0);
  }
  return 1;
}

/* an HTTP status: a whole number from 0 to 999 on every Lua (5.1 and LuaJIT
 * would otherwise truncate 200.5 where 5.3 and 5.4 raise) */
static long check_status(lua_State *L, int idx) {
  int isnum = 0;
  lua_Number d = lua_tonumberx(L, idx, &isnum);
  if (!isnum) luaL_checktype(L, idx, LUA_TNUMBER); /* raises "number expected, got ..." */
  if (!(d >= 0 && d <= 999) || d != floor(d))
    luaL_argerror(L, idx, "an HTTP status (a whole number from 0 to 999) expected");
  return (long)d;
}

/* commsease.parse(status, body) */
int lcms_parse(lua_State *L) {
  size_t len;
  long status = check_status(L, 1);
  const char *body = luaL_checklstring(L, 2, &len);
  if (len > CMS_MAX_ANSWER)
    return lcms_response_error(L, "the answer is over 1 MiB", NULL, NULL);
  return lcms_parse_answer(L, status, body, len, 0, NULL, NULL, NULL);
}
