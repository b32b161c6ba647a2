--[[ commsease.resty -- the commsease client for OpenResty: the same calls, over cosockets.

syntax: client = require("commsease.resty").new(opts)
syntax: res, err = client:send(params)
syntax: report, err = client:fanout(params [, opts])

opts are commsease.new's (appkey, secret, endpoint(s), timeout, connect_timeout,
retries, rate_limit, rate_limit_penalty, rate_store, ...) and, for the HTTP side:
  transport         function(job) -> status, body | nil, { sent =, message = [, code =] };
                    replaces
                    the built-in cosocket client (commsease.resty.http)
  ssl_verify        default true: peers are checked against lua_ssl_trusted_certificate
  server_name       the TLS name (SNI, and the name the certificate must carry); default
                    each endpoint's host
  pool_size         kept-alive connections per endpoint and worker (default 32)
  keepalive_timeout seconds an idle connection stays in the pool (default 60)
ca_file and proxy are refused: nginx trusts lua_ssl_trusted_certificate only, and
cosockets do not speak to proxies (give a transport that does).

Nothing here blocks the worker: waits are ngx.sleep (or a semaphore), every request a
cosocket. It runs wherever cosockets do: content/access/rewrite phases and
ngx.timer.at callbacks (where a fan-out that takes seconds belongs).
]]
local commsease = require "commsease"
local http = require "commsease.resty.http"
local semaphore = require "ngx.semaphore"

local ngx = ngx
local sleep = ngx.sleep
local spawn, kill = ngx.thread.spawn, ngx.thread.kill
local type, pairs, error, pcall, tostring, setmetatable, getmetatable =
  type, pairs, error, pcall, tostring, setmetatable, getmetatable
local floor = math.floor

local _M = {_VERSION = commsease._VERSION}

-- resty's own options: name -> checker (returns the value, or raises)
local function positive(name, lo, hi)
  return function(v)
    if type(v) ~= "number" or not (v >= lo and v <= hi) then
      error(("commsease.resty.new: option '%s' must be a number from %g to %g"):format(name, lo, hi), 3)
    end
    return v
  end
end
local OWN = {
  transport = function(v)
    if type(v) ~= "function" then error("commsease.resty.new: option 'transport' must be a function", 3) end
    return v
  end,
  ssl_verify = function(v)
    if type(v) ~= "boolean" then error("commsease.resty.new: option 'ssl_verify' must be a boolean", 3) end
    return v
  end,
  server_name = function(v)
    if type(v) ~= "string" or v == "" or v:find("[%c%s]") then
      error("commsease.resty.new: option 'server_name' must be a host name", 3)
    end
    return v
  end,
  pool_size = positive("pool_size", 1, 10000),
  keepalive_timeout = positive("keepalive_timeout", 0.001, 3600),
}

local Client = {}
Client.__index = Client

