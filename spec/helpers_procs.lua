--[[ spec/helpers_procs.lua -- Lua processes for specs that need more than one.

local procs = require("helpers_procs")
procs.lua_bin()          -> the interpreter of this run: $COMMSEASE_LUA, else luajit under
                            LuaJIT, else "lua5.N" for this _VERSION
local p = procs.spawn(script, args, env)
                         -> runs `lua_bin() script args...` with env (a table of extra
                            variables, e.g. a secret: never on the command line) in the
                            background; p.pid is the interpreter's own PID
p:kill(sig)              -> kill -SIG (default KILL) p.pid
p:wait()                 -> out, how, code: everything it printed on stdout, and how it ended
                            (io.popen close's "exit"/"signal" and the number; Lua 5.1 and
                            LuaJIT without 5.2 compatibility give neither)
procs.last_json(out)     -> the last line of out that decodes as a JSON object, or nil
]]
local cjson = require("cjson.safe")
local unpack = table.unpack or rawget(_G, "unpack")

local M = {}

local function shq(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

function M.lua_bin()
  local v = os.getenv("COMMSEASE_LUA")
  if v and v ~= "" then return v end
  if rawget(_G, "jit") then return "luajit" end
  return "lua" .. _VERSION:match("%d+%.%d+")
end

local P = {}
P.__index = P

function M.spawn(script, args, env)
  local parts = {"exec env"}
  for k, v in pairs(env or {}) do parts[#parts + 1] = shq(k .. "=" .. v) end
  parts[#parts + 1] = "sh -c 'echo $$; exec \"$0\" \"$@\"'"
  parts[#parts + 1] = shq(M.lua_bin())
  parts[#parts + 1] = shq(script)
  for _, a in ipairs(args or {}) do parts[#parts + 1] = shq(a) end
  local p = assert(io.popen(table.concat(parts, " "), "r"))
  local pid = tonumber(p:read("*l"))
  assert(pid, "no PID from " .. script)
  return setmetatable({pid = pid, proc = p}, P)
end

function P:kill(sig)
  os.execute("kill -" .. (sig or "KILL") .. " " .. self.pid .. " 2>/dev/null")
end

function P:wait()
  if self.done then return unpack(self.done) end
  local out = self.proc:read("*a")
  local _, how, code = self.proc:close()
  self.done = {out, how, code}
  return out, how, code
end

function M.last_json(out)
  local found
  for line in (out or ""):gmatch("[^\n]+") do
    local j = cjson.decode(line)
    if type(j) == "table" then found = j end
  end
  return found
end

return M
