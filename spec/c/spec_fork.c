/* spec_fork.c -- fork() for the specs on Lua 5.4, where Debian's lua-posix
 * (5.1 to 5.3 only) is missing.  Test-only, never installed: built by
 * `make test-plain` as $(BUILD)/spec_fork.so.  spec/41-fork_spec.lua uses
 * lua-posix where it is there and this otherwise.
 *   pid = spec_fork.fork()        0 in the child, -1 on failure
 *   spec_fork._exit(code)         leaves the child without closing the Lua state
 *   code = spec_fork.wait(pid)    the child's exit status (-1 if it did not exit) */
#include <lua.h>
#include <lauxlib.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static int f_fork(lua_State *L) {
  fflush(NULL);
  lua_pushinteger(L, (lua_Integer)fork());
  return 1;
}

static int f_exit(lua_State *L) {
  _exit((int)luaL_optinteger(L, 1, 0));
  return 0;
}

static int f_wait(lua_State *L) {
  int st = 0;
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) lua_pushinteger(L, -1);
  else lua_pushinteger(L, WEXITSTATUS(st));
  return 1;
}

__attribute__((visibility("default"))) int luaopen_spec_fork(lua_State *L) {
  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, f_fork);
  lua_setfield(L, -2, "fork");
  lua_pushcfunction(L, f_exit);
  lua_setfield(L, -2, "_exit");
  lua_pushcfunction(L, f_wait);
  lua_setfield(L, -2, "wait");
  return 1;
}
