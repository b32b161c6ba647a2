-- luacheck configuration: `make lint`
std = "lua54"
files["spec"] = { std = "+busted" }
-- wrk's Lua hooks are globals that wrk calls (request, response, done, setup, init)
files["bench/wrk-emulator.lua"] = {
  globals = { "wrk", "request", "response", "done", "setup", "init", "tid", "n", "bad" },
  unused_args = false,
}
-- runs under Lua 5.1 and LuaJIT too
files["spec/compat/smoke.lua"] = { std = "lua51+lua54", read_globals = { "jit" } }
-- the OpenResty half runs under LuaJIT inside nginx
files["src/lua/commsease"] = { std = "ngx_lua" }
files["examples/openresty"] = { std = "ngx_lua" }
