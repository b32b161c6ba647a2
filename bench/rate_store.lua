-- rate_store.lua -- the shared rate stores in `make bench` (run.lua calls it last):
-- the cost of one budget draw for each store (bench/store_draw.c, against a
-- redis-server started here on a free port and stopped by its PID), and the wall
-- time of 4 processes fanning out 150 calls each through one shm: store against
-- the emulator, beside its floor (600 calls / 100 per second = 6 s).
-- Run from the repository root after `make all`:  lua5.4 bench/rate_store.lua
-- Env: BENCH_STORE_N (shm draws per process, default 200000).
local socket = require "socket"
local cjson = require "cjson"

local LUA = arg[-1] or "lua5.4"
local N = math.tointeger(tonumber(os.getenv("BENCH_STORE_N") or "")) or 200000

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end
local function line(name, pass, fmt, ...)
  print(string.format("%-46s  %-4s   " .. fmt, name, pass and "PASS" or "MISS", ...))
end

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. q(dir)))

-- 1. one draw
local out, ok = sh("make -s -C bench build/store_draw")
if not ok then print("rate store bench: cannot build bench/store_draw: " .. out) return end
local redis_pid, redis_url
if os.execute("command -v redis-server >/dev/null 2>&1") then
  local port = free_port()
  local p = io.popen("redis-server --port " .. port .. " --bind 127.0.0.1 --save '' "
    .. "--appendonly no --dir " .. q(dir) .. " >/dev/null 2>&1 </dev/null & echo $!")
  redis_pid = p:read("l")
  p:close()
  redis_url = "redis://127.0.0.1:" .. port
  local t0 = socket.gettime()
  repeat
    local c = socket.tcp()
    c:settimeout(0.1)
    local up = c:connect("127.0.0.1", port)
    c:close()
    if up then break end
    socket.sleep(0.02)
  until socket.gettime() - t0 > 5
end
out = sh("bench/build/store_draw " .. q(dir .. "/draw") .. " " .. q(redis_url or "") .. " " .. N)
if redis_pid then os.execute("kill -KILL " .. redis_pid .. " 2>/dev/null") end
local shm_ns = tonumber(out:match("shm_ns=(%S+)"))
local shm4_ns = tonumber(out:match("shm4_ns=(%S+)"))
local redis_us = tonumber(out:match("redis_us=(%S+)"))
local redis_wall = tonumber(out:match("redis_wall_us=(%S+)"))
local ping_wall = tonumber(out:match("ping_wall_us=(%S+)"))
print()
print("rate stores (CPU of the drawing process; Redis also wall time per draw on loopback):")
if shm_ns then
  line("shm: draw, 1 process", shm_ns <= 1000, "%.0f ns (target ≤ 1 µs)", shm_ns)
  line("shm: draw, 4 processes at once (each)", shm4_ns <= 1000, "%.0f ns (target ≤ 1 µs)", shm4_ns)
else
  print("shm: draw: not measured: " .. out:sub(1, 300))
end
if redis_wall and redis_wall >= 0 then
  line("redis:// draw on loopback (wall)", redis_wall <= 100,
       "%.1f µs (target ≤ 100 µs; CPU %.1f µs; a bare PING on the same loopback: %s)",
       redis_wall, redis_us, ping_wall and ping_wall >= 0 and string.format("%.1f µs", ping_wall)
       or "not measured")
else
  print("redis:// draw: not measured (no redis-server?)")
end

-- 2. four processes, one shm: budget, against the emulator
local emu = io.popen("exec sh -c 'echo $$; exec build/commsease-emulator --port 0'", "r")
local emu_pid = emu:read("l")
local base = emu:read("l"):match("listening on (http://%S+)")
local start_at = socket.gettime() + 1.5
local ps = {}
for i = 1, 4 do
  ps[i] = io.popen(string.format(
    "CMS_APPKEY=demo-appkey CMS_SECRET=demo-secret %s spec/workers/fanout_worker.lua %s %s %s 150 %.3f b%d",
    LUA, "build", q(base), q("shm:" .. dir .. "/fleet"), start_at, i))
end
local last, okc = 0, 0
for i = 1, 4 do
  local text = ps[i]:read("a")
  ps[i]:close()
  for l in text:gmatch("[^\n]+") do
    local j = cjson.decode(l)
    if j.t1 then
      last = math.max(last, j.t1)
      okc = okc + j.ok
    end
  end
end
local stats = sh("curl -s " .. q(base:gsub("/nimserver$", "") .. "/_emulator/stats"))
os.execute("kill " .. emu_pid .. " 2>/dev/null")
emu:close()
local j = cjson.decode(stats) or {}
local took = last - start_at
line("4 processes x 150 calls, one shm: store", okc == 600 and took <= 6.9 and
     (j.max_calls_per_second or 999) <= 100 and not (j.codes or {})["416"],
     "%.2f s (floor 6 s, target ≤ 6.9 s); %d/600 ok, max %s calls/s, %s 416s", took, okc,
     tostring(j.max_calls_per_second), tostring((j.codes or {})["416"] or 0))
os.execute("rm -rf " .. q(dir))
