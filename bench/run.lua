-- run.lua -- `make bench`: every case against one loopback server, in one run,
-- every figure measured in this run.  Run from the repository root:
--     lua5.4 bench/run.lua
-- Assumes `make all` built build/commsease.so and build/commsease-emulator;
-- compiles only the bench's own C programs (make -C bench).
-- Env: BENCH_N (requests per case, default 5000), BENCH_REPS (default 9),
--      BENCH_RSS_N1 / BENCH_RSS_N2 (default 10000 / 100000), BENCH_WRK_SECONDS (3),
--      BENCH_IR (default 1: also count instructions per request under callgrind),
--      BENCH_IR_N (default 1000: the longer of the two callgrind runs; the shorter is a fifth),
--      BENCH_BATCHES (default "light,realistic": the params every case runs on),
--      BENCH_NGINX (default 1: the prepare() cases inside nginx, when nginx and
--      build-jit/commsease.so are there).
-- A quick end-to-end check of the script itself (the figures mean nothing):
--      BENCH_N=100 BENCH_REPS=1 BENCH_RSS_N1=50 BENCH_RSS_N2=100 BENCH_WRK_SECONDS=1 \
--      BENCH_IR_N=100 lua5.4 bench/run.lua
local socket = require "socket"
package.path = "bench/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local common = require "common"
local median = common.median

local LUA = arg[-1] or "lua5.4"
local N = math.tointeger(tonumber(os.getenv("BENCH_N") or "")) or 5000
local REPS = common.REPS
local IR = os.getenv("BENCH_IR") ~= "0"
local RSS_N1 = math.tointeger(tonumber(os.getenv("BENCH_RSS_N1") or "")) or 10000
local RSS_N2 = math.tointeger(tonumber(os.getenv("BENCH_RSS_N2") or "")) or 100000
local WRK_S = math.tointeger(tonumber(os.getenv("BENCH_WRK_SECONDS") or "")) or 3
local IR_N = math.tointeger(tonumber(os.getenv("BENCH_IR_N") or "")) or 1000
local NGINX = os.getenv("BENCH_NGINX") ~= "0"
local BATCHES = {}
for b in (os.getenv("BENCH_BATCHES") or "light,realistic"):gmatch("[^,%s]+") do
  BATCHES[#BATCHES + 1] = b
end
local N_PURE = math.max(200, N // 5)   -- pure-Lua sends are slow: fewer of them
local N_PREP = 4 * N                   -- prepare() is cheap: more of them
local APPKEY, SECRET = "benchkey", "benchsecret"
local CLIENT_TIMEOUT = 150             -- seconds, per client process (coreutils timeout)
assert(N >= 100 and N <= 1000000, "BENCH_N must be 100..1000000")
assert(RSS_N1 >= 1 and RSS_N2 > RSS_N1 and RSS_N2 <= 2000000, "bad BENCH_RSS_N1/N2")
assert(WRK_S >= 1 and WRK_S <= 30, "BENCH_WRK_SECONDS must be 1..30")
assert(IR_N >= 50 and IR_N <= 100000, "BENCH_IR_N must be 50..100000")
for _, b in ipairs(BATCHES) do
  assert(b == "light" or b == "realistic", "BENCH_BATCHES: light and/or realistic")
end

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
local commsease = require "commsease"
local function prepared(url, batch)
  local opts = {appkey = APPKEY, secret = SECRET, endpoint = url, timeout = 5, retries = 0,
    rate_limit = 0}
  local ok, c = pcall(commsease.new, opts)
  if not ok then
    opts.rate_limit = nil
    c = commsease.new(opts)
  end
  return c, assert(c:prepare(common.params(batch)))
end

-- --- nginx (OpenResty's Lua) for the prepare() cases inside it: one process
-- (master_process off), a free port, everything in a temporary prefix ---
local ROOT = (sh("pwd"):gsub("%s+$", ""))
local function nginx_missing()
  if not NGINX then return "BENCH_NGINX=0" end
  if not sh("command -v nginx"):match("nginx") then return "nginx not installed" end
  for _, f in ipairs{"/usr/lib/nginx/modules/ngx_http_lua_module.so", "build-jit/commsease.so"} do
    local h = io.open(f)
    if not h then return f .. " not found (make bench builds build-jit/)" end
    h:close()
  end
end
local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end
-- starts nginx (under `wrap`, e.g. valgrind) -> base URL, pid, prefix
local function start_nginx(wrap)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir .. "/logs"))
  local port = free_port()
  local conf = io.open(dir .. "/nginx.conf", "w")
  conf:write(string.format([[
daemon off;
master_process off;
worker_processes 1;
error_log %s/logs/error.log warn;
pid %s/logs/nginx.pid;
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %s/tmp; proxy_temp_path %s/tmp; fastcgi_temp_path %s/tmp;
  uwsgi_temp_path %s/tmp; scgi_temp_path %s/tmp;
  lua_package_path "%s/bench/?.lua;/usr/share/lua/5.1/?.lua;;";
  lua_package_cpath "%s/build-jit/?.so;/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;;";
  server {
    listen 127.0.0.1:%d;
    location = /ping { return 200 "ok"; }
    location = /prepare { content_by_lua_block { require("nginx_prepare").run() } }
  }
}
]], dir, dir, dir, dir, dir, dir, dir, ROOT, ROOT, port))
  conf:close()
  local p = io.popen(string.format("%s nginx -p %s -c %s/nginx.conf -e %s/logs/error.log "
    .. ">%s/logs/stdout 2>&1 </dev/null & echo $!", wrap or "timeout 900", dir, dir, dir, dir))
  local pid = math.tointeger(tonumber(p:read("l")))
  p:close()
  local url = "http://127.0.0.1:" .. port
  local t0 = socket.gettime()
  while socket.gettime() - t0 < 60 do
    local out = sh("curl -s -m 2 " .. url .. "/ping")
    if out == "ok" then return url, pid, dir end
    socket.sleep(0.1)
  end
  os.execute("kill " .. pid .. " 2>/dev/null")
  fail("nginx did not start: " .. sh("cat " .. dir .. "/logs/error.log " .. dir .. "/logs/stdout"))