function _M.new(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'commsease.resty.new' (table expected, got " .. type(opts) .. ")", 2)
  end
  local copts, own = {}, {}
  for k, v in pairs(opts) do
    if OWN[k] then own[k] = OWN[k](v) else copts[k] = v end
  end
  if copts.ca_file ~= nil then
    error("commsease.resty.new: option 'ca_file' is not used by cosockets: "
          .. "set lua_ssl_trusted_certificate in nginx.conf", 2)
  end
  if copts.proxy ~= nil then
    error("commsease.resty.new: option 'proxy': cosockets do not use proxies "
          .. "(give a transport that does)", 2)
  end
  local c = commsease.new(copts) -- raises on anything malformed, as commsease.new does
  local self = setmetatable({c = c}, Client)
  local hopts = {connect_timeout = copts.connect_timeout or 5, ssl_verify = own.ssl_verify,
                 server_name = own.server_name, pool_size = own.pool_size,
                 keepalive_timeout = own.keepalive_timeout}
  self.transport = own.transport or function(job) return http.request(job, hopts) end
  return self
end

-- one attempt through the transport; a transport that raises is a failure that may
-- have sent (sent = true), one that answers with the wrong types is misuse
local function attempt(self, job)
  local ok, st, body = pcall(self.transport, job)
  if not ok then return nil, {sent = true, message = "transport raised: " .. tostring(st)} end
  if st ~= nil then
    if type(st) ~= "number" or st ~= floor(st) or st < 100 or st > 999 or type(body) ~= "string" then
      error("commsease.resty: the transport must return an integer status and a string body, "
            .. "or nil and { sent =, message = }", 0)
    end
    return st, body
  end
  if type(body) ~= "table" then
    error("commsease.resty: a failed transport must return nil and { sent = true|false, message = ... }", 0)
  end
  local code = body.code
  if code ~= nil and (type(code) ~= "number" or code ~= floor(code) or code < 1 or code > 2 ^ 31) then
    error("commsease.resty: a failed transport's code must be a positive integer (libcurl's numbering)", 0)
  end
  if body.sent ~= false then body.sent = true end -- unknown counts as sent
  body.message = tostring(body.message or "transport failure")
  return nil, body
end

-- the call is the C client's send_plan: its rules are the blocking send's (the next
-- endpoint only when nothing left or on a 502, each attempt re-signed with the same
-- RequestId and body, the 416 penalty), and it counts every attempt in client:stats()
-- and shows it to on_attempt as the blocking send does; here only the I/O and the waits
function Client:send(params)
  if getmetatable(self) ~= Client then error("bad argument #1 to 'send' (a commsease.resty client expected)", 2) end
  local sp, err = self.c:send_plan(params)
  if not sp then return nil, err end
  while true do
    local job, wait, serr = sp:next()
    if job then
      local res, rerr = sp:done(attempt(self, job))
      if res or rerr then return res, rerr end
    elseif wait then
      sleep(wait) -- the client's budget (its rate_store when given)
    else
      return nil, serr
    end
  end
end

-- the fan-out: plan:next() hands out jobs, each sent in its own light thread; the loop
-- sleeps on a semaphore that every finished job posts, so it wakes at the plan's wait or
-- as soon as an outcome comes back, whichever is first
function Client:fanout(params, opts)
  if getmetatable(self) ~= Client then error("bad argument #1 to 'fanout' (a commsease.resty client expected)", 2) end
  local plan, err = self.c:plan(params, opts)
  if not plan then return nil, err end
  local sema = semaphore.new(0)
  local threads, settled, inflight = {}, {}, 0
  local fatal

  local function run(job)
    local ok, e = pcall(function()
      local st, body = attempt(self, job)
      plan:done(job.id, st, body)
    end)
    -- (a transport that never yields ends here before spawn returns)
    threads[job.id], settled[job.id] = nil, true
    inflight = inflight - 1
    if not ok and not fatal then fatal = e end
    sema:post(1)
  end

  while true do
    if fatal then break end
    local job, wait = plan:next()
    if job then
      inflight = inflight + 1
      local th, serr = spawn(run, job)
      if not th then
        inflight = inflight - 1
        fatal = "commsease.resty: cannot start a light thread: " .. tostring(serr)
        break
      end
      if settled[job.id] then settled[job.id] = nil else threads[job.id] = th end
    elseif wait then
      if wait < 0.001 then wait = 0.001 end
      if inflight > 0 then sema:wait(wait) else sleep(wait) end
    else
      break
    end
  end
  -- jobs the deadline settled may still be out: their answers no longer count
  for _, th in pairs(threads) do kill(th) end
  if fatal then error(fatal, 0) end
  return plan:report()
end

function Client:prepare(params) return self.c:prepare(params) end
function Client:plan(params, opts) return self.c:plan(params, opts) end
function Client:stats() return self.c:stats() end
function Client:close() return self.c:close() end
function Client:is_closed() return self.c:is_closed() end
Client.__tostring = function(self) return "commsease.resty.client (" .. tostring(self.c):match("%((.-)%)") .. ")" end

return _M
