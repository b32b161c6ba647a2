/* fuzz_parse.c -- libFuzzer target for commsease.parse, the one function that
 * reads what a server (or an OpenResty caller's cosocket) hands back.  It
 * embeds Lua 5.4, links the module's C code (src/core, src/lua) built with the
 * fuzzer's instrumentation, and feeds it answers.  Built and run by
 * spec/fuzz/run.sh; not part of `make test`.
 *
 * Input: the first byte picks the HTTP status (200 for most values, so the
 * JSON path gets the time), the rest is the body.  Invariants, any violation
 * abort()s so libFuzzer reports it with the input:
 *   parse never raises for a whole-number status and a string body;
 *   it returns res (a table) or nil, err;
 *   res: code 200, success and fail tables; every success entry a table whose
 *        roomId/time/type are integers (Lua 5.4 has 64-bit integers) if present;
 *        every fail entry a string;
 *   err: kind http (status not 200) or api/response; a message string;
 *        tostring(err) starts with "commsease: "; retryable and sent booleans;
 *   a body with a NUL byte never gives res. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int luaopen_commsease(lua_State *L);

#define FAIL(...)                                          \
  do {                                                     \
    fprintf(stderr, "fuzz_parse invariant: " __VA_ARGS__); \
    fputc('\n', stderr);                                   \
    abort();                                               \
  } while (0)

static lua_State *L;
static int parse_ref;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  L = luaL_newstate();
  if (!L) FAIL("no Lua state");
  luaL_openlibs(L);
  luaL_requiref(L, "commsease", luaopen_commsease, 0);
  lua_getfield(L, -1, "parse");
  parse_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 0);
  return 0;
}

static const long statuses[] = {502, 404, 0, 999, 429, 100, 301};

static void check_res(int res) {
  lua_getfield(L, res, "code");
  if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) != 200) FAIL("res.code is not 200");
  lua_pop(L, 1);
  lua_getfield(L, res, "success");
  if (lua_type(L, -1) != LUA_TTABLE) FAIL("res.success is not a table");
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    static const char *const ints[] = {"roomId", "time", "type", NULL};
    int k;
    if (lua_type(L, -2) != LUA_TSTRING) FAIL("a success key is not a string");
    if (lua_type(L, -1) != LUA_TTABLE) FAIL("a success entry is not a table");
    for (k = 0; ints[k]; k++) {
      lua_getfield(L, -1, ints[k]);
      if (!lua_isnil(L, -1) && !lua_isinteger(L, -1)) FAIL("success entry's %s is no integer", ints[k]);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_getfield(L, res, "fail");
  if (lua_type(L, -1) != LUA_TTABLE) FAIL("res.fail is not a table");
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      FAIL("a fail entry is not string -> string");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void check_err(int err, long status) {
  const char *kind, *text;
  lua_getfield(L, err, "kind");
  kind = lua_tostring(L, -1);
  if (!kind) FAIL("err.kind is missing");
  if (status != 200 ? strcmp(kind, "http") != 0
                    : strcmp(kind, "api") != 0 && strcmp(kind, "response") != 0)
    FAIL("err.kind is %s for status %ld", kind, status);
  lua_pop(L, 1);
  lua_getfield(L, err, "message");
  if (lua_type(L, -1) != LUA_TSTRING) FAIL("err.message is not a string");
  lua_pop(L, 1);
  lua_getfield(L, err, "retryable");
  lua_getfield(L, err, "sent");
  if (!lua_isboolean(L, -1) || !lua_isboolean(L, -2)) FAIL("err.retryable/sent not booleans");
  lua_pop(L, 2);
  text = luaL_tolstring(L, err, NULL);
  if (strncmp(text, "commsease: ", 11) != 0) FAIL("tostring(err) is \"%s\"", text);
  lua_pop(L, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  long status = 200;
  const char *body = (const char *)data;
  int n;
  if (size > 0) {
    if (data[0] < sizeof statuses / sizeof statuses[0]) status = statuses[data[0]];
    body++, size--;
  }
  lua_settop(L, 0);
  if (!lua_checkstack(L, 40)) FAIL("no Lua stack");
  lua_rawgeti(L, LUA_REGISTRYINDEX, parse_ref);
  lua_pushinteger(L, status);
  lua_pushlstring(L, body, size);
  if (lua_pcall(L, 2, LUA_MULTRET, 0) != LUA_OK) FAIL("parse raised: %s", lua_tostring(L, -1));
  n = lua_gettop(L);
  if (n == 1 && lua_type(L, 1) == LUA_TTABLE) {
    if (status != 200) FAIL("res for status %ld", status);
    if (memchr(body, '\0', size)) FAIL("res for a body with a NUL byte");
    check_res(1);
  } else if (n == 2 && lua_isnil(L, 1) && lua_type(L, 2) == LUA_TTABLE) {
    check_err(2, status);
  } else {
    FAIL("parse returned %d values (%s)", n, luaL_typename(L, 1));
  }
  lua_settop(L, 0);
  /* every input's garbage collected now: libFuzzer's leak check (run after an
   * input that malloc'ed more than it freed) then sees what C code leaked,
   * not what Lua's collector has not reached yet */
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
