-- luacheck configuration: `make lint`
-- The specs, the examples and the rockspec check run on Lua 5.1, 5.2, 5.3, 5.4 and
-- LuaJIT, so they may use only what all of them have (std "min"): math.type,
-- table.unpack, utf8, ... go through spec/helpers.lua (helpers.math_type, helpers.unpack,
-- helpers.utf8), which handles the differences.
std = "min"
-- math.type and table.unpack may be read to tell versions apart (math.type ~= nil,
-- table.unpack or unpack); a spec that calls them unguarded fails on 5.1 in make test
local probes = { math = { fields = { "type" } }, table = { fields = { "unpack" } } }
files["spec"] = { std = "min+busted", read_globals = probes }
-- the bench runs on Lua 5.4 (and OpenResty for its resty rows)
files["bench"] = { std = "lua54" }
-- wrk's Lua hooks are globals that wrk calls (request, response, done, setup, init)
files["bench/wrk-emulator.lua"] = {
  std = "luajit",
  globals = { "wrk", "request", "response", "done", "setup", "init", "tid", "n", "bad" },
  unused_args = false,
}
-- LuaJIT's jit table is read where present
files["spec/compat"] = { std = "min+busted", read_globals = { "jit", math = probes.math } }
-- the OpenResty half runs under LuaJIT inside nginx
files["src/lua/commsease"] = { std = "ngx_lua" }
files["examples/openresty"] = { std = "ngx_lua" }
