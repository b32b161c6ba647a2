--[[ spec/helpers_redis.lua -- a redis-server of Debian's for one spec, on 127.0.0.1.

local redis = require("helpers_redis")
redis.available()        -> true when redis-server is installed
redis.free_port()        -> a TCP port nothing listens on (bound once and let go)
local r = redis.start([port]) -> r.port, r.pid, r.url ("redis://127.0.0.1:PORT");
    no persistence, its files in a temporary directory; raises if it does not listen in 5 s
r:cli(...)               -> what redis-cli -p PORT ... printed (arguments shell-quoted)
r:stop()                 -> SIGKILL by its PID, waits for it to be gone; idempotent
]]
local socket = require("socket")

local M = {}

local function shq(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

function M.available()
  local ok = os.execute("command -v redis-server >/dev/null 2>&1")
  return ok == true or ok == 0  -- 5.2+: true; 5.1: the status
end

function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local st = f:read("*a")
  f:close()
  local state = st:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

local R = {}
R.__index = R

function M.start(port)
  port = port or M.free_port()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. shq(dir)))
  local p = assert(io.popen("exec sh -c 'echo $$; exec redis-server --port \"$0\" --bind 127.0.0.1"
    .. " --save \"\" --appendonly no --dir \"$1\" >/dev/null 2>&1' " .. port .. " " .. shq(dir), "r"))
  local pid = tonumber(p:read("*l"))
  local r = setmetatable({port = port, pid = pid, proc = p, dir = dir,
                          url = "redis://127.0.0.1:" .. port}, R)
  local deadline = socket.gettime() + 5
  repeat
    local c = socket.tcp()
    c:settimeout(0.2)
    local ok = c:connect("127.0.0.1", port)
    c:close()
    if ok then return r end
    socket.sleep(0.02)
  until socket.gettime() > deadline or not alive(pid)
  r:stop()
  error("redis-server did not listen on " .. port)
end

function R:cli(...)
  local args = {}
  for i, a in ipairs({...}) do args[i] = shq(a) end
  local p = assert(io.popen("redis-cli -p " .. self.port .. " " .. table.concat(args, " ")
    .. " 2>/dev/null"))
  local out = p:read("*a")
  p:close()
  return out
end

function R:stop()
  if self.stopped then return end
  self.stopped = true
  os.execute("kill -KILL " .. self.pid .. " 2>/dev/null")
  local deadline = socket.gettime() + 5
  while alive(self.pid) and socket.gettime() < deadline do socket.sleep(0.01) end
  self.proc:close()
  os.execute("rm -rf " .. shq(self.dir))
end

return M
