/* oom_test.c -- the binding under memory failure: a Lua 5.4 state whose
 * allocator fails the k-th allocation, for every k until the script runs
 * through, loads the module and runs new, prepare, send, send_all, fanout
 * and plan against a closed port (no server needed).  Every run must end
 * either with the script's "ok" or with a memory error raised ("not enough
 * memory"): never a crash, never another error (a memory failure reported as
 * bad data, a half-built client used), and, under the ASan build, never a
 * leak once the state is closed (the client's __gc frees what new allocated,
 * whatever step failed).  Built and run by `make test-plain` and `test-asan`
 * with the module of the same build: oom-test BUILD_DIR. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long allocs, fail_at;

static void *alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  /* the k-th and the next: Lua retries a failed allocation once after an
   * emergency collection, so both must fail for the failure to surface */
  if ((ptr == NULL || nsize > osize) && ++allocs >= fail_at && allocs <= fail_at + 1 && fail_at)
    return NULL;
  return realloc(ptr, nsize);
}

static const char script[] =
  "local dir = ...\n"
  "package.cpath = dir .. '/?.so;' .. package.cpath\n"
  "local cs = require 'commsease'\n"
  "local c = cs.new{appkey = 'k', secret = 's', endpoint = 'http://u:p@127.0.0.1:9/nimserver',\n"
  "                 rate_limit = 0, retries = 0, timeout = 2, connect_timeout = 2}\n"
  "local p = {roomid = 1, fromAccid = 'a', toAccids = {'b', 'c'},\n"
  "           msgList = {cs.text('x', {msgId = 'm1'}), cs.custom({a = 1}, {msgId = 'm2'})}}\n"
  "assert(c:prepare(p))\n"
  "local r, e = c:send(p)\n"
  "assert(r == nil and e.kind == 'transport', tostring(e))\n"
  "local out = c:send_all({p, p, {roomid = 0}}, {concurrency = 2, on_progress = function() end})\n"
  "assert(#out == 3 and out[1].err.kind == 'transport' and out[3].err.kind == 'invalid')\n"
  "local rep = assert(c:fanout(p, {retries = 1, backoff = 0}))\n"
  "assert(rep.calls == 1 and rep.failed == 1, 'fanout')\n"
  "local plan = assert(c:plan(p, {retries = 1, backoff = 0}))\n"
  "local job = assert(plan:next())\n"
  "plan:done(job.id, nil, {sent = false, message = 'refused'})\n"
  "job = assert(plan:next())\n"
  "plan:done(job.id, 200, '{\"code\":200,\"success\":[],\"fail\":[]}')\n"
  "assert(plan:next() == nil)\n"
  "assert(plan:report().calls == 1)\n"
  "assert(c:stats().rate_store == 'local')\n"
  "c:close()\n"
  "return 'ok'\n";

/* everything, the standard libraries included, runs protected */
static int body(lua_State *L) {
  const char *dir = lua_touserdata(L, 1);
  luaL_openlibs(L);
  if (luaL_loadbuffer(L, script, sizeof script - 1, "=oom") != LUA_OK) return lua_error(L);
  lua_pushstring(L, dir);
  lua_call(L, 1, 1);
  return 1;
}

/* 0: ok; 1: a memory error; -1: anything else (printed) */
static int run(const char *dir, unsigned long k) {
  lua_State *L;
  int rc, out;
  const char *msg;
  allocs = 0;
  fail_at = k;
  L = lua_newstate(alloc, NULL);
  if (!L) return 1;
  lua_pushcfunction(L, body);
  lua_pushlightuserdata(L, (void *)dir);
  rc = lua_pcall(L, 1, 1, 0);
  msg = lua_tostring(L, -1);
  if (rc == LUA_OK) {
    out = msg && strcmp(msg, "ok") == 0 ? 0 : -1;
  } else {
    /* luaL_checkstack reports a stack it cannot grow as a stack overflow */
    out = rc == LUA_ERRMEM || (msg && (strstr(msg, "not enough memory") ||
                                       strstr(msg, "stack overflow"))) ? 1 : -1;
  }
  if (out < 0) fprintf(stderr, "allocation %lu failed: status %d: %s\n", k, rc, msg ? msg : "?");
  lua_close(L); /* every __gc runs here */
  return out;
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "build";
  unsigned long k, total, bad = 0, mem = 0;
  /* a run with no failure counts the allocations */
  if (run(dir, 0) != 0) {
    fprintf(stderr, "oom: the script fails without any memory failure\n");
    return 1;
  }
  total = allocs;
  for (k = 1; k <= total; k++) {
    int r = run(dir, k);
    if (r < 0) bad++;
    else if (r == 1) mem++;
  }
  printf("oom: %lu allocations, each failed once: %lu memory errors raised, %lu ran through, "
         "%lu wrong\n", total, mem, total - mem - bad, bad);
  return bad ? 1 : 0;
}