end
local function stop_nginx(pid, dir)
  os.execute("kill -QUIT " .. pid .. " 2>/dev/null")
  local t0 = socket.gettime()
  while socket.gettime() - t0 < 120 and os.execute("kill -0 " .. pid .. " 2>/dev/null") do
    socket.sleep(0.1)
  end
  os.execute("kill -9 " .. pid .. " 2>/dev/null")
  os.execute("rm -rf " .. dir)
end

local t_start = socket.gettime()
local load = (io.open("/proc/loadavg") or io.stdin):read("l") or "?"
print(string.format("commsease bench: %d cores, load %s; N=%d (pure-Lua sends %d, prepare %d), "
  .. "%d repetitions, median reported; batches: %s", tonumber((sh("nproc"):match("%d+"))) or 0,
  load:match("^(%S+ %S+ %S+)") or load, N, N_PURE, N_PREP, REPS, table.concat(BATCHES, ", ")))

local ok_main, err_main = pcall(function()
  -- one fixed-answer server per batch (its answer echoes that batch's text and ext)
  local urls = {}
  for _, b in ipairs(BATCHES) do
    urls[b] = start_server("fixed server (" .. b .. ")", "timeout 900 bench/build/fixed_server "
      .. "--port 0 --threads 2 --max-seconds 900 --params " .. b)
  end
  local url = urls[BATCHES[1]]
  local api = url .. "/chatroom/batchSendMsgToSomeone.action"

  -- the same body from the module and from the C client, byte for byte
  for _, b in ipairs(BATCHES) do
    local _, req = prepared(urls[b], b)
    local cbody = sh("bench/build/c_client --url " .. sh_quote(urls[b]) .. " --mode body --params " .. b)
    if cbody ~= req.body then fail("the C client's " .. b .. " body differs from the module's") end
    local ans = sh("curl -s -X POST -d x " .. sh_quote(urls[b] .. "/chatroom/batchSendMsgToSomeone.action"))
    print(string.format("batch %-9s: %d-byte form body (module = C client, byte for byte), "
      .. "%d-byte answer", b, #req.body, #ans))
  end

  -- the servers' ceilings with wrk
  local _, req = prepared(url, BATCHES[1])
  local fixed_rps, fixed_bad, fixed_errs = wrk(api, wrk_script(req))
  local emu_line
  local emu = io.open("build/commsease-emulator")
  if emu then
    emu:close()
    local eurl = start_server("emulator", string.format(
      "timeout 300 build/commsease-emulator --port 0 --rate-limit 0 --inbox-max 100"
      .. " --appkey %s --secret %s", APPKEY, SECRET))
    local ec, ereq = prepared(eurl, BATCHES[1])
    local res, err = ec:send(common.params(BATCHES[1]))
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
    print(string.format("fixed server (wrk -t2 -c32 -d%ds, same POST, %s): %9.0f req/s%s%s", WRK_S,
      BATCHES[1], fixed_rps, fixed_bad > 0 and (", " .. fixed_bad .. " non-2xx") or "",
      fixed_errs and (", " .. fixed_errs) or ""))
  else
    print("fixed server: " .. tostring(fixed_bad))
  end
  print(emu_line)

  local no_nginx = nginx_missing()
  local nginx_url, nginx_pid, nginx_dir
  if not no_nginx then nginx_url, nginx_pid, nginx_dir = start_nginx() end

  -- The cases: each runs once per batch ({url} and {params} are filled in);
  -- `base` names the case its ratio is taken against, `ir` asks for an
  -- instruction count (callgrind), `ir_count(n)` counts it another way.
  local cred = string.format(" --appkey %s --secret %s", APPKEY, SECRET)
  local C = "bench/build/c_client --url {url} --params {params}" .. cred
  local L = LUA .. " bench/module_client.lua --url {url} --params {params}" .. cred
  local P = LUA .. " bench/pure_lua_client.lua --url {url} --params {params}" .. cred
  local NG = nginx_url and ("curl -s -m " .. CLIENT_TIMEOUT .. " '" .. nginx_url
    .. "/prepare?params={params}&mode=")
  local cases = {
    {id = "c_easy", label = "plain C, libcurl easy (1 conn)", cmd = C .. " --mode easy --n " .. N,
     ir = true},
    {id = "c_multi8", label = "plain C, libcurl multi c=8",
     cmd = C .. " --mode multi --concurrency 8 --n " .. N, ir = true},
    {id = "c_multi32", label = "plain C, libcurl multi c=32",
     cmd = C .. " --mode multi --concurrency 32 --n " .. N},
    {id = "send", label = "module client:send (1 conn)", base = "c_easy",
     cmd = L .. " --mode send --n " .. N, ir = true},
    {id = "send_all8", label = "module send_all c=8", base = "c_multi8",
     cmd = L .. " --mode send_all --concurrency 8 --n " .. N, ir = true},
    {id = "send_all32", label = "module send_all c=32", base = "c_multi32",
     cmd = L .. " --mode send_all --concurrency 32 --n " .. N},
    {id = "send_all8_outcomes", label = "module send_all c=8, results = \"outcomes\"",
     base = "c_multi8", cmd = L .. " --mode send_all --concurrency 8 --results outcomes --n " .. N,
     ir = true},
    {id = "c_parse", label = "plain C, cJSON parse + walk of the answer (no I/O)",
     cmd = C .. " --mode parse --n " .. N_PREP, ir = true},
    {id = "parse", label = "module commsease.parse (no I/O)", base = "c_parse",
     cmd = L .. " --mode parse --n " .. N_PREP, ir = true},
    {id = "pure_http", label = "pure Lua, socket.http (new conn each)", base = "c_easy",
     cmd = P .. " --mode http --n " .. N_PURE},
    {id = "pure_raw", label = "pure Lua, raw socket keep-alive", base = "c_easy",
     cmd = P .. " --mode raw --n " .. N_PURE},
    {id = "prepare", label = "module prepare() (no I/O)", base = "pure_prepare",
     cmd = L .. " --mode prepare --n " .. N_PREP, ir = true},
    {id = "pure_prepare", label = "pure Lua prepare equivalent (no I/O)",
     cmd = P .. " --mode prepare --n " .. N, ir = true, ir_n = math.max(50, IR_N // 5)},
    {id = "send_hook", label = "client:send + on_attempt + a scrape every 1000",
     base = "send", cmd = L .. " --mode send_hook --n " .. N},
    {id = "verify_webhook", label = "commsease.verify_webhook (no I/O)",
     cmd = L .. " --mode verify_webhook --n " .. N_PREP},
    {id = "nginx_prepare", label = "module prepare() inside nginx (LuaJIT)",
     base = "nginx_pure_prepare", skip = no_nginx,
     cmd = NG and (NG .. "module&n=" .. N_PREP .. "'"), ir = true, nginx_mode = "module"},
    {id = "nginx_pure_prepare", label = "OpenResty prepare: encode_args+sha1_bin+cjson",
     skip = no_nginx, cmd = NG and (NG .. "pure&n=" .. N .. "'"), ir = true,
     nginx_mode = "pure"},
  }
  -- one row per case and batch, in batch-major order; ids become id@batch
  local rows, by = {}, {}
  for _, b in ipairs(BATCHES) do
    for _, c in ipairs(cases) do
      local r = {}
      for k, v in pairs(c) do r[k] = v end
      r.id, r.case, r.batch = c.id .. "@" .. b, c.id, b
      r.base = c.base and (c.base .. "@" .. b)
      r.cmd = c.cmd and c.cmd:gsub("{url}", sh_quote(urls[b])):gsub("{params}", b)
      r.rps, r.cpu = {}, {}
      rows[#rows + 1] = r
      by[r.id] = r
    end
  end
  -- the repetitions are interleaved, so drifting machine load hits every case alike
  for rep = 1, REPS do
    for _, c in ipairs(rows) do
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
  for _, c in ipairs(rows) do
    c.mrps, c.mcpu = median(c.rps), median(c.cpu)
  end
  if nginx_pid then stop_nginx(nginx_pid, nginx_dir) end

  -- instructions per request (callgrind counts instructions, whatever else the
  -- machine does): the difference between a run of IR_N and one of IR_N/5
  -- requests, divided by the difference, so start-up and warm-up cancel out
  local have_valgrind = IR and sh("command -v valgrind"):match("valgrind")
  local function callgrind_total(f)
    local h = io.open(f)
    local text = h and h:read("a") or ""
    if h then h:close() end
    os.remove(f)
    return tonumber(text:match("\nsummary:%s*(%d+)") or text:match("\ntotals:%s*(%d+)"))
  end
  local function count(cmd, n)
    local f = os.tmpname()
    sh("timeout 900 valgrind --tool=callgrind --callgrind-out-file=" .. f .. " "
      .. cmd:gsub("%-%-n %d+", "--n " .. n) .. " 2>/dev/null")
    return callgrind_total(f)
  end
  -- nginx: the whole server under callgrind for one request of n prepares
  local function count_nginx(c, n)
    local f = os.tmpname()
    local nurl, pid, dir = start_nginx("timeout 900 valgrind --tool=callgrind "
      .. "--callgrind-out-file=" .. f)
    sh(string.format("curl -s -m 900 '%s/prepare?params=%s&mode=%s&n=%d'", nurl, c.batch,
      c.nginx_mode, n))
    stop_nginx(pid, dir)
    return callgrind_total(f)
  end
  if have_valgrind then
    for _, c in ipairs(rows) do
      local n2 = c.ir_n or IR_N -- `ir_n`: fewer for a case that costs millions a call
      local n1 = n2 // 5
      if c.ir and not c.skip and not c.error then
        local a, b
        if c.nginx_mode then a, b = count_nginx(c, n1), count_nginx(c, n2)
        else a, b = count(c.cmd, n1), count(c.cmd, n2) end
        if a and b and b > a then c.ir_per = (b - a) / (n2 - n1) end
      end
    end
    -- the instructions a send spends counting its stats (always on): callgrind
    -- collecting only inside lcms_note_attempt and lcms_note_call
    for _, c in ipairs(rows) do
      if c.case == "send" and not c.skip and not c.error then
        local function counted(n)
          local f = os.tmpname()
          sh("timeout 900 valgrind --tool=callgrind --toggle-collect=lcms_note_attempt "
            .. "--toggle-collect=lcms_note_call --callgrind-out-file=" .. f .. " "
            .. c.cmd:gsub("%-%-n %d+", "--n " .. n) .. " 2>/dev/null")
          return callgrind_total(f)
        end
        local n1, n2 = IR_N // 5, IR_N
        local a, b = counted(n1), counted(n2)
        if a and b and b >= a then c.ir_stats = (b - a) / (n2 - n1) end
      end
    end
    print(string.format("  instruction counts done (%.0f s)", socket.gettime() - t_start))
  end

  -- memory: 10,000 then 100,000 sends in one process
  local rss_out = sh("timeout " .. CLIENT_TIMEOUT .. " "
    .. L:gsub("{url}", sh_quote(url)):gsub("{params}", BATCHES[1]) .. " --mode rss --n1 " .. RSS_N1
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
  print("| batch | case | n | req/s | CPU µs/req (min–max) | instructions/req | req/s vs base "
    .. "| CPU vs base | base |")
  print("|---|---|---:|---:|---:|---:|---:|---:|---|")
  for _, c in ipairs(rows) do
    if c.skip or c.error then
      print(string.format("| %s | %s | - | - | - | - | - | - | %s: %s |", c.batch, c.label,
        c.skip and "skipped" or "ERROR", c.skip or c.error))
    else
      local b = c.base and by[c.base]
      local rr = b and b.mrps and c.mrps / b.mrps
      local rc = b and b.mcpu and c.mcpu / b.mcpu
      print(string.format("| %s | %s | %d | %.0f | %.1f%s | %s | %s | %s | %s |", c.batch, c.label,
        c.n, c.mrps, c.mcpu, spread(c.cpu), c.ir_per and string.format("%.0f k", c.ir_per / 1000)
        or "-", f(rr, "%.2f×"), f(rc, "%.2f×"), b and b.case or "(baseline)"))
    end
  end
  print()

  -- targets
  local function target(name, got, limit, fmt, better_low)
    if got == nil then
      print(string.format("%-62s  n/a    (not measured)", name))
      return
    end
    local pass = better_low and got <= limit or (not better_low and got >= limit)
    print(string.format("%-62s  %-4s   " .. fmt, name, pass and "PASS" or "MISS", got, limit))
  end
  -- the median of the ratios of each repetition's pair (the two runs were
  -- seconds apart, so a load that drifts over the minute cancels out)
  local function cpu_ratio(a, b)
    local rs = {}
    if not (by[a] and by[b]) then return nil end
    for rep = 1, REPS do
      local x, y = by[a].by_rep and by[a].by_rep[rep], by[b].by_rep and by[b].by_rep[rep]
      if x and y then rs[#rs + 1] = x / y end
    end
    return median(rs)
  end
  -- instructions beside: a / b, or b / a for a "cheaper by" target
  local function ir_note(a, b, cheaper)
    local x, y = by[a] and by[a].ir_per, by[b] and by[b].ir_per
    if not (x and y) then return "" end
    if cheaper then x, y = y, x end
    return string.format("   instructions %.0f k / %.0f k = %.2f×", x / 1000, y / 1000, x / y)
  end
  print("targets (median over the repetitions of each pair's client CPU ratio; instructions per")
  print("request from callgrind beside, the figure that does not move with the machine's load):")
  for _, b in ipairs(BATCHES) do
    local function id(x) return x .. "@" .. b end
    target("[" .. b .. "] client:send CPU vs plain-C sequential", cpu_ratio(id("send"), id("c_easy")),
      1.15, "%.2f× (target ≤ %.2f×)" .. ir_note(id("send"), id("c_easy")), true)
    target("[" .. b .. "] send_all c=8 CPU vs plain-C multi c=8",
      cpu_ratio(id("send_all8"), id("c_multi8")), 1.2,
      "%.2f× (target ≤ %.2f×)" .. ir_note(id("send_all8"), id("c_multi8")), true)
    target("[" .. b .. "] send_all c=8 outcomes CPU vs plain-C multi c=8",
      cpu_ratio(id("send_all8_outcomes"), id("c_multi8")), 1.2,
      "%.2f× (target ≤ %.2f×)" .. ir_note(id("send_all8_outcomes"), id("c_multi8")), true)
    target("[" .. b .. "] send_all c=32 CPU vs plain-C multi c=32",
      cpu_ratio(id("send_all32"), id("c_multi32")), 1.2, "%.2f× (target ≤ %.2f×)", true)
    target("[" .. b .. "] prepare() cheaper than pure Lua 5.4 by",
      cpu_ratio(id("pure_prepare"), id("prepare")), 15,
      "%.1f× (target ≥ %.0f×)" .. ir_note(id("prepare"), id("pure_prepare"), true), false)
    target("[" .. b .. "] on_attempt + a scrape every 1000 vs client:send",
      cpu_ratio(id("send_hook"), id("send")), 1.02, "%.3f× (target ≤ %.2f×)", true)
    local sc = by[id("send")]
    if sc and sc.ir_stats and sc.ir_per then
      print(string.format("  [%s] counting a send's stats (always on): %.0f instructions of %.0f k "
        .. "= %.2f %% (callgrind, inside lcms_note_attempt and lcms_note_call)", b, sc.ir_stats,
        sc.ir_per / 1000, 100 * sc.ir_stats / sc.ir_per))
    end
    local vw = by[id("verify_webhook")]
    if vw and vw.mcpu then
      print(string.format("  [%s] commsease.verify_webhook: %.2f µs CPU per call (median), %.0f "
        .. "calls/s", b, vw.mcpu, vw.mrps))
    end
    target("[" .. b .. "] prepare() in nginx cheaper than OpenResty Lua by",
      cpu_ratio(id("nginx_pure_prepare"), id("nginx_prepare")), 2,
      "%.1f× (target ≥ %.0f×)" .. ir_note(id("nginx_prepare"), id("nginx_pure_prepare"), true),
      false)
  end
  if r.hwm1_kib and r.hwm2_kib then
    local d = r.hwm2_kib - r.hwm1_kib
    target(string.format("peak RSS growth %d → %d sends (%s)", RSS_N1, RSS_N2, BATCHES[1]), d, 1024,
      "%d KiB (target ≤ %d KiB)", true)
    print(string.format("  VmHWM after %d sends: %d KiB; after %d: %d KiB (VmRSS %d → %d KiB, "
      .. "%d of %d sends fully succeeded)", RSS_N1, r.hwm1_kib, RSS_N2, r.hwm2_kib,
      r.rss1_kib or -1, r.rss2_kib or -1, r.ok or -1, RSS_N2))
  else
    print("peak RSS: not measured: " .. rss_out:sub(1, 300))
  end
  local fastest = 0
  for _, c in ipairs(rows) do
    if c.mrps and not c.case:find("prepare") and not c.case:find("parse") then
      fastest = math.max(fastest, c.mrps)
    end
  end
  if fixed_rps then
    print(string.format("server headroom: fastest client case %.0f req/s = %.0f%% of the fixed "
      .. "server's wrk ceiling (%.0f req/s)", fastest, 100 * fastest / fixed_rps, fixed_rps))
  end
  -- the shared rate stores: a draw's cost per store, 4 processes on one shm: budget
  os.execute(LUA .. " bench/rate_store.lua")
  print(string.format("bench finished in %.0f s", socket.gettime() - t_start))
end)
stop_servers()
if not ok_main then fail(tostring(err_main)) end

-- the OpenResty rows (nginx with commsease.resty against the blocking send): bench/resty.lua
if os.execute(LUA .. " bench/resty.lua") ~= true then fail("bench/resty.lua failed") end
