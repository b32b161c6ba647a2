-- commsease.resty inside nginx: send and fanout over cosockets deliver what the blocking
-- client delivers, never stall the worker, and keep the exactly-once promise in a timer.
local commsease = require "commsease"
local helpers = require "helpers"
local nginx = require "helpers_nginx"
local cjson = require "cjson"

local function accids(n, prefix)
  local t = {}
  for i = 1, n do t[i] = (prefix or "pl") .. i end
  return t
end

-- counts, per recipient, how often each caller msgId arrived
local function inbox_counts(emu, accid)
  local counts = {}
  for _, m in ipairs(emu:inbox(accid)) do
    local caller = m.msgid_client:match("^(.*):%d+$") or m.msgid_client
    counts[caller] = (counts[caller] or 0) + 1
  end
  return counts
end

-- the Lua run inside nginx starts with these: a client for the emulator, and JSON-safe
-- copies of results (error values lose their metatable, functions go)
local PRELUDE = [[
  local a = ...
  local commsease = require "commsease"
  local resty = require "commsease.resty"
  local function plain(v, seen)
    if type(v) ~= "table" then
      if type(v) == "function" or type(v) == "userdata" then return nil end
      return v
    end
    local t = {}
    for k, x in pairs(v) do t[k] = plain(x) end
    return t
  end
  local function new(over)
    local o = {appkey = a.appkey, secret = a.secret, endpoint = a.base, rate_limit = 0}
    for k, v in pairs(over or {}) do o[k] = v end
    if o.endpoints then o.endpoint = nil end
    return resty.new(o)
  end
]]

