/* lcms_compat.c -- lua-compat-5.3's functions, compiled once, for Lua 5.1/5.2
 * and LuaJIT builds (an empty unit on 5.3/5.4). */
#include "lcms_compat.h"
#if LUA_VERSION_NUM < 503
#include "compat-5.3.c"
#else
typedef int lcms_compat_unused; /* ISO C wants a non-empty unit */
#endif
