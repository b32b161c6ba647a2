/* lcms_json.c -- JSON through a private lua-cjson instance (cjson.new()), so
 * a script's own cjson settings never change what goes on the wire. */
#include <string.h>
#include "lcms.h"

const char lcms_key_encode = 0, lcms_key_decode = 0;

void lcms_open_json(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "new");
  if (lua_isfunction(L, -1)) {
    lua_call(L, 0, 1);
    lua_remove(L, -2);
  } else {
    lua_pop(L, 1); /* an old cjson without new(): share the module's instance */
  }
  lua_getfield(L, -1, "encode_max_depth"); /* as deep as the encoder's number check goes */
  if (lua_isfunction(L, -1)) {
    lua_pushinteger(L, 32);
    lua_call(L, 1, 0);
  } else {
    lua_pop(L, 1);
  }
  lua_getfield(L, -1, "encode");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lcms_key_encode);
  lua_getfield(L, -1, "decode");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lcms_key_decode);
  lua_pop(L, 1);
}

/* lua-cjson writes "/" as "\/" (valid, but each one costs a character of
 * the 4096 allowed and reads badly in a URL).  Walking the escape pairs, this
 * writes it back as "/"; any other escape stays as it is. */
static void unescape_solidus(lua_State *L) {
  size_t n, i;
  const char *s = lua_tolstring(L, -1, &n);
  luaL_Buffer b;
  if (!memchr(s, '/', n)) return;
  luaL_buffinit(L, &b);
  for (i = 0; i < n; i++) {
    if (s[i] == '\\' && i + 1 < n) {
      if (s[i + 1] != '/') luaL_addchar(&b, '\\');
      luaL_addchar(&b, s[++i]);
    } else {
      luaL_addchar(&b, s[i]);
    }
  }
  luaL_pushresult(&b);
  lua_remove(L, -2);
}

int lcms_json_encode(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lcms_key_encode);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) return -1;
  unescape_solidus(L);
  return 0;
}

int lcms_json_decode(lua_State *L, const char *s, size_t n) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lcms_key_decode);
  lua_pushlstring(L, s, n);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) return -1;
  return 0;
}
