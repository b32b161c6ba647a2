-- spec/workers/fanout_worker.lua -- one process of a fleet for spec/35-rate_store_spec.lua.
--   lua fanout_worker.lua BUILD ENDPOINT RATE_STORE CALLS START_AT TAG [OPTS_JSON]
-- The appkey and secret come from the environment (CMS_APPKEY, CMS_SECRET), never the
-- command line.  It makes a client with rate_store (none when RATE_STORE is ""), waits
-- for the wall-clock time START_AT, fans out one message to CALLS x 100 recipients
-- named TAG_1.. (CALLS calls, fromAccid TAG), and prints one JSON line: tag, t0, t1
-- (wall seconds), calls, ok, failed, failures and client:stats().
local build, endpoint, store, calls, start_at, tag, extra = ...
package.cpath = build .. "/?.so;" .. package.cpath
local commsease = require("commsease")
local cjson = require("cjson")
local socket = require("socket")

local o = cjson.decode(extra or "{}")
local client = commsease.new{
  appkey = os.getenv("CMS_APPKEY"), secret = os.getenv("CMS_SECRET"), endpoint = endpoint,
  rate_store = store ~= "" and store or nil,
  rate_limit = o.rate_limit or 100, rate_limit_penalty = o.penalty or 10,
  rate_store_timeout = o.store_timeout,
}
local to = {}
for i = 1, tonumber(calls) * 100 do to[i] = tag .. "_" .. i end
local params = {roomid = 42, fromAccid = tag, toAccids = to,
                msgList = {{msgId = tag .. "-m", msgType = 0, attach = "hello " .. tag}}}
io.stdout:write(cjson.encode{ready = tag}, "\n")
io.stdout:flush()
while socket.gettime() < tonumber(start_at) do socket.sleep(0.001) end
local t0 = socket.gettime()
local report = assert(client:fanout(params, {concurrency = o.concurrency or 8}))
local t1 = socket.gettime()
local failures = {}
for i, f in ipairs(report.failures) do
  if i > 5 then break end
  failures[i] = {code = f.code, reason = f.reason, kind = f.kind}
end
io.stdout:write(cjson.encode{tag = tag, t0 = t0, t1 = t1, calls = report.calls, ok = report.ok,
                             failed = report.failed, failures = failures,
                             stats = client:stats()}, "\n")
client:close()
