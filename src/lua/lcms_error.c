/* lcms_error.c -- structured error values: nil, err where err prints as one
 * line starting "commsease:" and carries kind, code, message, field,
 * retryable, sent, request_id and endpoint. */
#include <stdio.h>
#include <string.h>
#include "lcms.h"

const char lcms_key_errmt = 0;

/* pushes an endpoint URL without the user:password@ it may carry, so that
 * credentials in a base URL never reach an error value (or a log line made
 * from one) */
static void push_endpoint(lua_State *L, const char *url) {
  const char *scheme = strstr(url, "://"), *host, *at, *end;
  if (!scheme) {
    lua_pushstring(L, url);
    return;
  }
  host = scheme + 3;
  end = host + strcspn(host, "/?#");
  at = NULL;
  for (; host < end; host++)
    if (*host == '@') at = host; /* the last '@' of the authority ends the userinfo */
  if (!at) {
    lua_pushstring(L, url);
    return;
  }
  lua_pushlstring(L, url, (size_t)(scheme + 3 - url));
  lua_pushstring(L, at + 1);
  lua_concat(L, 2);
}

int lcms_push_error(lua_State *L, const lcms_errinfo *ei) {
  lua_pushnil(L);
  lua_createtable(L, 0, 8);
  lua_pushstring(L, ei->kind);
  lua_setfield(L, -2, "kind");
  if (ei->code) {
    lua_pushinteger(L, (lua_Integer)ei->code);
    lua_setfield(L, -2, "code");
  }
  lua_pushstring(L, ei->message ? ei->message : ei->kind);
  lua_setfield(L, -2, "message");
  if (ei->field) {
    lua_pushstring(L, ei->field);
    lua_setfield(L, -2, "field");
  }
  lua_pushboolean(L, ei->retryable);
  lua_setfield(L, -2, "retryable");
  lua_pushboolean(L, ei->sent);
  lua_setfield(L, -2, "sent");
  if (ei->request_id) {
    lua_pushstring(L, ei->request_id);
    lua_setfield(L, -2, "request_id");
  }
  if (ei->endpoint) {
    push_endpoint(L, ei->endpoint);
    lua_setfield(L, -2, "endpoint");
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lcms_key_errmt);
  lua_setmetatable(L, -2);
  return 2;
}

int lcms_push_invalid(lua_State *L, const cms_verr *e) {
  lcms_errinfo ei = {"invalid", 0, e->message, e->field, 0, 0, NULL, NULL};
  return lcms_push_error(L, &ei);
}

/* "commsease: <kind>[ <code>]: <message>"; the fields are read first and
 * kept on the stack, so nothing moves under lua_pushfstring */
static int err_tostring(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "kind");    /* 2 */
  lua_getfield(L, 1, "code");    /* 3 */
  lua_getfield(L, 1, "message"); /* 4 */
  {
    char code[32] = "";
    if (lua_isinteger(L, 3)) snprintf(code, sizeof code, " %lld", (long long)lua_tointeger(L, 3));
    lua_pushfstring(L, "commsease: %s%s: %s", lua_isstring(L, 2) ? lua_tostring(L, 2) : "error",
                    code, lua_isstring(L, 4) ? lua_tostring(L, 4) : "?");
  }
  return 1;
}

void lcms_open_errors(lua_State *L) {
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, err_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "commsease.error");
  lua_setfield(L, -2, "__name");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lcms_key_errmt);
}
