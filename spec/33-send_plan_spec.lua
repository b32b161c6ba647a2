-- client:send_plan: client:send without I/O, driven here by a plain Lua loop over
-- LuaSocket as commsease.resty drives it over cosockets: send's rules (the next
-- endpoint only when nothing left or on a 502, one RequestId and body, each attempt
-- signed afresh, the 416 penalty), every attempt counted as send counts it, misuse raised.
local commsease = require "commsease"
local helpers = require "helpers"

local BATCH = "chatroom/batchSendMsgToSomeone.action"
local SECRET = "sendplan-Secret-5e0a"

local function params(id)
  return {roomid = 7, fromAccid = "a", toAccids = {"b"}, msgList = {commsease.text("x", {msgId = id})}}
end

local function over_http(job) return helpers.http(job.method, job.url, job.headers, job.body, job.timeout) end

-- drives sp to its end; answer(job, n) -> status, body | nil, failure; returns res, err, jobs
local function drive(sp, answer)
  local jobs = {}
  while true do
    local job, wait, err = sp:next()
    if job then
      jobs[#jobs + 1] = job
      local res, derr = sp:done(answer(job, #jobs))
      if res or derr then return res, derr, jobs end
    elseif wait then
      helpers.sleep(wait)
    else
      return nil, err, jobs
    end
  end
end

describe("client:send_plan", function()
  local emu
  setup(function() emu = helpers.start_emulator({"--rate-limit", "0", "--secret", SECRET}) end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)

  it("hands out send's request and gives back send's result", function()
    local c = helpers.client_for(emu, {timeout = 3})
    local sp = assert(c:send_plan(params("p1")))
    assert.matches("^commsease%.send_plan %(.-%): 0 attempt%(s%)$", tostring(sp))
    local job = assert(sp:next())
    assert.equal(0, job.id)
    assert.equal("POST", job.method)
    assert.equal(emu.url, job.url)
    assert.equal(3, job.timeout)
    for _, k in ipairs{"AppKey", "Nonce", "CurTime", "CheckSum", "RequestId", "Content-Type"} do
      assert.is_string(job.headers[k], k)
    end
    local res = assert(sp:done(over_http(job)))
    assert.equal(200, res.code)
    assert.same({"p1"}, res.msgIds)
    assert.equal(job.headers.RequestId, res.request_id)
    assert.truthy(res.success.p1)
    -- settled: nothing more to send
    assert.equal(0, select("#", sp:next()))
    assert.matches("settled", tostring(sp))
    -- the blocking send of the same params gives the same fields
    local want = assert(c:send(params("p2")))
    for k in pairs(want) do assert.is_not_nil(res[k], k) end
    for k in pairs(res) do assert.is_not_nil(want[k], k) end
    c:close()
  end)

  it("moves to the next endpoint only when nothing left or on a 502, re-signed, same RequestId and body", function()
    local c = helpers.client_for(emu, {endpoints = {emu.base, "http://127.0.0.1:9/nimserver"}, retries = 3})
    local script = {
      {nil, {sent = false, message = "connection refused", code = 7}},
      {502, "<html>bad gateway</html>"},
    }
    local res, err, jobs = drive(assert(c:send_plan(params("f1"))), function(job, n)
      if script[n] then return script[n][1], script[n][2] end
      return over_http(job)
    end)
    assert.is_nil(err)
    assert.truthy(res.success.f1)
    assert.equal(3, #jobs)
    assert.equal(emu.url, jobs[1].url)
    assert.equal("http://127.0.0.1:9/nimserver/chatroom/batchSendMsgToSomeone.action", jobs[2].url)
    assert.equal(emu.url, jobs[3].url)
    for n = 2, 3 do
      assert.equal(jobs[1].headers.RequestId, jobs[n].headers.RequestId)
      assert.equal(jobs[1].body, jobs[n].body)
      assert.are_not.equal(jobs[1].headers.Nonce, jobs[n].headers.Nonce)
    end
    -- a failure after the request left is the answer (never resent), with its code
    res, err, jobs = drive(assert(c:send_plan(params("f2"))), function()
      return nil, {sent = true, message = "reset by peer", code = 56}
    end)
    assert.is_nil(res)
    assert.equal(1, #jobs)
    assert.same({"transport", 56, true, true, emu.base, jobs[1].headers.RequestId},
                {err.kind, err.code, err.sent, err.retryable, err.endpoint, err.request_id})
    assert.equal("commsease: transport 56: reset by peer", tostring(err))
    -- unknown counts as sent
    res, err = drive(assert(c:send_plan(params("f3"))), function() return nil, {message = "?"} end)
    assert.is_nil(res)
    assert.is_true(err.sent)
    -- retries spent: the last 502 is the answer
    res, err, jobs = drive(assert(c:send_plan(params("f4"))), function() return 502, "" end)
    assert.is_nil(res)
    assert.equal(4, #jobs)
    assert.same({"http", 502, true}, {err.kind, err.code, err.retryable})
    c:close()
  end)

  it("counts every attempt as the blocking send counts it, and shows it to on_attempt", function()
    local function client(seen)
      return helpers.client_for(emu, {endpoints = {emu.base, "http://127.0.0.1:9/nimserver"}, retries = 2,
                                      rate_limit_penalty = 0.05,
                                      on_attempt = function(a) seen[#seen + 1] = a end})
    end
    -- the blocking send: 502, refused, ok; then a 416
    emu:faults({{action = "status", status = 502}})
    local bseen = {}
    local b = client(bseen)
    assert(b:send(params("c1")))
    emu:faults({{action = "code", code = 416, desc = "slow"}})
    assert.is_nil((b:send(params("c2"))))
    -- the plan, driven over LuaSocket (a refused connection said so: sent = false)
    emu:reset()
    emu:faults({{action = "status", status = 502}})
    local pseen = {}
    local p = client(pseen)
    local function answer(job)
      local st, body = over_http(job)
      if st then return st, body end
      return nil, {sent = false, message = tostring(body), code = 7}
    end
    assert(drive(assert(p:send_plan(params("c1"))), answer))
    emu:faults({{action = "code", code = 416, desc = "slow"}})
    local _, err = drive(assert(p:send_plan(params("c2"))), answer)
    assert.equal(416, err.code)
    local bs, ps = b:stats(), p:stats()
    for _, s in ipairs{bs, ps} do
      local l = s.paths[BATCH].latency
      assert.is_true(l.count == 2 and l.sum > 0 and l.max < 5)
      s.paths[BATCH].latency = nil
    end
    assert.same(bs, ps)
    assert.same({calls = 2, attempts = 4}, ps.paths[BATCH])
    assert.same({["502"] = 1, ["200"] = 2}, ps.http)
    assert.same({["200"] = 1, ["416"] = 1}, ps.codes)
    assert.equal(1, ps.transport.connect)
    assert.equal(1, ps.pauses)
    assert.equal(4, #pseen)
    for n, a in ipairs(pseen) do
      local w = bseen[n]
      for _, k in ipairs{"endpoint", "path", "status", "transport", "code", "attempt", "resend"} do
        assert.equal(w[k], a[k], "attempt " .. n .. " " .. k)
      end
      assert.is_true(a.ms > 0 and a.ms < 5000)
    end
    assert.same({1, 2, 3, 1}, {pseen[1].attempt, pseen[2].attempt, pseen[3].attempt, pseen[4].attempt})
    -- after the 416 the client's budget waits the penalty: the next plan is told to wait
    local sp = assert(p:send_plan(params("c3")))
    local job, wait = sp:next()
    assert.is_nil(job)
    assert.is_true(wait > 0 and wait <= 0.05, "wait " .. tostring(wait))
    b:close()
    p:close()
  end)

  it("counts an answer over 1 MiB as too_big, a timeout by its code, and nothing for invalid params", function()
    local c = helpers.client_for(emu, {retries = 0})
    local _, err = drive(assert(c:send_plan(params("t1"))), function() return 200, ("x"):rep(1024 * 1024 + 1) end)
    assert.same({"response", true, true}, {err.kind, err.sent, err.retryable})
    _, err = drive(assert(c:send_plan(params("t2"))), function()
      return nil, {sent = true, message = "timeout", code = 28}
    end)
    assert.equal(28, err.code)
    local sp, ierr = c:send_plan({roomid = 0, fromAccid = "a", toAccids = {"b"}, msgList = {commsease.text("x")}})
    assert.is_nil(sp)
    assert.same({"invalid", "roomid"}, {ierr.kind, ierr.field})
    local s = c:stats()
    assert.same({connect = 0, timeout = 1, lost = 0, too_big = 1, ["local"] = 0}, s.transport)
    assert.same({}, s.http)
    assert.same({calls = 2, attempts = 2}, {calls = s.paths[BATCH].calls, attempts = s.paths[BATCH].attempts})
    c:close()
  end)

  it("raises on misuse: out of turn, bad outcomes, a closed client, from on_attempt", function()
    local inner
    local c
    c = helpers.client_for(emu, {on_attempt = function()
      inner = {pcall(function() return c:send_plan(params("m0")) end)}
      error(inner[2], 0)
    end})
    local sp = assert(c:send_plan(params("m1")))
    assert.has_error(function() sp:done(200, "{}") end,
                     "commsease: send_plan:done() without an attempt out (send_plan:next() hands one out)")
    local job = assert(sp:next())
    assert.has_error(function() sp:next() end)
    for _, bad in ipairs{{99, ""}, {200.5, ""}, {"200", ""}, {200, nil}, {nil, "x"},
                         {nil, {sent = "no"}}, {nil, {message = 5}}, {nil, {code = 0}},
                         {nil, {code = "timeout"}}} do
      local ok, msg = pcall(sp.done, sp, bad[1], bad[2])
      assert.is_false(ok)
      assert.matches("bad argument #%d to 'send_plan:done'", msg)
    end
    -- the misuse took nothing: the attempt is still out
    local res = assert(sp:done(over_http(job)))
    assert.truthy(res.success.m1)
    assert.is_false(inner[1])
    assert.matches("on_attempt", inner[2])
    assert.same({calls = 1, errors = 1}, c:stats().hooks)
    local none, perr = c:send_plan(5) -- bad data is a value, as for send
    assert.is_nil(none)
    assert.equal("invalid", perr.kind)
    sp = assert(c:send_plan(params("m2")))
    c:close()
    assert.has_error(function() sp:next() end, "commsease: this send plan's client is closed")
    assert.has_error(function() c:send_plan(params("m3")) end, "commsease: this client is closed")
    assert.has_error(function() getmetatable(sp).__index = {} end)
  end)

  it("shows nothing secret, and is collected with its client", function()
    local c = helpers.client_for(emu)
    local sp = assert(c:send_plan(params("s1")))
    local job = assert(sp:next())
    local text = tostring(sp) .. job.body .. job.url
    for k, v in pairs(job.headers) do text = text .. k .. v end
    assert.is_nil(text:find(SECRET, 1, true))
    local weak = setmetatable({}, {__mode = "v"})
    weak[1], weak[2] = sp, c
    sp, c, job = nil, nil, nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak[1])
    assert.is_nil(weak[2])
  end)
end)

describe("client:send_plan's 431 path", function()
  local emu
  before_each(function()
    emu = helpers.start_emulator({"--rate-limit", "0", "--request-id-window", "60"})
  end)
  after_each(function() emu:stop() end)

  local function batch()
    return {roomid = 5, fromAccid = "a", toAccids = {"b", "c"},
            msgList = {commsease.text("one"), commsease.text("two", {msgId = "t2"})}}
  end

  local function counters(st)
    local p = st.paths[BATCH] or {}
    return {calls = p.calls, attempts = p.attempts, resends = st.resends, repeats = st.repeats,
            c200 = st.codes["200"], c431 = st.codes["431"], h502 = st.http["502"]}
  end

  it("a 502 after delivery, the failover answered 431: once more with a new RequestId, as send", function()
    local c = helpers.client_for(emu, {retries = 1})
    emu:faults({{action = "status", status = 502, after_deliver = true}})
    local res, err, jobs = drive(assert(c:send_plan(batch())), over_http)
    assert.is_nil(err)
    assert.equal(3, #jobs)
    assert.equal(jobs[1].headers.RequestId, jobs[2].headers.RequestId) -- the failover: 431
    assert.are_not.equal(jobs[2].headers.RequestId, jobs[3].headers.RequestId)
    assert.equal(jobs[3].headers.RequestId, res.request_id)
    assert.equal(2, #res.msgIds)
    for _, id in ipairs(res.msgIds) do assert.truthy(res.success[id], id) end
    assert.same({}, res.fail)
    local last = helpers.json.decode(emu:requests()[3].form.msgList)
    for i, m in ipairs(last) do
      assert.equal(1, m.resendFlag)
      assert.equal(res.msgIds[i], m.msgId) -- generated msgIds kept
    end
    assert.equal(1, emu:stats().codes["431"])
    assert.equal(2, #emu:inbox("b")) -- each message once
    local got = counters(c:stats())
    c:close()
    -- the blocking send through the same fault counts the same
    emu:reset()
    emu:faults({{action = "status", status = 502, after_deliver = true}})
    local b = helpers.client_for(emu, {retries = 1})
    assert(b:send(batch()))
    assert.same(counters(b:stats()), got)
    assert.equal(1, got.repeats)
    assert.equal(1, got.resends)
    b:close()
  end)
end)
