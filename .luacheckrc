-- luacheck configuration: `make lint`
-- The specs, the examples and the rockspec check run on Lua 5.1, 5.2, 5.3, 5.4 and
-- LuaJIT, so they may use only what all of them have (std "min"): math.type,
-- table.unpack, utf8, ... go through spec/helpers.lua (helpers.math_type, helpers.unpack,
-- helpers.utf8), which handles the differences.
std = "min"
-- math.type may be read to tell 5.3+ apart (local HAS_INT = math.type ~= nil); a spec
-- that calls it unguarded fails on 5.1 in `make test` anyway
files["spec"] = { std = "min+busted", read_globals = { math = { fields = { "type" } } } }
-- the bench runs on Lua 5.4 (and OpenResty for its resty rows)
files["bench"] = { std = "lua54" }
-- wrk's Lua hooks are globals that wrk calls (request, response, done, setup, init)
files["bench/wrk-emulator.lua"] = {
  std = "luajit",
  globals = { "wrk", "request", "response", "done", "setup", "init", "tid", "n", "bad" },
  unused_args = false,
}
-- LuaJIT's jit table is read where present
files["spec/compat"] = { std = "min+busted", read_globals = { "jit" } }
