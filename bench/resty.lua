-- resty.lua -- the OpenResty rows of `make bench` (bench/run.lua runs it at the end;
-- alone: lua5.4 bench/resty.lua from the repository root, after `make all jit`).
--
-- 1. CPU per call: a commsease.resty fan-out inside one nginx worker (os.clock of the
--    worker around client:fanout, started in ngx.timer.at) against the blocking
--    client:send in Lua 5.4 (os.clock of this process around a loop of sends), the same
--    10 messages x 100 recipients per call, against the same emulator (rate limit off,
--    --inbox-max 1 so it holds no memory).  Target: the worker's CPU per call within
--    1.5x of client:send's.
-- 2. Wall time of a paced fan-out against its floor, calls / rate_limit, with the
--    emulator enforcing the same limit (100 calls/s, the service's default).  Target:
--    within 1.1x of the floor, and no 416.
-- Env: BENCH_RESTY_CALLS (calls per CPU case, default 2000), BENCH_RESTY_PACED (calls
--      of the paced case, default 300), BENCH_REPS (default 9, as run.lua's; medians are reported).
package.path = "bench/?.lua;spec/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local socket = require "socket"
local cjson = require "cjson"
local commsease = require "commsease"
local helpers = require "helpers"
local nginx = require "helpers_nginx"
local common = require "common"
local median = common.median

local CALLS = math.tointeger(tonumber(os.getenv("BENCH_RESTY_CALLS") or "")) or 2000
local PACED = math.tointeger(tonumber(os.getenv("BENCH_RESTY_PACED") or "")) or 300
local REPS = common.REPS
local RATE = 100
assert(CALLS >= 10 and CALLS <= 100000, "BENCH_RESTY_CALLS must be 10..100000")
assert(PACED >= 10 and PACED <= 100000, "BENCH_RESTY_PACED must be 10..100000")


-- the fan-out, run in a timer of the (single) worker; the answer is polled from a dict
local FANOUT = [[
  local a = ...
  local key = a.key
  assert(ngx.timer.at(0, function()
    local commsease = require "commsease"
    local resty = require "commsease.resty"
    local client = resty.new{appkey = a.appkey, secret = a.secret, endpoint = a.base,
                             rate_limit = a.rate, timeout = 10}
    local to, msgs = {}, {}
    for i = 1, 100 * a.calls do to[i] = "r" .. i end
    for i = 1, 10 do msgs[i] = commsease.text("hello", {msgId = a.prefix .. i}) end
    collectgarbage()
    ngx.update_time()
    local w0, c0 = ngx.now(), os.clock()
    local report = client:fanout({roomid = 765788, fromAccid = "bench", toAccids = to, msgList = msgs},
                                 {concurrency = 8, per_receiver_rate = 0})
    local cpu = os.clock() - c0
    ngx.update_time()
    local wall = ngx.now() - w0
    client:close()
    ngx.shared.bench:set(key, require("cjson").encode{calls = report.calls, ok = report.ok,
                                                      cpu = cpu, wall = wall})
  end))
  return true
]]

local function fanout(ng, emu, calls, rate, prefix)
  local key = prefix
  ng:run(FANOUT, {key = key, appkey = emu.appkey, secret = emu.secret, base = emu.base,
                  calls = calls, rate = rate, prefix = prefix})
  local out = helpers.wait_until(function()
    local v = ng:run("return ngx.shared.bench:get(...)", key)
    return v and cjson.decode(v)
  end, 600)
  assert(out, "the fan-out did not finish")
  assert(out.ok == out.calls and out.calls == calls,
         ("the fan-out failed: %d of %d calls ok"):format(out.ok, out.calls))
  return out
end

local function blocking(emu, calls, prefix)
  local client = commsease.new{appkey = emu.appkey, secret = emu.secret, endpoint = emu.base,
                               rate_limit = 0, timeout = 10}
  local to = {}
  for i = 1, 100 do to[i] = "r" .. i end
  local params = {roomid = 765788, fromAccid = "bench", toAccids = to, msgList = {}}
  collectgarbage()
  local c0 = os.clock()
  for k = 1, calls do
    for i = 1, 10 do params.msgList[i] = {msgId = prefix .. k .. "-" .. i, msgType = 0, attach = "hello"} end
    assert(client:send(params))
  end
  local cpu = os.clock() - c0
  client:close()
  return {cpu = cpu}
end

local t_start = socket.gettime()
local emu = helpers.start_emulator({"--rate-limit", "0", "--inbox-max", "1"})
local ng
local ok, err = pcall(function()
  ng = nginx.start{workers = 1, http = "  lua_shared_dict bench 1m;\n"}
  local f_cpu, s_cpu, ratios = {}, {}, {}
  for rep = 1, REPS do
    -- interleaved, so a load that drifts over the run hits both alike
    local f = fanout(ng, emu, CALLS, 0, "f" .. rep .. "-")
    local s = blocking(emu, CALLS, "s" .. rep .. "-")
    f_cpu[rep] = f.cpu * 1e6 / CALLS
    s_cpu[rep] = s.cpu * 1e6 / CALLS
    ratios[rep] = f_cpu[rep] / s_cpu[rep]
  end
  emu:stop()
  -- the paced case: the emulator enforces the limit the client paces to
  emu = helpers.start_emulator({"--rate-limit", tostring(RATE), "--inbox-max", "1"})
  local walls = {}
  for rep = 1, REPS do
    emu:reset()
    local f = fanout(ng, emu, PACED, RATE, "p" .. rep .. "-")
    walls[rep] = f.wall
  end
  local n416 = emu:stats().codes["416"] or 0
  local floor = PACED / RATE
  print()
  print(("OpenResty (one nginx worker, commsease.resty over cosockets; %d calls of 10 messages "
         .. "x 100 recipients per CPU case, medians of %d):"):format(CALLS, REPS))
  print()
  print("| case | CPU µs/call | vs client:send |")
  print("|---|---:|---:|")
  print(("| `client:send` in Lua 5.4 (blocking, 1 connection) | %.1f | baseline |"):format(median(s_cpu)))
  print(("| `commsease.resty` fanout c=8 in the nginx worker | %.1f | %.2f× |"):format(median(f_cpu),
        median(ratios)))
  print(("| paced fan-out: %d calls at %d calls/s | wall %.2f s | floor %.2f s (%.3f×) |"):format(
        PACED, RATE, median(walls), floor, median(walls) / floor))
  print()
  local function target(name, got, limit, fmt)
    print(("%-46s  %-4s   " .. fmt):format(name, got <= limit and "PASS" or "MISS", got, limit))
  end
  target("resty fan-out worker CPU vs client:send", median(ratios), 1.5, "%.2f× (target ≤ %.2f×)")
  target("resty paced fan-out wall vs calls/rate", median(walls) / floor, 1.1, "%.3f× (target ≤ %.2f×)")
  print(("  (416 answers during the paced runs: %d; the OpenResty rows took %.0f s)"):format(n416,
        socket.gettime() - t_start))
end)
if ng then ng:stop() end
emu:stop()
if not ok then
  io.stderr:write("bench/resty.lua: ", tostring(err), "\n")
  os.exit(1)
end
