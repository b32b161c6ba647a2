/* fuzz_encode.c -- libFuzzer target for the Lua-table side of the module: the
 * params reader, the validation and the JSON/form encoder behind
 * client:prepare and commsease.chunk.  It embeds Lua 5.4, links the module's C
 * code (src/core, src/lua) built with the fuzzer's instrumentation, and builds
 * Lua tables from the input.  Built and run by spec/fuzz/run.sh.
 *
 * The input is a little program over a pool of tables (see the ops below):
 * strings (any bytes, long ones, invalid UTF-8), 64-bit integers, doubles
 * (NaN, inf, -0), booleans, functions, userdata, nesting, one table shared
 * many times, cycles, and metatables with __index (a table, a function that
 * answers every key, one that raises, one that makes a fresh table each time),
 * __pairs, __len, __newindex, __metatable.  Its first byte picks where the
 * tables go: the whole params, a custom message's attach and ext, msgList and
 * toAccids, or any params key over a valid skeleton.  Invariants, any
 * violation abort()s (a hang is libFuzzer's -timeout):
 *   prepare and chunk never raise on a params table (bad data is nil, err);
 *   prepare gives a req whose body is form text (unreserved bytes, %XX, & and =)
 *   or nil, err with err.kind "invalid"; chunk gives calls, plan or nil, err
 *   (kind "invalid"). */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int luaopen_commsease(lua_State *L);

#define FAIL(...)                                           \
  do {                                                      \
    fprintf(stderr, "fuzz_encode invariant: " __VA_ARGS__); \
    fputc('\n', stderr);                                    \
    abort();                                                \
  } while (0)

static lua_State *L;
static int client_ref, chunk_ref, fns_ref;

static const char helpers_lua[] =
  "local fns = {}\n"
  "fns.index_key = function(t, k) return k end\n"
  "fns.raise = function() error('boom from a metamethod') end\n"
  "fns.pairs_other = function(t) return next, {x = 1, [1] = 'y'}, nil end\n"
  "fns.len_big = function() return 1e9 end\n"
  "local fresh_mt = {}\n"
  "fresh_mt.__index = function() return setmetatable({}, fresh_mt) end\n"
  "fns.fresh_mt = fresh_mt\n"
  "fns.co = coroutine.create(function() end)\n"
  "fns.long = string.rep('\\226\\130\\172', 3000)\n"
  "fns.bad_utf8 = '\\255\\254\\192\\128\\237\\160\\128'\n"
  "return fns\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  L = luaL_newstate();
  if (!L) FAIL("no Lua state");
  luaL_openlibs(L);
  luaL_requiref(L, "commsease", luaopen_commsease, 0);
  lua_getfield(L, -1, "chunk");
  chunk_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getfield(L, -1, "new");
  lua_newtable(L);
  lua_pushliteral(L, "fuzz-appkey");
  lua_setfield(L, -2, "appkey");
  lua_pushliteral(L, "fuzz-secret");
  lua_setfield(L, -2, "secret");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) FAIL("commsease.new: %s", lua_tostring(L, -1));
  client_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (luaL_dostring(L, helpers_lua) != LUA_OK) FAIL("helpers: %s", lua_tostring(L, -1));
  fns_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 0);
  return 0;
}

typedef struct input {
  const uint8_t *p;
  size_t n;
} input;

static unsigned byte(input *in) {
  if (!in->n) return 0;
  in->n--;
  return *in->p++;
}

static uint64_t word(input *in) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < 8; i++) v = v << 8 | byte(in);
  return v;
}

#define POOL 1   /* stack slot of the pool of tables */
#define FNS 2    /* stack slot of the helpers */
#define BASE 2   /* values live above this */
#define MAX_POOL 256
#define MAX_VALUES 64

static int pool_n(void) { return (int)lua_rawlen(L, POOL); }

/* pushes pool[byte % n + 1]; 0 if the pool is empty */
static int push_pooled(input *in) {
  int n = pool_n();
  if (!n) return 0;
  lua_rawgeti(L, POOL, (lua_Integer)(byte(in) % (unsigned)n) + 1);
  return 1;
}

static void push_fn(const char *name) { lua_getfield(L, FNS, name); }

static void push_special(input *in) {
  switch (byte(in) % 10) {
    case 0: push_fn("index_key"); break;
    case 1: lua_pushlightuserdata(L, NULL); break; /* lua-cjson's null */
    case 2: push_fn("co"); break;
    case 3: lua_pushlstring(L, "a\0b", 3); break;
    case 4: push_fn("long"); break;
    case 5: push_fn("bad_utf8"); break;
    case 6: lua_pushnumber(L, (lua_Number)HUGE_VAL); break;
    case 7: lua_pushnumber(L, (lua_Number)-0.0); break;
    case 8: lua_getglobal(L, "io"); lua_getfield(L, -1, "stdout"); lua_remove(L, -2); break;
    default: lua_pushinteger(L, (lua_Integer)INT64_MIN); break;
  }
}

