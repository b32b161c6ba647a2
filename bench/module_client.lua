-- module_client.lua -- the commsease module under load, one case per process.
--   lua5.4 bench/module_client.lua --url BASE --mode send|send_all|prepare|rss
--          [--n N] [--concurrency C] [--batch B] [--appkey K] [--secret S] [--n1 N] [--n2 N]
--          [--params light|realistic] [--results full|outcomes]   (modes also: parse, body)
-- Prints RESULT lines (see common.lua); send_all without c.send_all prints a
-- SKIP line.  rss: N1 sends, VmHWM; on to N2 sends in all, VmHWM again.
package.path = "bench/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local common = require "common"
local commsease = require "commsease"

local o = common.args(arg, {mode = "send", n = 1000, concurrency = 8, appkey = "benchkey",
  secret = "benchsecret", n1 = 10000, n2 = 100000, params = "light", results = "full"})
assert(o.url, "--url is required")

local hook_calls = 0
local function new_client()
  local opts = {appkey = o.appkey, secret = o.secret, endpoint = o.url, timeout = 5, retries = 1,
    rate_limit = 0}
  -- send_hook: what a caller's metrics cost: a hook that counts, and a scrape every 1000
  -- sends (at the service's 100 calls/s, 10 s apart: Prometheus scrapes every 15 s)
  if o.mode == "send_hook" then opts.on_attempt = function() hook_calls = hook_calls + 1 end end
  local ok, c = pcall(commsease.new, opts)
  if not ok and tostring(c):find("unknown option 'rate_limit'", 1, true) then
    opts.rate_limit = nil
    c = commsease.new(opts)
  elseif not ok then
    error(c)
  end
  return c
end

local c = new_client()
local p = common.params(o.params)
local N = common.N_MESSAGES

local function full_success(res)
  if not res or type(res.success) ~= "table" then return false end
  local k = 0
  for _ in pairs(res.success) do k = k + 1 end
  return k == N
end

if o.mode == "parse" then -- commsease.parse over the server's answer, no I/O in the loop
  local http, ltn12 = require "socket.http", require "ltn12"
  local chunks = {}
  http.request{url = o.url .. "/chatroom/batchSendMsgToSomeone.action", method = "POST",
    source = ltn12.source.string("x"), headers = {["Content-Length"] = "1"},
    sink = ltn12.sink.table(chunks)}
  local answer = table.concat(chunks)
  assert(full_success(commsease.parse(200, answer)), "the answer does not parse")
  local ok = 0
  local w0, c0 = common.wall(), common.cpu()
  for _ = 1, o.n do
    if full_success(commsease.parse(200, answer)) then ok = ok + 1 end
  end
  common.result("lua_parse", o.n, ok, common.wall() - w0, common.cpu() - c0,
    " answer_bytes=" .. #answer)
  c:close()
  os.exit(0)
end

if o.mode == "body" then -- the form body once (run.lua compares it with the C client's)
  io.write(assert(c:prepare(p)).body)
  c:close()
  os.exit(0)
end

-- one warm-up call outside the clock: the connection, the first allocations
assert(c:send(p))

if o.mode == "send" then
  local ok = 0
  local w0, c0 = common.wall(), common.cpu()
  for _ = 1, o.n do
    local res = c:send(p)
    if full_success(res) then ok = ok + 1 end
  end
  common.result("lua_send", o.n, ok, common.wall() - w0, common.cpu() - c0)
elseif o.mode == "send_hook" then
  local ok, scraped = 0, 0
  local w0, c0 = common.wall(), common.cpu()
  for i = 1, o.n do
    local res = c:send(p)
    if full_success(res) then ok = ok + 1 end
    if i % 1000 == 0 then scraped = scraped + #commsease.prometheus(c:stats()) end
  end
  local wall, cpu = common.wall() - w0, common.cpu() - c0
  assert(hook_calls == o.n + 1, "on_attempt ran " .. hook_calls .. " times")
  assert(o.n < 1000 or scraped > 0)
  common.result("lua_send_hook", o.n, ok, wall, cpu)
elseif o.mode == "send_all" then
  local name = "lua_send_all_c" .. o.concurrency
  if c.send_all == nil then
    print("SKIP name=" .. name .. " reason=client.send_all does not exist in this build")
    os.exit(0)
  end
  -- --batch B: the N calls as N/B send_all calls of B (default: one of N)
  local batch = math.min(o.batch or o.n, o.n)
  if batch < o.n then name = name .. "_batch" .. batch end
  if o.results ~= "full" then name = name .. "_" .. o.results end
  local list = {}
  for i = 1, batch do list[i] = p end
  local ok, sent = 0, 0
  local w0, c0 = common.wall(), common.cpu()
  while sent < o.n do
    local k = math.min(batch, o.n - sent)
    if k < batch then list = {table.unpack(list, 1, k)} end
    local out = c:send_all(list, {concurrency = o.concurrency,
      results = o.results ~= "full" and o.results or nil})
    for i = 1, k do
      local r = out[i]
      if r and full_success(r.res) then ok = ok + 1 end
    end
    sent = sent + k
  end
  common.result(name, o.n, ok, common.wall() - w0, common.cpu() - c0)
elseif o.mode == "prepare" then
  local ok = 0
  local w0, c0 = common.wall(), common.cpu()
  for _ = 1, o.n do
    local req = c:prepare(p)
    if req and req.body then ok = ok + 1 end
  end
  common.result("lua_prepare", o.n, ok, common.wall() - w0, common.cpu() - c0)
elseif o.mode == "verify_webhook" then
  -- a webhook request as the service posts it (an event of one text message),
  -- signed by hand with md5 and the module's own SHA1 (commsease.checksum)
  local body = '{"eventType":"4","attach":"hello","ext":"","fromAccount":"bench","fromAvator":"",'
    .. '"fromClientType":"REST","fromExt":"","fromNick":"bench","msgTimestamp":"1700000000000",'
    .. '"msgType":"TEXT","msgidClient":"m1","resendFlag":"0","roomId":"765788"}'
  local md5 = assert(io.popen("printf '%s' '" .. body .. "' | md5sum")):read("l"):match("^(%x+)")
  local curtime = string.format("%d", math.floor(common.wall() * 1000))
  local headers = {["content-type"] = "application/json;charset=utf-8", appkey = o.appkey,
    curtime = curtime, md5 = md5, checksum = commsease.checksum(o.secret, md5, curtime),
    host = "127.0.0.1", ["content-length"] = tostring(#body), ["user-agent"] = "bench"}
  local args = {secret = o.secret, headers = headers, body = body}
  assert(commsease.verify_webhook(args))
  local ok = 0
  local w0, c0 = common.wall(), common.cpu()
  for _ = 1, o.n do
    if commsease.verify_webhook(args) then ok = ok + 1 end
  end
  common.result("lua_verify_webhook", o.n, ok, common.wall() - w0, common.cpu() - c0)
elseif o.mode == "rss" then
  local ok, done = 0, 0
  local function run_to(target)
    while done < target do
      done = done + 1
      local res = c:send(p)
      if full_success(res) then ok = ok + 1 end
    end
  end
  run_to(o.n1)
  local hwm1, rss1 = common.vm("VmHWM"), common.vm("VmRSS")
  run_to(o.n2)
  local hwm2, rss2 = common.vm("VmHWM"), common.vm("VmRSS")
  print(string.format("RSS n1=%d n2=%d ok=%d hwm1_kib=%d hwm2_kib=%d rss1_kib=%d rss2_kib=%d "
    .. "lua_kib=%d", o.n1, o.n2, ok, hwm1, hwm2, rss1, rss2, math.floor(collectgarbage("count"))))
else
  error("unknown --mode " .. tostring(o.mode))
end
c:close()
