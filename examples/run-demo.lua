-- examples/run-demo.lua -- what `make demo` runs:
--
--   lua5.4 examples/run-demo.lua build/commsease-emulator
--   (any of lua5.1 .. lua5.4 and luajit, with COMMSEASE_BUILD its build dir)
--
-- With COMMSEASE_APPKEY, COMMSEASE_SECRET and COMMSEASE_ENDPOINT all set it
-- only runs examples/quickstart.lua against that service.  Otherwise it starts
-- the local emulator on a free port, runs quickstart.lua against it, shows one
-- member's inbox as the emulator recorded it, and stops the emulator (SIGTERM)
-- whatever happened.  Exits non-zero when the quickstart failed.

local here = (arg and arg[0] or ""):match("^(.*)[/\\][^/\\]*$") or "."
local emulator = arg[1] or (here .. "/../build/commsease-emulator")
local lua = arg[-1] or "lua5.4"     -- the interpreter running this script
package.cpath = (os.getenv("COMMSEASE_BUILD") or (here .. "/../build")) .. "/?.so;" .. package.cpath

local function q(s) return "'" .. tostring(s):gsub("'", [['\'']]) .. "'" end
local function say(...) io.stdout:write("== ", ...) io.stdout:write("\n") io.stdout:flush() end

-- os.execute as Lua 5.2+ returns it (ok, "exit"|"signal", n); 5.1 and LuaJIT
-- return the wait status as one number
local function execute(cmd)
  local ok, how, code = os.execute(cmd)
  if type(ok) ~= "number" then return ok == true, how, code end
  if ok % 256 == 0 then return ok == 0, "exit", ok / 256 end
  return false, "signal", ok % 128
end

-- runs quickstart.lua as a child with extra environment; true when it exited 0
local function quickstart(envs)
  local cmd = {}
  for k, v in pairs(envs or {}) do cmd[#cmd + 1] = k .. "=" .. q(v) end
  cmd[#cmd + 1] = q(lua) .. " " .. q(here .. "/quickstart.lua")
  return execute(table.concat(cmd, " "))
end

local function set(name) local v = os.getenv(name) return v ~= nil and v ~= "" end

-- a real (or your own) service: just the quickstart
if set("COMMSEASE_APPKEY") and set("COMMSEASE_SECRET") and set("COMMSEASE_ENDPOINT") then
  say("quickstart against ", os.getenv("COMMSEASE_ENDPOINT"))
  local ok, how, code = quickstart()
  if not ok then say("quickstart failed (", tostring(how), " ", tostring(code), ")") end
  os.exit(ok and 0 or 1)
end
if set("COMMSEASE_APPKEY") or set("COMMSEASE_SECRET") or set("COMMSEASE_ENDPOINT") then
  say("COMMSEASE_APPKEY, COMMSEASE_SECRET and COMMSEASE_ENDPOINT are not all set: using the emulator")
end

-- --- the emulator as a child: the shell prints its own pid, then becomes the
-- emulator (exec), so that pid is the emulator's; stdout is our pipe ---
local f = io.open(emulator, "rb")
if not f then
  io.stderr:write("run-demo: no emulator at ", emulator, " (make build/commsease-emulator)\n")
  os.exit(1)
end
f:close()

local APPKEY, SECRET = "demo-appkey", "demo-secret"   -- the emulator's defaults
local pipe = assert(io.popen("echo $$; exec " .. q(emulator) .. " --port 0 --appkey " .. q(APPKEY) ..
                             " --secret " .. q(SECRET), "r"))
local pid = tonumber(pipe:read("*l") or "")
local line = pipe:read("*l")
local endpoint = line and line:match("^listening on (https?://%S+)$")

-- state of a child we have not reaped yet: nil once it is gone or a zombie
local function alive(p)
  local st = io.open("/proc/" .. p .. "/stat", "r")
  if not st then return (execute("kill -0 " .. p .. " 2>/dev/null")) end
  local s = st:read("*a") or ""
  st:close()
  local state = s:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

local stopped = false
local function stop_emulator()
  if stopped then return end
  stopped = true
  if pid then
    os.execute("kill -TERM " .. pid .. " 2>/dev/null")
    -- the pid cannot be reused before pipe:close() reaps it, so waiting and a
    -- last-resort SIGKILL cannot hit another process
    for _ = 1, 50 do
      if not alive(pid) then break end
      os.execute("sleep 0.1")
    end
    if alive(pid) then
      io.stderr:write("run-demo: the emulator ignored SIGTERM for 5 s; killing it\n")
      os.execute("kill -KILL " .. pid .. " 2>/dev/null")
    end
  end
  local _, how, code = pipe:close() -- how, code: Lua 5.2+ only
  say("emulator stopped", how and (" (" .. tostring(how) .. " " .. tostring(code) .. ")") or "")
end

if not (pid and endpoint) then
  stop_emulator()
  io.stderr:write("run-demo: the emulator did not start (first line: ", tostring(line), ")\n")
  os.exit(1)
end

local function show_inbox(accid)
  local http = require "socket.http"
  local cjson = require "cjson"
  local origin = endpoint:match("^(https?://[^/]+)")
  local body, status = http.request(origin .. "/_emulator/inbox?accid=" .. accid)
  if status ~= 200 then
    error("GET /_emulator/inbox answered " .. tostring(status) .. ": " .. tostring(body), 0)
  end
  local inbox = cjson.decode(body)
  local names = {}
  local okm, commsease = pcall(require, "commsease")
  if okm then for _, t in ipairs(commsease.rules.msgtypes) do names[t.code] = t.name end end
  say("inbox of ", inbox.accid, " as the emulator recorded it: ", #inbox.messages, " message(s)")
  -- this cjson decodes every number as a float: show integers as integers
  local function int(x)
    if type(x) == "number" and x == math.floor(x) then return string.format("%d", x) end
    return x
  end
  for i, m in ipairs(inbox.messages) do
    print(string.format("  %d. %s UTC  room %s  from %s  %s (type %s)  msgId %s", i,
                        os.date("!%H:%M:%S", math.floor(m.time / 1000)), int(m.roomId), m.fromAccount,
                        names[m.type] or "?", int(m.type), m.msgid_client))
    print("       attach: " .. m.attach)
    if m.ext and m.ext ~= "" then print("       ext:    " .. m.ext) end
  end
end

local ok, result = pcall(function()
  say("emulator (pid ", pid, ") listening on ", endpoint)
  say("quickstart: ", lua, " ", here, "/quickstart.lua")
  local qs_ok, how, code = quickstart{
    COMMSEASE_APPKEY = APPKEY, COMMSEASE_SECRET = SECRET, COMMSEASE_ENDPOINT = endpoint,
  }
  if not qs_ok then say("quickstart failed (", tostring(how), " ", tostring(code), ")") end
  show_inbox("bob")
  return qs_ok
end)
stop_emulator()
if not ok then
  io.stderr:write("run-demo: ", tostring(result), "\n")
  os.exit(1)
end
os.exit(result and 0 or 1)
