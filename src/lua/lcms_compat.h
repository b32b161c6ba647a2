/* lcms_compat.h -- the one compatibility header.  The module is written
 * against the Lua 5.3/5.4 C API; for Lua 5.1/5.2 and LuaJIT (OpenResty) the
 * build adds lua-compat-5.3 (Debian: lua-compat53-dev), which supplies
 * lua_isinteger, lua_rawsetp, luaL_setfuncs, luaL_tolstring and friends. */
#ifndef LCMS_COMPAT_H
#define LCMS_COMPAT_H
#include <lua.h>
#include <lauxlib.h>
#if LUA_VERSION_NUM < 503
#define COMPAT53_PREFIX lcms_compat53
#include "compat-5.3.h"
#endif
#endif
