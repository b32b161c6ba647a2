-- examples/openresty/handlers.lua -- the handlers behind examples/openresty/nginx.conf.
--
--   POST /notify         {"roomid":..,"fromAccid":..,"toAccids":[..],"msgList":[..]}
--                        -> 200 {"request_id":..,"messages":[{"msgId":..,"ok":true,"time":..} |
--                                                           {"msgId":..,"ok":false,"reason":..}]}
--                           400 (bad data, nothing sent) / 502 (the call failed) {"error":..,"kind":..,"sent":..}
--   POST /announce       the same shape, any number of members and messages
--                        -> 202 {"id":..} at once (400 on bad data); the fan-out runs in ngx.timer.at
--   GET  /announce/ID    -> 200 {"state":"running","done":..,"total":..} then
--                           {"state":"done","calls":..,"ok":..,"failed":..,"failures":[..]}; 404 if unknown
--   POST /webhook        the service's copy of a message sent with route = 1 (CommsEase posts it
--                        here when the application's webhook URL points at it)
--                        -> 200 {"ok":true} once commsease.verify_webhook accepted it;
--                           403 {"error":..,"field":..} for a forged, changed or replayed request
--   GET  /webhook/ID     -> the verified event of msgidClient ID (kept an hour); 404 if unknown
--
-- Messages are plain tables, as commsease's builders make them:
--   {"msgType":0,"attach":"hello"}, {"msgType":100,"attach":{"kind":"reward"}}, ...
local cjson = require "cjson.safe"
local commsease = require "commsease"
local resty = require "commsease.resty"

local _M = {}

local client -- one per worker, made on first use
local function get_client()
  if client then return client end
  local opts = {
    appkey = os.getenv("COMMSEASE_APPKEY"),
    secret = os.getenv("COMMSEASE_SECRET"),
    endpoint = os.getenv("COMMSEASE_ENDPOINT"),
    rate_store = os.getenv("COMMSEASE_RATE_STORE"),
    timeout = 5,
  }
  client = resty.new(opts)
  return client
end

local function answer(status, tbl)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(tbl))
  return ngx.exit(status)
end

local function error_body(err)
  -- err prints without the secret; its fields say whether a retry may help
  return {error = tostring(err), kind = err.kind, code = err.code, field = err.field,
          sent = err.sent, retryable = err.retryable, request_id = err.request_id}
end

local function read_params()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    local file = ngx.req.get_body_file() -- a body larger than client_body_buffer_size
    if file then
      local f = io.open(file, "rb")
      if f then body = f:read("*a"); f:close() end
    end
  end
  local params = body and cjson.decode(body)
  if type(params) ~= "table" then
    return answer(400, {error = "the body must be a JSON object of send params", kind = "invalid"})
  end
  return params
end

function _M.notify()
  local params = read_params()
  local res, err = get_client():send(params)
  if not res then return answer(err.kind == "invalid" and 400 or 502, error_body(err)) end
  local out = {}
  for i, id in ipairs(res.msgIds) do
    local ok = res.success[id]
    out[i] = ok and {msgId = id, ok = true, time = ok.time} or {msgId = id, ok = false, reason = res.fail[id]}
  end
  return answer(200, {request_id = res.request_id, messages = out})
end

local counter = 0
local function new_id()
  counter = counter + 1
  return string.format("%x-%x-%x", ngx.time(), ngx.worker.pid(), counter)
end

local TTL = 3600 -- seconds a report stays readable

local function run_fanout(premature, id, params)
  local dict = ngx.shared.announcements
  if premature then
    dict:set(id, cjson.encode{state = "aborted", reason = "nginx is shutting down"}, TTL)
    return
  end
  local ok, report, err = pcall(get_client().fanout, get_client(), params, {
    concurrency = 8,
    -- runs inside the fan-out's bookkeeping: it must not yield (no cosockets, no
    -- ngx.sleep); a shared dict write is fine
    on_progress = function(done, total)
      dict:set(id, cjson.encode{state = "running", done = done, total = total}, TTL)
    end,
  })
  if not ok then
    ngx.log(ngx.ERR, "announce ", id, " raised: ", report)
    dict:set(id, cjson.encode{state = "failed", error = tostring(report)}, TTL)
  elseif not report then
    dict:set(id, cjson.encode{state = "failed", error = error_body(err)}, TTL)
  else
    local failures = {}
    for i, f in ipairs(report.failures) do
      if i > 100 then break end
      failures[i] = {msgId = f.msgId, recipients = #f.accids, first = f.accids[1], code = f.code,
                     reason = f.reason, kind = f.kind}
    end
    dict:set(id, cjson.encode{state = "done", calls = report.calls, ok = report.ok,
                              failed = report.failed, messages = report.messages,
                              recipients = report.recipients, failures = failures,
                              more_failures = #report.failures - #failures}, TTL)
  end
end

function _M.announce()
  local params = read_params()
  -- bad data is refused now, before the 202 (chunk is pure: no I/O)
  local calls, err = commsease.chunk(params)
  if not calls then return answer(400, error_body(err)) end
  local id = new_id()
  local dict = ngx.shared.announcements
  dict:set(id, cjson.encode{state = "running", done = 0, total = #calls}, TTL)
  local ok, terr = ngx.timer.at(0, run_fanout, id, params)
  if not ok then
    dict:delete(id)
    return answer(503, {error = "cannot start the fan-out: " .. tostring(terr)})
  end
  return answer(202, {id = id, calls = #calls})
end

function _M.status(id)
  local v = ngx.shared.announcements:get(id)
  if not v then return answer(404, {error = "no such announcement: " .. id}) end
  ngx.status = 200
  ngx.header["Content-Type"] = "application/json"
  ngx.say(v)
end

-- POST /webhook: the service posts a copy of every message sent with route = 1 here.
-- Nothing in it is believed before commsease.verify_webhook has checked it (the md5
-- of the body, the CheckSum made with the AppSecret, a CurTime within 5 minutes);
-- a forged or replayed request gets 403. It is answered at once: the service waits
-- 5 s at most. The verified events are kept a while in a shared dict, readable at
-- GET /webhook/<msgidClient>.
function _M.webhook()
  ngx.req.read_body()
  local body = ngx.req.get_body_data() -- a webhook event is small: in the body buffer
  if not body then return answer(400, {error = "no body (or larger than client_body_buffer_size)"}) end
  local event, err = commsease.verify_webhook{secret = os.getenv("COMMSEASE_SECRET"),
                                              headers = ngx.req.get_headers(), body = body}
  if not event then
    ngx.log(ngx.WARN, "webhook refused: ", tostring(err)) -- names the check, never the secret
    return answer(403, {error = err.message, field = err.field})
  end
  if event.msgidClient then ngx.shared.webhooks:set(event.msgidClient, body, TTL) end
  return answer(200, {ok = true})
end

function _M.webhook_event(id)
  local v = ngx.shared.webhooks:get(id)
  if not v then return answer(404, {error = "no such event: " .. id}) end
  ngx.status = 200
  ngx.header["Content-Type"] = "application/json"
  ngx.say(v)
end

return _M