/* a metatable variant for the table at the top (popped) */
static void set_meta(input *in) {
  int t = lua_gettop(L);
  switch (byte(in) % 9) {
    case 0: /* __index: another table of the pool */
      lua_newtable(L);
      if (!push_pooled(in)) lua_newtable(L);
      lua_setfield(L, -2, "__index");
      break;
    case 1: lua_newtable(L); push_fn("index_key"); lua_setfield(L, -2, "__index"); break;
    case 2: lua_newtable(L); push_fn("raise"); lua_setfield(L, -2, "__index"); break;
    case 3: push_fn("fresh_mt"); break;
    case 4: lua_newtable(L); push_fn("pairs_other"); lua_setfield(L, -2, "__pairs"); break;
    case 5: lua_newtable(L); push_fn("raise"); lua_setfield(L, -2, "__pairs"); break;
    case 6: lua_newtable(L); push_fn("len_big"); lua_setfield(L, -2, "__len"); break;
    case 7: lua_newtable(L); push_fn("raise"); lua_setfield(L, -2, "__newindex"); break;
    default:
      lua_newtable(L);
      lua_pushliteral(L, "locked");
      lua_setfield(L, -2, "__metatable");
      push_fn("raise");
      lua_setfield(L, -2, "__index");
      break;
  }
  lua_setmetatable(L, t);
  lua_settop(L, t - 1);
}

/* key-safe rawset of the value at the top into the table below the key */
static void set_kv(int t) {
  /* stack: ... v k */
  int ok = !lua_isnil(L, -1);
  if (ok && lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
    lua_Number d = lua_tonumber(L, -1);
    ok = d == d; /* a NaN key raises */
  }
  if (!ok) {
    lua_pop(L, 2);
    return;
  }
  lua_insert(L, -2); /* ... k v */
  lua_rawset(L, t);
}

static void run(input *in) {
  while (in->n) {
    int op = (int)(byte(in) % 13);
    if (lua_gettop(L) > BASE + MAX_VALUES) lua_settop(L, BASE + MAX_VALUES / 2);
    switch (op) {
      case 0: { /* a string of the input's bytes */
        size_t len = byte(in) % 48;
        if (len > in->n) len = in->n;
        lua_pushlstring(L, (const char *)in->p, len);
        in->p += len, in->n -= len;
        break;
      }
      case 1: lua_pushinteger(L, (lua_Integer)(int64_t)word(in)); break;
      case 2: {
        uint64_t w = word(in);
        double d;
        memcpy(&d, &w, sizeof d);
        lua_pushnumber(L, (lua_Number)d);
        break;
      }
      case 3: lua_pushinteger(L, (lua_Integer)(int8_t)byte(in)); break;
      case 4: lua_pushboolean(L, (int)(byte(in) & 1)); break;
      case 5: /* a new table, into the pool and onto the stack */
        if (pool_n() >= MAX_POOL) break;
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawseti(L, POOL, pool_n() + 1);
        break;
      case 6: /* pool[i][k] = v with k, v popped */
        if (lua_gettop(L) < BASE + 2 || !push_pooled(in)) break;
        lua_insert(L, -3);
        set_kv(lua_gettop(L) - 2);
        lua_pop(L, 1);
        break;
      case 7: /* pool[i][#+1] = v popped */
        if (lua_gettop(L) < BASE + 1 || !push_pooled(in)) break;
        lua_insert(L, -2);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        lua_pop(L, 1);
        break;
      case 8: { /* pool[i][key] = pool[j]: sharing and cycles */
        static const char *const keys[] = {"attach", "ext", "a", "msgList", "toAccids", "x"};
        unsigned k;
        if (!push_pooled(in)) break;
        k = byte(in);
        if (k & 0x80) lua_pushinteger(L, (lua_Integer)(k & 7) + 1);
        else lua_pushstring(L, keys[k % 6]);
        if (!push_pooled(in)) {
          lua_pop(L, 2);
          break;
        }
        lua_rawset(L, -3);
        lua_pop(L, 1);
        break;
      }
      case 9:
        if (push_pooled(in)) set_meta(in);
        break;
      case 10: push_pooled(in); break;
      case 11: push_special(in); break;
      default: if (lua_gettop(L) > BASE) lua_pop(L, 1); break;
    }
  }
}

static void pooled_or_nil(int i) {
  if (pool_n() >= i) lua_rawgeti(L, POOL, i);
  else lua_pushnil(L);
}

