-- run.lua -- `make bench`: every case against one loopback server, in one run,
-- every figure measured in this run.  Run from the repository root:
--     lua5.4 bench/run.lua
-- Assumes `make all` built build/commsease.so and build/commsease-emulator;
-- compiles only the bench's own C programs (make -C bench).
-- Env: BENCH_N (requests per case, default 5000), BENCH_REPS (default 5),
--      BENCH_RSS_N1 / BENCH_RSS_N2 (default 10000 / 100000), BENCH_WRK_SECONDS (3),
--      BENCH_IR (default 1: also count instructions per request under callgrind).
local socket = require "socket"

local LUA = arg[-1] or "lua5.4"
local N = math.tointeger(tonumber(os.getenv("BENCH_N") or "")) or 5000
local REPS = math.tointeger(tonumber(os.getenv("BENCH_REPS") or "")) or 5
local IR = os.getenv("BENCH_IR") ~= "0"
local RSS_N1 = math.tointeger(tonumber(os.getenv("BENCH_RSS_N1") or "")) or 10000
local RSS_N2 = math.tointeger(tonumber(os.getenv("BENCH_RSS_N2") or "")) or 100000
local WRK_S = math.tointeger(tonumber(os.getenv("BENCH_WRK_SECONDS") or "")) or 3
local N_PURE = math.max(200, N // 5)   -- pure-Lua sends are slow: fewer of them
local N_PREP = 4 * N                   -- prepare() is cheap: more of them
local APPKEY, SECRET = "benchkey", "benchsecret"
local CLIENT_TIMEOUT = 150             -- seconds, per client process (coreutils timeout)
assert(N >= 100 and N <= 1000000, "BENCH_N must be 100..1000000")
assert(REPS >= 1 and REPS <= 15, "BENCH_REPS must be 1..15")
assert(RSS_N1 >= 1 and RSS_N2 > RSS_N1 and RSS_N2 <= 2000000, "bad BENCH_RSS_N1/N2")
assert(WRK_S >= 1 and WRK_S <= 30, "BENCH_WRK_SECONDS must be 1..30")

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

local function fail(msg)
  io.stderr:write("bench: ", msg, "\n")
  os.exit(1)
end

for _, f in ipairs{"bench/run.lua", "build/commsease.so"} do
  local h = io.open(f)
  if not h then fail(f .. " not found: run from the repository root after `make all`") end
  h:close()
end
do
  local out, ok = sh("make -s -C bench")
  if not ok then fail("could not build the bench's C programs:\n" .. out) end
end

-- --- servers: started in the background under coreutils timeout (so they end even
-- if this script is killed), stopped by pid ---
local servers = {}
local function start_server(label, cmd)
  local log = os.tmpname()
  local p = io.popen(cmd .. " >" .. log .. " 2>&1 </dev/null & echo $!")
  local pid = math.tointeger(tonumber(p:read("l")))
  p:close()
  servers[#servers + 1] = {pid = pid, log = log}
  local t0 = socket.gettime()
  while socket.gettime() - t0 < 10 do
    local h = io.open(log)
    local s = h and h:read("a") or ""
    if h then h:close() end
    local url = s:match("listening on (http://127%.0%.0%.1:%d+/nimserver)")
    if url then return url end
    socket.sleep(0.05)
  end
  fail(label .. " did not start: " .. cmd)
end
local function stop_servers()
  for _, s in ipairs(servers) do
    if s.pid then os.execute("kill " .. s.pid .. " 2>/dev/null") end
    os.remove(s.log)
  end
  servers = {}
end

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- --- one client process -> its RESULT line ---
local function run_client(cmd)
  local out = sh("timeout " .. CLIENT_TIMEOUT .. " " .. cmd)
  local r = {}
  local line = out:match("RESULT ([^\n]*)")
  if not line then
    local skip = out:match("SKIP ([^\n]*)")
    if skip then return {skip = skip:match("reason=(.*)") or skip} end
    return {error = (out:gsub("%s+$", "")):sub(1, 300)}
  end
  for k, v in line:gmatch("(%w[%w_]*)=(%S+)") do r[k] = tonumber(v) or v end
  return r
end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

-- --- wrk: the server's own ceiling ---
local function wrk(url, script_body)
  if not sh("command -v wrk"):find("wrk") then return nil, "wrk not installed" end
  local script = os.tmpname()
  local h = assert(io.open(script, "w"))
  h:write(script_body)
  h:close()
  local out = sh(string.format("timeout %d wrk -t2 -c32 -d%ds --timeout 5s -s %s %s", WRK_S + 20,
    WRK_S, script, sh_quote(url)))
  os.remove(script)
  local rps = tonumber(out:match("Requests/sec:%s*([%d%.]+)"))
  if not rps then return nil, "wrk failed: " .. out:sub(1, 200) end
  local bad = tonumber(out:match("Non%-2xx or 3xx responses:%s*(%d+)")) or 0
  local errs = out:match("Socket errors:[^\n]*")
  return rps, bad, errs
end

local function wrk_script(req)
  local lines = {"wrk.method = \"POST\"", "wrk.body = " .. string.format("%q", req.body)}
  for k, v in pairs(req.headers) do
    lines[#lines + 1] = string.format("wrk.headers[%q] = %q", k, v)
  end
  return table.concat(lines, "\n") .. "\n"
end

-- a signed request from the module itself, for wrk
package.path = "bench/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local common = require "common"
local commsease = require "commsease"
local function prepared(url)
  local opts = {appkey = APPKEY, secret = SECRET, endpoint = url, timeout = 5, retries = 0,
    rate_limit = 0}
  local ok, c = pcall(commsease.new, opts)
  if not ok then
    opts.rate_limit = nil
    c = commsease.new(opts)
  end
  return c, assert(c:prepare(common.params()))
end

local t_start = socket.gettime()
local load = (io.open("/proc/loadavg") or io.stdin):read("l") or "?"
print(string.format("commsease bench: %d cores, load %s; N=%d (pure-Lua sends %d, prepare %d), "
  .. "%d repetitions, median reported", tonumber((sh("nproc"):match("%d+"))) or 0,
  load:match("^(%S+ %S+ %S+)") or load, N, N_PURE, N_PREP, REPS))

local ok_main, err_main = pcall(function()
  local url = start_server("fixed server",
    "timeout 900 bench/build/fixed_server --port 0 --threads 2 --max-seconds 900")
  local api = url .. "/chatroom/batchSendMsgToSomeone.action"

  -- the servers' ceilings with wrk
  local _, req = prepared(url)
  local fixed_rps, fixed_bad, fixed_errs = wrk(api, wrk_script(req))
  local emu_line
  local emu = io.open("build/commsease-emulator")
  if emu then
    emu:close()
    local eurl = start_server("emulator", string.format(
      "timeout 300 build/commsease-emulator --port 0 --rate-limit 0 --inbox-max 100"
      .. " --appkey %s --secret %s", APPKEY, SECRET))
    local ec, ereq = prepared(eurl)
    local res, err = ec:send(common.params())
    if not res then
      emu_line = "emulator: a signed send failed (" .. tostring(err) .. "); not measured"
    else
      local eapi = eurl .. "/chatroom/batchSendMsgToSomeone.action"
      local rps, bad, errs = wrk(eapi, wrk_script(ereq))
      -- wrk replays one signed request: check the emulator still answers it with code 200
      local http, ltn12 = require "socket.http", require "ltn12"
      local chunks, hdrs = {}, {["Content-Length"] = tostring(#ereq.body)}
      for k, v in pairs(ereq.headers) do hdrs[k] = v end
      http.request{url = eapi, method = "POST", headers = hdrs,
        source = ltn12.source.string(ereq.body), sink = ltn12.sink.table(chunks)}
      local replay = table.concat(chunks):match('"code"%s*:%s*"?(%d+)') or "?"
      emu_line = rps and string.format("emulator     (wrk -t2 -c32 -d%ds, signed POST): %9.0f req/s"
        .. "%s%s", WRK_S, rps, bad > 0 and (", " .. bad .. " non-2xx") or "",
        errs and (", " .. errs) or "") .. " (the replayed request answers code " .. replay .. ")"
        or ("emulator: " .. tostring(bad))
    end
    ec:close()
    -- stop the emulator now so it takes no CPU from the clients
    os.execute("kill " .. servers[#servers].pid .. " 2>/dev/null")
    servers[#servers].pid = nil
  else
    emu_line = "emulator: build/commsease-emulator not built; not measured"
  end
  if fixed_rps then
    print(string.format("fixed server (wrk -t2 -c32 -d%ds, same POST):   %9.0f req/s%s%s", WRK_S,
      fixed_rps, fixed_bad > 0 and (", " .. fixed_bad .. " non-2xx") or "",
      fixed_errs and (", " .. fixed_errs) or ""))
  else
    print("fixed server: " .. tostring(fixed_bad))
  end
  print(emu_line)

  local u = sh_quote(url)
  local cred = string.format(" --appkey %s --secret %s", APPKEY, SECRET)
  local C, L = "bench/build/c_client --url " .. u .. cred, LUA .. " bench/module_client.lua --url "
    .. u .. cred
  local P = LUA .. " bench/pure_lua_client.lua --url " .. u .. cred
  local cases = {
    {id = "c_easy", label = "plain C, libcurl easy (1 conn)", cmd = C .. " --mode easy --n " .. N},
    {id = "c_multi8", label = "plain C, libcurl multi c=8",
     cmd = C .. " --mode multi --concurrency 8 --n " .. N},
    {id = "c_multi32", label = "plain C, libcurl multi c=32",
     cmd = C .. " --mode multi --concurrency 32 --n " .. N},
    {id = "send", label = "module client:send (1 conn)", base = "c_easy",
     cmd = L .. " --mode send --n " .. N},
    {id = "send_all8", label = "module send_all c=8", base = "c_multi8",
     cmd = L .. " --mode send_all --concurrency 8 --n " .. N},
    {id = "send_all32", label = "module send_all c=32", base = "c_multi32",
     cmd = L .. " --mode send_all --concurrency 32 --n " .. N},
    {id = "pure_http", label = "pure Lua, socket.http (new conn each)", base = "c_easy",
     cmd = P .. " --mode http --n " .. N_PURE},
    {id = "pure_raw", label = "pure Lua, raw socket keep-alive", base = "c_easy",
     cmd = P .. " --mode raw --n " .. N_PURE},
    {id = "prepare", label = "module prepare() (no I/O)", base = "pure_prepare",
     cmd = L .. " --mode prepare --n " .. N_PREP},
    {id = "pure_prepare", label = "pure Lua prepare equivalent (no I/O)",
     cmd = P .. " --mode prepare --n " .. N},
    {id = "send_hook", label = "client:send + on_attempt + stats()/prometheus every 100",
     base = "send", cmd = L .. " --mode send_hook --n " .. N},
    {id = "verify_webhook", label = "commsease.verify_webhook (no I/O)",
     cmd = L .. " --mode verify_webhook --n " .. N_PREP},
  }
  local by = {}
  for _, c in ipairs(cases) do
    c.rps, c.cpu = {}, {}
    by[c.id] = c
  end
  -- the repetitions are interleaved, so drifting machine load hits every case alike
  for rep = 1, REPS do
    for _, c in ipairs(cases) do
      if not c.skip and not c.error then
        local r = run_client(c.cmd)
        if r.skip then
          c.skip = r.skip
        elseif r.error or not r.cpu_us then
          c.error = r.error or "no figures"
        elseif r.ok ~= r.n then
          c.error = string.format("only %s of %s requests fully succeeded", r.ok, r.n)
        else
          c.n = r.n
          c.rps[#c.rps + 1] = r.reqps
          c.cpu[#c.cpu + 1] = r.cpu_us
          c.by_rep = c.by_rep or {}
          c.by_rep[rep] = r.cpu_us
        end
      end
    end
    print(string.format("  repetition %d/%d done (%.0f s)", rep, REPS, socket.gettime() - t_start))
    io.stdout:flush()
  end
  for _, c in ipairs(cases) do
    c.mrps, c.mcpu = median(c.rps), median(c.cpu)
  end

  -- instructions per request (callgrind counts instructions, whatever else the
  -- machine does): the difference between a run of 1,000 and one of 200
  -- requests, divided by 800, so start-up and warm-up cancel out
  local ir = {}
  local have_valgrind = IR and sh("command -v valgrind"):match("valgrind")
  if have_valgrind then
    local function count(cmd, n)
      local f = os.tmpname()
      sh("timeout 600 valgrind --tool=callgrind --callgrind-out-file=" .. f .. " "
        .. cmd:gsub("%-%-n %d+", "--n " .. n) .. " 2>/dev/null")
      local h = io.open(f)
      local text = h and h:read("a") or ""
      if h then h:close() end
      os.remove(f)
      return tonumber(text:match("\nsummary:%s*(%d+)") or text:match("\ntotals:%s*(%d+)"))
    end
    for _, id in ipairs{"c_easy", "send", "c_multi8", "send_all8", "prepare", "pure_prepare"} do
      local c = by[id]
      if c and not c.skip and not c.error then
        local a, b = count(c.cmd, 200), count(c.cmd, 1000)
        if a and b and b > a then ir[id] = (b - a) / 800 end
      end
    end
    -- the instructions a send spends counting its stats (always on): only inside
    -- lcms_note_attempt and lcms_note_call (no hook set in this case)
    do
      local c = by.send
      if c and not c.skip and not c.error then
        local function counted(n)
          local f = os.tmpname()
          sh("timeout 600 valgrind --tool=callgrind --toggle-collect=lcms_note_attempt "
            .. "--toggle-collect=lcms_note_call --callgrind-out-file=" .. f .. " "
            .. c.cmd:gsub("%-%-n %d+", "--n " .. n) .. " 2>/dev/null")
          local h = io.open(f)
          local text = h and h:read("a") or ""
          if h then h:close() end
          os.remove(f)
          return tonumber(text:match("\nsummary:%s*(%d+)") or text:match("\ntotals:%s*(%d+)"))
        end
        local a, b = counted(200), counted(1000)
        if a and b and b >= a then ir.stats = (b - a) / 800 end
      end
    end
    print(string.format("  instruction counts done (%.0f s)", socket.gettime() - t_start))
  end

  -- memory: 10,000 then 100,000 sends in one process
  local rss_out = sh("timeout " .. CLIENT_TIMEOUT .. " " .. L .. " --mode rss --n1 " .. RSS_N1
    .. " --n2 " .. RSS_N2)
  local r = {}
  for k, v in (rss_out:match("RSS ([^\n]*)") or ""):gmatch("(%w[%w_]*)=(%S+)") do r[k] = tonumber(v) end
  stop_servers()

  -- the table
  local function f(x, fmt) return x and string.format(fmt, x) or "-" end
  local function spread(t)
    if #t < 2 then return "" end
    local lo, hi = math.huge, -math.huge
    for _, v in ipairs(t) do lo, hi = math.min(lo, v), math.max(hi, v) end
    return string.format(" (%.0f–%.0f)", lo, hi)
  end
  print()
  print("| case | n | req/s | CPU µs/req (min–max) | req/s vs base | CPU vs base | base |")
  print("|---|---:|---:|---:|---:|---:|---|")
  for _, c in ipairs(cases) do
    if c.skip or c.error then
      print(string.format("| %s | - | - | - | - | - | %s: %s |", c.label,
        c.skip and "skipped" or "ERROR", c.skip or c.error))
    else
      local b = c.base and by[c.base]
      local rr = b and b.mrps and c.mrps / b.mrps
      local rc = b and b.mcpu and c.mcpu / b.mcpu
      print(string.format("| %s | %d | %.0f | %.1f%s | %s | %s | %s |", c.label, c.n, c.mrps,
        c.mcpu, spread(c.cpu), f(rr, "%.2f×"), f(rc, "%.2f×"), b and b.id or "(baseline)"))
    end
  end
  print()

  -- targets
  local function target(name, got, limit, fmt, better_low)
    if got == nil then
      print(string.format("%-46s  n/a    (not measured)", name))
      return
    end
    local pass = better_low and got <= limit or (not better_low and got >= limit)
    print(string.format("%-46s  %-4s   " .. fmt, name, pass and "PASS" or "MISS", got, limit))
  end
  -- the median of the ratios of each repetition's pair (the two runs were
  -- seconds apart, so a load that drifts over the minute cancels out)
  local function cpu_ratio(a, b)
    local rs = {}
    for rep = 1, REPS do
      local x, y = by[a].by_rep and by[a].by_rep[rep], by[b].by_rep and by[b].by_rep[rep]
      if x and y then rs[#rs + 1] = x / y end
    end
    return median(rs)
  end
  local function ir_note(a, b)
    if not (ir[a] and ir[b]) then return "" end
    return string.format("   instructions %.0f k / %.0f k = %.2f×", ir[a] / 1000, ir[b] / 1000,
      ir[a] / ir[b])
  end
  print("targets (median over the repetitions of each pair's client CPU ratio; instructions per")
  print("request from callgrind beside, the figure that does not move with the machine's load):")
  target("client:send CPU vs plain-C sequential", cpu_ratio("send", "c_easy"), 1.15,
    "%.2f× (target ≤ %.2f×)" .. ir_note("send", "c_easy"), true)
  target("send_all c=8 CPU vs plain-C multi c=8", cpu_ratio("send_all8", "c_multi8"), 1.2,
    "%.2f× (target ≤ %.2f×)" .. ir_note("send_all8", "c_multi8"), true)
  target("send_all c=32 CPU vs plain-C multi c=32", cpu_ratio("send_all32", "c_multi32"), 1.2,
    "%.2f× (target ≤ %.2f×)", true)
  local speedup = cpu_ratio("pure_prepare", "prepare")
  local ir_prep = ir.prepare and ir.pure_prepare and string.format(
    "   instructions %.0f k / %.0f k = %.1f×", ir.pure_prepare / 1000, ir.prepare / 1000,
    ir.pure_prepare / ir.prepare) or ""
  target("prepare() cheaper than pure Lua by", speedup, 15, "%.1f× (target ≥ %.0f×)" .. ir_prep,
    false)
  target("on_attempt + stats() every 100 vs client:send", cpu_ratio("send_hook", "send"), 1.02,
    "%.3f× (target ≤ %.2f×)", true)
  if ir.stats and ir.send then
    print(string.format("  counting the stats of a send (always on): %.0f instructions of %.0f k "
      .. "= %.2f %% (callgrind, inside lcms_note_attempt and lcms_note_call)", ir.stats,
      ir.send / 1000, 100 * ir.stats / ir.send))
  end
  if by.verify_webhook and by.verify_webhook.mcpu then
    print(string.format("commsease.verify_webhook: %.2f µs CPU per call (median), %.0f calls/s",
      by.verify_webhook.mcpu, by.verify_webhook.mrps))
  end
  if r.hwm1_kib and r.hwm2_kib then
    local d = r.hwm2_kib - r.hwm1_kib
    target(string.format("peak RSS growth %d → %d sends", RSS_N1, RSS_N2), d, 1024,
      "%d KiB (target ≤ %d KiB)", true)
    print(string.format("  VmHWM after %d sends: %d KiB; after %d: %d KiB (VmRSS %d → %d KiB, "
      .. "%d of %d sends fully succeeded)", RSS_N1, r.hwm1_kib, RSS_N2, r.hwm2_kib,
      r.rss1_kib or -1, r.rss2_kib or -1, r.ok or -1, RSS_N2))
  else
    print("peak RSS: not measured: " .. rss_out:sub(1, 300))
  end
  local fastest = 0
  for _, c in ipairs(cases) do
    if c.mrps and c.id ~= "prepare" and c.id ~= "pure_prepare" then
      fastest = math.max(fastest, c.mrps)
    end
  end
  if fixed_rps then
    print(string.format("server headroom: fastest client case %.0f req/s = %.0f%% of the fixed "
      .. "server's wrk ceiling (%.0f req/s)", fastest, 100 * fastest / fixed_rps, fixed_rps))
  end
  print(string.format("bench finished in %.0f s", socket.gettime() - t_start))
end)
stop_servers()
if not ok_main then fail(tostring(err_main)) end