describe("commsease.resty", function()
  local emu, ng
  setup(function()
    emu = helpers.start_emulator({"--rate-limit", "0"})
    ng = nginx.start{workers = 2, http = "  lua_shared_dict results 1m;\n"}
  end)
  teardown(function()
    if ng then ng:stop() end
    if emu then emu:stop() end
  end)
  before_each(function() emu:reset() end)

  local function run(code, arg, timeout)
    arg = arg or {}
    arg.appkey, arg.secret, arg.base = emu.appkey, emu.secret, emu.base
    return ng:run(PRELUDE .. code, arg, timeout)
  end

  local function batch(room, to, ids)
    local msgs = {}
    for i, id in ipairs(ids) do msgs[i] = commsease.text("hello " .. i, {msgId = id}) end
    return {roomid = room, fromAccid = "alice", toAccids = to, msgList = msgs}
  end

  it("sends what the blocking send sends, and answers what it answers", function()
    local out = run([[
      local res, err = new():send(a.params)
      return {res = plain(res), err = plain(err)}
    ]], {params = batch(11, {"bob", "carol"}, {"r1", "r2"})})
    assert.is_nil(out.err)
    local blocking = helpers.client_for(emu, {rate_limit = 0})
    local want = assert(blocking:send(batch(12, {"bob", "carol"}, {"b1", "b2"})))
    blocking:close()
    -- the same fields, the same shapes (ids, room and times differ)
    local keys = {}
    for k in pairs(want) do keys[#keys + 1] = k end
    for _, k in ipairs(keys) do assert.is_not_nil(out.res[k], k) end
    for k in pairs(out.res) do assert.is_not_nil(want[k], k) end
    assert.same({"r1", "r2"}, out.res.msgIds)
    assert.equal(200, out.res.code)
    local got, exp = out.res.success.r1, want.success.b1
    for k in pairs(exp) do assert.is_not_nil(got[k], k) end
    assert.equal("hello 1", got.attach)
    assert.equal(11, got.roomId)
    -- on the wire: the same headers and the same form, but for the ids and the room
    local reqs = emu:requests()
    assert.equal(2, #reqs)
    local r, b = reqs[1], reqs[2]
    local rn, bn = {}, {}
    for k in pairs(r.headers) do rn[#rn + 1] = k:lower() end
    for k in pairs(b.headers) do bn[#bn + 1] = k:lower() end
    table.sort(rn)
    table.sort(bn)
    for _, name in ipairs{"appkey", "checksum", "content-type", "curtime", "nonce", "requestid", "user-agent"} do
      local found = false
      for _, x in ipairs(rn) do if x == name then found = true end end
      assert.is_true(found, name)
    end
    assert.equal(out.res.request_id, r.headers.RequestId)
    local same_body = b.body:gsub("%%22b(%d)%%22", "%%22r%1%%22"):gsub("roomid=12", "roomid=11")
    assert.equal(same_body, r.body)
    assert.equal(4, #emu:inbox("bob"))
  end)

  it("returns the blocking send's errors: invalid params, refused connections, API codes", function()
    local s = require("socket").bind("127.0.0.1", 0)
    local _, dead = s:getsockname()
    s:close()
    local out = run([[
      local c = new()
      local _, invalid = c:send({roomid = 0, fromAccid = "a", toAccids = {"b"}, msgList = {commsease.text("x")}})
      local _, refused = new({endpoint = a.dead, retries = 0}):send(a.params)
      local _, muted = c:send(a.params2)
      local _, creds = new({endpoint = a.dead:gsub("//", "//user:hunter2@"), retries = 0}):send(a.params)
      return {invalid = plain(invalid), refused = plain(refused), muted = plain(muted),
              printed = tostring(muted), creds = plain(creds), creds_printed = tostring(creds)}
    ]], {dead = "http://127.0.0.1:" .. dead .. "/nimserver", params = batch(1, {"x"}, {"e1"}),
         params2 = batch(1, {"x"}, {"e2"})},
      nil)
    assert.equal("invalid", out.invalid.kind)
    assert.equal("roomid", out.invalid.field)
    local blocking = helpers.client_for(emu)
    local _, want = blocking:send({roomid = 0, fromAccid = "a", toAccids = {"b"}, msgList = {commsease.text("x")}})
    blocking:close()
    assert.equal(want.message, out.invalid.message)
    assert.equal("transport", out.refused.kind)
    assert.is_false(out.refused.sent)
    assert.is_true(out.refused.retryable)
    assert.is_string(out.refused.request_id)
    assert.equal("http://127.0.0.1:" .. dead .. "/nimserver", out.refused.endpoint)
    -- credentials in an endpoint never reach an error value
    assert.equal("http://127.0.0.1:" .. dead .. "/nimserver", out.creds.endpoint)
    assert.is_nil((out.creds_printed .. out.creds.message):find("hunter2", 1, true))
    -- e2 was not refused by a fault: a plain success; now with a fault
    emu:faults{{action = "code", code = 13004, desc = "sender muted"}}
    out = run([[
      local _, err = new():send(a.params)
      return {err = plain(err), printed = tostring(err)}
    ]], {params = batch(1, {"x"}, {"e3"})})
    assert.equal("api", out.err.kind)
    assert.equal(13004, out.err.code)
    assert.equal("commsease: api 13004: sender muted", out.printed)
    assert.equal(emu.base, out.err.endpoint)
  end)

  -- a transport error's code is libcurl's number for the failure (commsease.resty.http.CODES),
  -- the one the blocking client's error carries for the same failure
  it("gives transport errors the blocking client's code, in send and in fanout (and its stats)", function()
    local s = require("socket").bind("127.0.0.1", 0)
    local _, dead = s:getsockname()
    s:close()
    dead = "http://127.0.0.1:" .. dead .. "/nimserver"
    local function blocking_err(over, params)
      local c = helpers.client_for(emu, over)
      local _, err = c:send(params)
      c:close()
      return err
    end
    -- refused: nothing sent
    local out = run([[
      local _, err = new({endpoint = a.dead, retries = 0}):send(a.params)
      local c = new({endpoint = a.dead, retries = 0})
      local report = c:fanout(a.params2, {retries = 0})
      return {err = plain(err), printed = tostring(err), fan = plain(report.results[1].err),
              stats = c:stats().transport}
    ]], {dead = dead, params = batch(5, {"c1"}, {"k1"}), params2 = batch(5, {"c2"}, {"k2"})})
    local want = blocking_err({endpoint = dead, retries = 0}, batch(5, {"c1"}, {"k1"}))
    assert.equal(7, want.code)
    assert.equal(want.code, out.err.code)
    assert.is_false(out.err.sent)
    assert.matches("^commsease: transport 7: connect: ", out.printed)
    assert.equal(7, out.fan.code)
    assert.equal(1, out.stats.connect) -- the fan-out's plan counted its job
    -- closed after delivery, no answer: sent
    emu:faults{{action = "close", after_deliver = true}}
    want = blocking_err({retries = 0}, batch(5, {"c3"}, {"k3"}))
    emu:faults{{action = "close", after_deliver = true}}
    out = run([[
      local _, err = new({retries = 0}):send(a.params)
      return {err = plain(err)}
    ]], {params = batch(5, {"c4"}, {"k4"})})
    assert.equal(52, want.code)
    assert.equal(want.code, out.err.code)
    assert.is_true(out.err.sent)
    -- no answer in time: 28 in send and in fanout, counted as a timeout in the stats
    emu:faults{{action = "delay", ms = 1500, count = 3}}
    want = blocking_err({retries = 0, timeout = 0.3}, batch(5, {"c5"}, {"k5"}))
    out = run([[
      local _, err = new({retries = 0, timeout = 0.3}):send(a.params)
      local c = new({timeout = 0.3})
      local report = c:fanout(a.params2, {retries = 0})
      return {err = plain(err), fan = plain(report.results[1].err), stats = c:stats().transport}
    ]], {params = batch(5, {"c6"}, {"k6"}), params2 = batch(5, {"c7"}, {"k7"})})
    assert.equal(28, want.code)
    assert.equal(want.code, out.err.code)
    assert.equal(28, out.fan.code)
    assert.equal(1, out.stats.timeout)
    -- a transport of the user's: its code is kept; one that is not a positive integer is misuse
    out = run([[
      local c = new({retries = 0, transport = function() return nil, {sent = false, message = "offline", code = 7} end})
      local _, err = c:send(a.params)
      local report = c:fanout(a.params)
      local bad = new({transport = function() return nil, {sent = false, message = "x", code = "offline"} end})
      local ok, msg = pcall(bad.send, bad, a.params)
      return {code = err.code, fan = report.results[1].err.code, ok = ok, msg = msg}
    ]], {params = batch(5, {"c8"}, {"k8"})})
    assert.equal(7, out.code)
    assert.equal(7, out.fan)
    assert.is_false(out.ok)
    assert.matches("code must be a positive integer", out.msg)
  end)

  it("fails over like the blocking send: connect failures and 502 go to the next endpoint, re-signed", function()
    local s = require("socket").bind("127.0.0.1", 0)
    local _, dead = s:getsockname()
    s:close()
    local out = run([[
      local res, err = new({endpoints = {a.dead, a.base}, retries = 1}):send(a.params)
      return {res = plain(res), err = plain(err)}
    ]], {dead = "http://127.0.0.1:" .. dead .. "/nimserver", params = batch(2, {"f1"}, {"fo1"})})
    assert.is_nil(out.err)
    assert.is_table(out.res.success.fo1)
    emu:reset()
    emu:faults{{action = "status", status = 502}}
    out = run([[
      local res, err = new({retries = 1}):send(a.params)
      return {res = plain(res), err = plain(err)}
    ]], {params = batch(2, {"f2"}, {"fo2"})})
    assert.is_table(out.res.success.fo2)
    local reqs = emu:requests()
    assert.equal(2, #reqs)
    assert.equal(reqs[1].headers.RequestId, reqs[2].headers.RequestId)
    assert.equal(out.res.request_id, reqs[2].headers.RequestId)
    assert.are_not.equal(reqs[1].headers.Nonce, reqs[2].headers.Nonce)
    assert.equal(reqs[1].body, reqs[2].body)
    -- an ambiguous failure is not resent by send (sent = true comes back)
    emu:reset()
    emu:faults{{action = "close", after_deliver = true}}
    out = run([[
      local res, err = new({retries = 3}):send(a.params)
      return {res = plain(res), err = plain(err)}
    ]], {params = batch(2, {"f3"}, {"fo3"})})
    assert.equal("transport", out.err.kind)
    assert.is_true(out.err.sent)
    assert.equal(1, #emu:requests())
  end)

  -- the same four calls through the same faults, from a resty client in nginx and from a
  -- blocking client here: every attempt counted in client:stats() and shown to on_attempt
  -- alike (a 502 the last attempt gets, refused connections, a 416, a drop after delivery,
  -- a 502 then a refusal then a success); only the times may differ
  it("counts every attempt of send in client:stats() and on_attempt as the blocking send does", function()
    local s = require("socket").bind("127.0.0.1", 0)
    local _, port = s:getsockname()
    s:close()
    -- the dead endpoint carries credentials: they are shown nowhere
    local dead = "http://user:hunter2@127.0.0.1:" .. port .. "/nimserver"
    local dead_shown = "http://127.0.0.1:" .. port .. "/nimserver"
    local faults = {
      {action = "status", status = 502}, {action = "status", status = 502}, -- call 1 (and a refusal between)
      {action = "code", code = 416, desc = "rate limited"},                  -- call 2
      {action = "close", after_deliver = true},                              -- call 3
      {action = "status", status = 502},                                     -- call 4, then refused, then ok
    }
    local function calls(prefix)
      local t = {}
      for i = 1, 4 do t[i] = batch(21, {prefix .. i}, {prefix .. "m" .. i}) end
      return t
    end
    local opts = {endpoints = {emu.base, dead}, retries = 2, rate_limit_penalty = 0.2}
    emu:faults(faults)
    local out = run([[
      local seen = {}
      local o = {on_attempt = function(x) seen[#seen + 1] = x end}
      for k, v in pairs(a.opts) do o[k] = v end
      local c = new(o)
      local results = {}
      for i, p in ipairs(a.calls) do
        local res, err = c:send(p)
        results[i] = {ok = res ~= nil, rid = (res or err).request_id, err = plain(err),
                      printed = err and tostring(err)}
      end
      return {results = results, seen = plain(seen), stats = plain(c:stats())}
    ]], {opts = opts, calls = calls("rs")})
    assert.equal(8, #emu:requests() + 2) -- 6 reached the emulator, 2 were refused
    emu:reset()
    emu:faults(faults)
    local seen = {}
    local o = {on_attempt = function(x) seen[#seen + 1] = x end}
    for k, v in pairs(opts) do o[k] = v end
    local c = helpers.client_for(emu, o)
    local want = {}
    for i, p in ipairs(calls("bs")) do
      local res, err = c:send(p)
      want[i] = {ok = res ~= nil, rid = (res or err).request_id, err = err,
                 printed = err and tostring(err)}
    end
    local wstats = cjson.decode(cjson.encode(c:stats())) -- (as the resty figures travelled)
    c:close()
    -- the calls ended alike
    assert.same({false, false, false, true},
                {out.results[1].ok, out.results[2].ok, out.results[3].ok, out.results[4].ok})
    for i = 1, 4 do
      assert.equal(want[i].ok, out.results[i].ok, "call " .. i)
      if not want[i].ok then
        for _, k in ipairs{"kind", "sent", "retryable", "endpoint"} do
          assert.equal(want[i].err[k], out.results[i].err[k], "call " .. i .. " err." .. k)
        end
        -- (a transport failure is told by each HTTP client in its own words; libcurl's code
        -- for a drop after delivery on a kept-alive connection is 42, on a fresh one 52)
        if want[i].err.kind ~= "transport" then assert.equal(want[i].printed, out.results[i].printed) end
      end
    end
    assert.equal("http", out.results[1].err.kind)
    assert.equal(416, out.results[2].err.code)
    assert.is_true(out.results[3].err.sent)
    -- the same attempts, in the same order, with the same fields and values
    local function shape(list, results)
      local t = {}
      for n, x in ipairs(list) do
        local call
        for i, r in ipairs(results) do if r.rid == x.request_id then call = i end end
        assert.truthy(call, "attempt " .. n .. " belongs to a call")
        assert.is_true(x.ms > 0 and x.ms < 5000, "attempt " .. n .. " ms " .. tostring(x.ms))
        -- (numbers as integers: JSON brings them back as floats on 5.3+)
        local function str(v) return type(v) == "number" and ("%d"):format(v) or tostring(v) end
        t[n] = ("call %d attempt %s %s %s status=%s transport=%s code=%s resend=%s"):format(
          call, str(x.attempt), x.endpoint, x.path, str(x.status), str(x.transport),
          str(x.code), str(x.resend))
      end
      return t
    end
    local got, exp = shape(out.seen, out.results), shape(seen, want)
    assert.same(exp, got)
    assert.equal(8, #got)
    local b, BATCH = emu.base, "chatroom/batchSendMsgToSomeone.action"
    assert.same({
      "call 1 attempt 1 " .. b .. " " .. BATCH .. " status=502 transport=nil code=nil resend=false",
      "call 1 attempt 2 " .. dead_shown .. " " .. BATCH .. " status=nil transport=connect code=nil resend=false",
      "call 1 attempt 3 " .. b .. " " .. BATCH .. " status=502 transport=nil code=nil resend=false",
      "call 2 attempt 1 " .. b .. " " .. BATCH .. " status=200 transport=nil code=416 resend=false",
      "call 3 attempt 1 " .. b .. " " .. BATCH .. " status=nil transport=lost code=nil resend=false",
      "call 4 attempt 1 " .. b .. " " .. BATCH .. " status=502 transport=nil code=nil resend=false",
      "call 4 attempt 2 " .. dead_shown .. " " .. BATCH .. " status=nil transport=connect code=nil resend=false",
      "call 4 attempt 3 " .. b .. " " .. BATCH .. " status=200 transport=nil code=200 resend=false",
    }, got)
    -- the same figures in client:stats(); the latencies measured, their values the clock's
    local function untimed(st)
      local l = st.paths[BATCH].latency
      assert.is_true(l.count == 4 and l.sum > 0 and l.p50 > 0 and l.max >= l.p50 and l.max < 5,
                     "latency " .. cjson.encode(l))
      st.paths[BATCH].latency = {count = l.count}
      return st
    end
    local gs, ws = untimed(out.stats), untimed(wstats)
    assert.same(ws, gs)
    assert.same({calls = 4, attempts = 8, latency = {count = 4}}, gs.paths[BATCH])
    assert.same({["502"] = 3, ["200"] = 2}, gs.http)
    assert.same({["416"] = 1, ["200"] = 1}, gs.codes)
    assert.same({connect = 2, timeout = 0, lost = 1, too_big = 0, ["local"] = 0}, gs.transport)
    assert.equal(1, gs.pauses)
    assert.equal(0, gs.resends)
    assert.same({calls = 8, errors = 0}, gs.hooks)
    -- nothing secret in the figures, the hook's tables or the errors
    local text = cjson.encode(out)
    assert.is_nil(text:find(emu.secret, 1, true))
    assert.is_nil(text:find("hunter2", 1, true))
  end)

  it("answers a 431 on a failover as the blocking send: once more, a new RequestId, resendFlag = 1", function()
    emu:faults{{action = "status", status = 502, after_deliver = true}}
    local out = run([[
      local c = new({retries = 1})
      local res, err = c:send(a.p)
      local n = 0
      for _ in pairs(res and res.success or {}) do n = n + 1 end
      return {ok = res ~= nil, err = plain(err), n = n, rid = res and res.request_id,
              stats = plain(c:stats())}
    ]], {p = batch(31, {"q1"}, {"q31a", "q31b"})})
    assert.is_true(out.ok, out.err and out.err.message)
    assert.equal(2, out.n)
    local reqs = emu:requests()
    assert.equal(3, #reqs) -- delivered (502), the failover (431), the resend
    local last = helpers.json.decode(reqs[3].form.msgList)
    assert.equal(1, last[1].resendFlag)
    assert.equal("q31a", last[1].msgId)
    assert.equal(1, emu:stats().codes["431"])
    assert.equal(2, #emu:inbox("q1")) -- each message once
    assert.equal(1, out.stats.repeats)
    assert.equal(1, out.stats.resends)
  end)

  it("paces send through the client's budget", function()
    local out = run([[
      local c = new({rate_limit = 20})
      ngx.update_time()
      local t0 = ngx.now()
      for i = 1, 30 do assert(c:send({roomid = 1, fromAccid = "a", toAccids = {"b"},
                                      msgList = {commsease.text("x" .. i)}})) end
      ngx.update_time()
      return {paced = ngx.now() - t0}
    ]], {}, 30)
    -- a burst of 1, then 18.8 calls/s: 29 waits
    assert.is_true(out.paced >= 1.4, "30 calls at 20/s took " .. out.paced)
    assert.equal(30, emu:stats().requests)
  end)

  it("waits the penalty after a 416 before its next call", function()
    emu:faults{{action = "code", code = 416, desc = "rate limited"}}
    local out = run([[
      local p = new({rate_limit_penalty = 0.6})
      local _, e416 = p:send({roomid = 1, fromAccid = "a", toAccids = {"b"}, msgList = {commsease.text("y")}})
      ngx.update_time()
      local t0 = ngx.now()
      local res = p:send({roomid = 1, fromAccid = "a", toAccids = {"b"}, msgList = {commsease.text("z")}})
      ngx.update_time()
      return {code = e416 and e416.code, retryable = e416 and e416.retryable, after = ngx.now() - t0,
              ok = res ~= nil}
    ]])
    assert.equal(416, out.code)
    assert.is_true(out.retryable)
    assert.is_true(out.ok)
    assert.is_true(out.after >= 0.55, "the next call went after " .. out.after .. " s")
  end)

  it("fans out with the blocking fanout's report and inboxes", function()
    local msgs = {}
    for i = 1, 12 do msgs[i] = commsease.text("ann " .. i, {msgId = "fa" .. i}) end
    msgs[5].msgId = "bad-5"
    local params = {roomid = 4, fromAccid = "sys", toAccids = accids(250), msgList = msgs}
    local faults = {
      {action = "code", code = 13004, desc = "sender muted in room", match = {accid = "pl150"}, count = 2},
      {action = "fail_msg", match = {msgId = "bad-5"}, reason = "anti-spam hit", count = 2},
    }
    emu:faults(faults)
    local out = run([[
      local progress = 0
      local report = new({timeout = 2}):fanout(a.params, {on_progress = function(d) progress = d end})
      report.progress = progress
      return plain(report)
    ]], {params = params})
    local c = helpers.client_for(emu, {rate_limit = 0, timeout = 2})
    local got_inbox = emu:inbox("pl1")
    emu:reset()
    emu:faults(faults)
    local want = c:fanout(params)
    c:close()
    assert.equal(6, out.calls)
    assert.equal(6, out.progress)
    for _, k in ipairs{"calls", "ok", "failed", "messages", "recipients"} do
      assert.equal(want[k], out[k], k)
    end
    local function key(f)
      return ("%s|%s|%d|%d|%s"):format(f.msgId, f.accids[1], #f.accids, f.code, f.reason)
    end
    local a, b = {}, {}
    for _, f in ipairs(out.failures) do a[#a + 1] = key(f) end
    for _, f in ipairs(want.failures) do b[#b + 1] = key(f) end
    table.sort(a)
    table.sort(b)
    assert.same(b, a)
    assert.equal(14, #a)
    assert.equal(#emu:inbox("pl1"), #got_inbox)
  end)

  it("never blocks the worker: a fan-out at concurrency 8 has 8 calls in flight at once", function()
    emu:faults{{action = "delay", ms = 400, when = "before", count = 16}}
    local out = run([[
      ngx.update_time()
      local t0 = ngx.now()
      local to = {}
      for i = 1, 1600 do to[i] = "cc" .. i end
      local report = new({timeout = 5}):fanout({roomid = 6, fromAccid = "s", toAccids = to,
                                                msgList = {commsease.text("x", {msgId = "cc"})}},
                                               {concurrency = 8})
      ngx.update_time()
      return {ok = report.ok, took = ngx.now() - t0}
    ]])
    assert.equal(16, out.ok)
    -- 16 calls of 400 ms: 0.8 s at 8 at once (6.4 s one at a time)
    assert.is_true(out.took >= 0.75 and out.took < 2.0, "took " .. out.took)
  end)

  it("stops at the deadline without waiting for the jobs still out", function()
    emu:faults{{action = "delay", ms = 2000, when = "before", count = 4}}
    local t0 = helpers.now()
    local out = run([[
      ngx.update_time()
      local t0 = ngx.now()
      local to = {}
      for i = 1, 400 do to[i] = "dl" .. i end
      local report = new({timeout = 5}):fanout({roomid = 7, fromAccid = "s", toAccids = to,
                                                msgList = {commsease.text("x", {msgId = "dl"})}},
                                               {deadline = 0.5, concurrency = 4})
      ngx.update_time()
      return {took = ngx.now() - t0, failed = report.failed, reason = report.failures[1].reason,
              sent = report.results[1].err.sent}
    ]])
    assert.equal(4, out.failed)
    assert.equal("deadline", out.reason)
    assert.is_true(out.sent)   -- it was out when the deadline came
    assert.is_true(out.took < 1.2, "the fan-out returned after " .. out.took .. " s")
    -- and nothing of it is left running: the request itself is over as soon
    local whole = helpers.now() - t0
    assert.is_true(whole < 1.5, "the request ended after " .. whole .. " s")
  end)

  it("keeps an on_progress that yields (ngx.sleep) as progress_error and goes on", function()
    local out = run([[
      local to = {}
      for i = 1, 300 do to[i] = "py" .. i end
      local report = new():fanout({roomid = 7, fromAccid = "s", toAccids = to,
                                   msgList = {commsease.text("x", {msgId = "py"})}},
                                  {on_progress = function() ngx.sleep(0.01) end})
      return {ok = report.ok, perr = tostring(report.progress_error)}
    ]])
    assert.equal(3, out.ok)
    assert.matches("yield", out.perr)
  end)

  it("delivers every message exactly once to 1,000 recipients from ngx.timer.at, through the fault plan", function()
    emu:faults{
      {action = "close", after_deliver = true, count = 2},
      {action = "status", status = 502, count = 2},
      {action = "delay", ms = 1200, count = 2},           -- delivered, answered after the timeout
      {action = "code", code = 416, desc = "rate limited"},
      {action = "truncate"},
      {action = "close"},
    }
    local started = run([[
      local ok, err = ngx.timer.at(0, function(premature)
        if premature then return end
        local msgs = {}
        for i = 1, 25 do msgs[i] = commsease.text("announcement " .. i, {msgId = "ann" .. i}) end
        local to = {}
        for i = 1, 1000 do to[i] = "m" .. i end
        local progress = 0
        local ok, report = pcall(function()
          return new({timeout = 0.5, rate_limit_penalty = 0.3}):fanout(
            {roomid = 9001, fromAccid = "system", toAccids = to, msgList = msgs},
            {concurrency = 8, retries = 4, backoff = 0.05,
             on_progress = function(done, total) progress = done; assert(total == 30) end})
        end)
        local out = ok and {calls = report.calls, ok = report.ok, failed = report.failed,
                            failures = #report.failures, messages = report.messages,
                            recipients = report.recipients, progress = progress,
                            progress_error = report.progress_error and tostring(report.progress_error)}
                    or {error = tostring(report)}
        ngx.shared.results:set("exactly-once", require("cjson").encode(out))
      end)
      return {ok = ok ~= nil, err = err}
    ]])
    assert.is_true(started.ok, started.err)
    local out = helpers.wait_until(function()
      return run([[ local v = ngx.shared.results:get("exactly-once"); return v and require("cjson").decode(v) ]])
    end, 60)
    assert.is_table(out, "the fan-out did not finish")
    assert.is_nil(out.error)
    assert.equal(30, out.calls)
    assert.equal(30, out.ok)
    assert.equal(0, out.failed)
    assert.equal(0, out.failures)
    assert.equal(25, out.messages)
    assert.equal(1000, out.recipients)
    assert.equal(30, out.progress)
    assert.is_nil(out.progress_error)
    local stats = emu:stats()
    assert.is_true(stats.requests > 30, "the faults forced resends")
    assert.equal(1, stats.codes["416"])
    for i = 1, 1000 do
      local counts = inbox_counts(emu, "m" .. i)
      for k = 1, 25 do
        if counts["ann" .. k] ~= 1 then
          error(("m%d got ann%d %s times"):format(i, k, tostring(counts["ann" .. k])))
        end
      end
    end
  end)

  it("refuses misuse: options cosockets cannot honour, a bad transport, a transport that lies", function()
    local out = run([[
      local r = {}
      r[1] = select(2, pcall(resty.new, {appkey = "k", secret = "s", ca_file = "/x"}))
      r[2] = select(2, pcall(resty.new, {appkey = "k", secret = "s", proxy = "http://p:1"}))
      r[3] = select(2, pcall(resty.new, {appkey = "k", secret = "s", transport = 5}))
      r[4] = select(2, pcall(resty.new, {appkey = "k", secret = "s", bogus = 1}))
      local liar = new({transport = function() return "200", "x" end})
      r[5] = select(2, pcall(liar.send, liar, {roomid = 1, fromAccid = "a", toAccids = {"b"},
                                                msgList = {commsease.text("x")}}))
      local raiser = new({transport = function() error("boom") end})
      local _, err = raiser:send({roomid = 1, fromAccid = "a", toAccids = {"b"}, msgList = {commsease.text("x")}})
      r[6] = err.kind .. " " .. tostring(err.sent) .. " " .. err.message
      return r
    ]])
    assert.matches("lua_ssl_trusted_certificate", out[1])
    assert.matches("proxy", out[2])
    assert.matches("transport", out[3])
    assert.matches("unknown option 'bogus'", out[4])
    assert.matches("integer status", out[5])
    assert.matches("^transport true transport raised: .*boom", out[6])
  end)

  it("takes a transport of the user's, with the same outcome handling", function()
    local out = run([[
      local calls = 0
      local http = require "commsease.resty.http"
      local c = new({transport = function(job)
        calls = calls + 1
        return http.request(job)
      end})
      local report = c:fanout({roomid = 3, fromAccid = "s", toAccids = {"t1", "t2"},
                               msgList = {commsease.text("x", {msgId = "tr"})}})
      local res = c:send({roomid = 3, fromAccid = "s", toAccids = {"t3"}, msgList = {commsease.text("y")}})
      return {calls = calls, ok = report.ok, sent = res ~= nil}
    ]])
    assert.same({calls = 2, ok = 1, sent = true}, out)
    assert.equal(1, #emu:inbox("t1"))
    -- a transport that answers without ever yielding (here: always offline)
    out = run([[
      local c = new({transport = function() return nil, {sent = false, message = "offline"} end})
      local report = c:fanout({roomid = 3, fromAccid = "s", toAccids = {"t4"},
                               msgList = {commsease.text("x", {msgId = "off"})}}, {retries = 2, backoff = 0.01})
      local f = report.failures[1]
      return {failed = report.failed, kind = f.kind, reason = f.reason, sent = report.results[1].err.sent}
    ]])
    assert.same({failed = 1, kind = "transport", reason = "offline", sent = false}, out)
  end)
end)

describe("commsease.resty in one worker", function()
  local emu, ng
  setup(function()
    emu = helpers.start_emulator({"--rate-limit", "0"})
    ng = nginx.start{workers = 1}
  end)
  teardown(function()
    if ng then ng:stop() end
    if emu then emu:stop() end
  end)

  -- starts code in the worker (a send held 2 s by the emulator), then times /ping
  local function ping_while(code)
    emu:reset()
    emu:faults{{action = "delay", ms = 2000}}
    local arg = helpers.urlencode(cjson.encode{appkey = emu.appkey, secret = emu.secret, base = emu.base})
    local held = ng:send_raw("/_run?a=" .. arg, PRELUDE .. code)
    helpers.wait_until(function() return emu:stats().requests >= 1 end, 5) -- the send is out
    local t0 = helpers.now()
    local st, body = helpers.http("GET", ng.root .. "/ping", nil, nil, 10)
    local took = helpers.now() - t0
    assert.equal(200, st)
    assert.equal("pong\n", body)
    local hst, hbody = helpers.read_response(held, 10)
    held:close()
    return took, hst, hbody
  end

  it("answers another request within 50 ms while a send waits 2 s on the service", function()
    local took, st, body = ping_while([[
      ngx.update_time()
      local t0 = ngx.now()
      local res, err = new({timeout = 5}):send({roomid = 1, fromAccid = "a", toAccids = {"b"},
                                                msgList = {commsease.text("held")}})
      ngx.update_time()
      return {ok = res ~= nil, err = err and tostring(err), took = ngx.now() - t0}
    ]])
    assert.is_true(took < 0.05, "/ping took " .. took .. " s while the send waited")
    assert.equal(200, st)
    local out = cjson.decode(body)
    assert.is_true(out.ok, out.err)
    assert.is_true(out.took >= 1.9, "the send was held " .. out.took .. " s")
  end)

  it("(the same measurement catches a blocking send: it stalls the worker)", function()
    local took = ping_while([[
      local c = commsease.new({appkey = a.appkey, secret = a.secret, endpoint = a.base, rate_limit = 0})
      return {ok = c:send({roomid = 1, fromAccid = "a", toAccids = {"b"}, msgList = {commsease.text("held")}}) ~= nil}
    ]])
    assert.is_true(took > 1.0, "/ping took " .. took .. " s behind a blocking send")
  end)
end)