/* the params table (pushed) in the shape the first byte picked */
static void push_params(unsigned shape) {
  if (shape % 4 == 0 && pool_n() >= 1) {
    lua_rawgeti(L, POOL, 1);
    return;
  }
  lua_newtable(L);
  lua_pushinteger(L, 765788);
  lua_setfield(L, -2, "roomid");
  lua_pushliteral(L, "npc");
  lua_setfield(L, -2, "fromAccid");
  if (shape % 4 == 2) {
    pooled_or_nil(1);
    lua_setfield(L, -2, "msgList");
    pooled_or_nil(2);
    lua_setfield(L, -2, "toAccids");
    return;
  }
  lua_createtable(L, 2, 0);
  lua_pushliteral(L, "p1");
  lua_rawseti(L, -2, 1);
  lua_pushliteral(L, "p2");
  lua_rawseti(L, -2, 2);
  lua_setfield(L, -2, "toAccids");
  lua_createtable(L, 1, 0);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, 100);
  lua_setfield(L, -2, "msgType");
  if (shape % 4 == 1) {
    pooled_or_nil(1);
    lua_setfield(L, -2, "attach");
    pooled_or_nil(2);
    lua_setfield(L, -2, "ext");
  } else {
    lua_pushliteral(L, "{}");
    lua_setfield(L, -2, "attach");
  }
  lua_rawseti(L, -2, 1);
  lua_setfield(L, -2, "msgList");
  if (shape % 4 == 3 && pool_n() >= 1) { /* every raw key of pool[1] over the skeleton */
    int params = lua_gettop(L);
    lua_rawgeti(L, POOL, 1);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, params);
    }
    lua_pop(L, 1);
  }
}

static int form_text(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '.' || c == '_' || c == '~' || c == '%' || c == '&' || c == '='))
      return 0;
  }
  return 1;
}

static void expect_invalid(const char *what) {
  /* stack: nil err */
  const char *kind;
  if (!lua_isnil(L, -2) || lua_type(L, -1) != LUA_TTABLE) FAIL("%s: not nil, err", what);
  lua_getfield(L, -1, "kind");
  kind = lua_tostring(L, -1);
  if (!kind || strcmp(kind, "invalid") != 0) FAIL("%s: err.kind is %s", what, kind ? kind : "?");
  lua_pop(L, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input in = {data, size};
  unsigned shape = byte(&in);
  int params, top, st;
  lua_settop(L, 0);
  /* the harness pushes up to MAX_VALUES values from C: room for them (from C,
   * only LUA_MINSTACK slots are there by default) */
  if (!lua_checkstack(L, MAX_VALUES + 64)) FAIL("no Lua stack");
  lua_newtable(L);                              /* POOL */
  lua_rawgeti(L, LUA_REGISTRYINDEX, fns_ref);   /* FNS */
  run(&in);
  lua_settop(L, BASE);
  push_params(shape);
  params = lua_gettop(L);

  /* req, err = client:prepare(params) */
  lua_rawgeti(L, LUA_REGISTRYINDEX, client_ref);
  lua_getfield(L, -1, "prepare");
  lua_insert(L, -2);
  lua_pushvalue(L, params);
  top = lua_gettop(L) - 3;
  st = lua_pcall(L, 2, LUA_MULTRET, 0);
  if (st != LUA_OK && st != LUA_ERRMEM) FAIL("prepare raised: %s", luaL_tolstring(L, -1, NULL));
  if (st == LUA_OK) {
    if (lua_gettop(L) - top == 1 && lua_type(L, -1) == LUA_TTABLE) {
      size_t n;
      const char *body;
      lua_getfield(L, -1, "body");
      body = lua_tolstring(L, -1, &n);
      if (!body || !form_text(body, n)) FAIL("prepare: the body is not form text");
    } else if (lua_gettop(L) - top == 2) {
      expect_invalid("prepare");
    } else {
      FAIL("prepare returned %d values", lua_gettop(L) - top);
    }
  }
  lua_settop(L, params);

  /* calls, plan = commsease.chunk(params) */
  lua_rawgeti(L, LUA_REGISTRYINDEX, chunk_ref);
  lua_pushvalue(L, params);
  st = lua_pcall(L, 1, 2, 0);
  if (st != LUA_OK && st != LUA_ERRMEM) FAIL("chunk raised: %s", luaL_tolstring(L, -1, NULL));
  if (st == LUA_OK) {
    if (lua_type(L, -2) == LUA_TTABLE) {
      if (lua_type(L, -1) != LUA_TTABLE) FAIL("chunk: calls without a plan");
    } else {
      expect_invalid("chunk");
    }
  }
  lua_settop(L, 0);
  /* every input's garbage collected now: libFuzzer's leak check (run after an
   * input that malloc'ed more than it freed) then sees what C code leaked,
   * not what Lua's collector has not reached yet */
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
