-- Attacks on exactly-once with the emulator de-duplicating RequestIds (its
-- default window): answers lost after the service delivered (a 502 from a
-- gateway that forwarded, a connection closed, a truncated answer, a late
-- answer past the client's timeout) and a 416, on every path that resends
-- (send, send_all, fanout, a plan driven by a plain loop).  Every message must
-- land in every inbox exactly once, and the outcome must say delivered.
local commsease = require "commsease"
local helpers = require "helpers"
local socket = require "socket"

local function accids(n, prefix)
  local t = {}
  for i = 1, n do t[i] = prefix .. i end
  return t
end

local function counts(emu, accid)
  local c = {}
  for _, m in ipairs(emu:inbox(accid)) do
    local id = m.msgid_client:match("^(.*):%d+$") or m.msgid_client
    c[id] = (c[id] or 0) + 1
  end
  return c
end

local function exactly_once(emu, who, ids)
  for _, a in ipairs(who) do
    local c = counts(emu, a)
    for _, id in ipairs(ids) do
      assert.equal(1, c[id], ("%s got %s %s times"):format(a, id, tostring(c[id])))
    end
  end
end

-- every kind of lost answer, once each, then a 416
local function lost_answers(emu, prefix)
  emu:faults({
    {action = "status", status = 502, after_deliver = true, match = {accid = prefix .. "1"}},
    {action = "close", after_deliver = true, match = {accid = prefix .. "101"}},
    {action = "truncate", match = {accid = prefix .. "201"}},
    {action = "delay", ms = 1500, match = {accid = prefix .. "301"}},
    {action = "code", code = 416, match = {accid = prefix .. "401"}},
  })
end

local function drive(plan)
  while true do
    local jobs = {}
    local job, wait = plan:next()
    while job do
      jobs[#jobs + 1] = job
      job, wait = plan:next()
    end
    for _, j in ipairs(jobs) do
      local status, body = helpers.http(j.method, j.url, j.headers, j.body, j.timeout)
      if status then plan:done(j.id, status, body)
      else plan:done(j.id, nil, {sent = not tostring(body):find("refused"), message = tostring(body)}) end
    end
    if #jobs == 0 then
      if wait == nil then break end
      socket.sleep(wait)
    end
  end
  return plan:report()
end

describe("attack: exactly-once with RequestId de-duplication", function()
  local emu
  setup(function()
    emu = helpers.start_emulator({"--rate-limit", "0", "--penalty", "0.2"})
  end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)

  local function params(prefix, n)
    local msgs = {}
    for i = 1, 3 do msgs[i] = commsease.text("x" .. i, {msgId = prefix .. "-m" .. i}) end
    return {roomid = 42, fromAccid = "alice", toAccids = accids(n, prefix), msgList = msgs},
           {prefix .. "-m1", prefix .. "-m2", prefix .. "-m3"}
  end

  for _, how in ipairs{"fanout", "plan"} do
    it(how .. ": every lost answer and a 416, every inbox exactly once, every call ok", function()
      local c = helpers.client_for(emu, {rate_limit = 0, timeout = 0.6, retries = 3,
                                         rate_limit_penalty = 0.2})
      local prefix = how:sub(1, 1) .. "x"
      lost_answers(emu, prefix)
      local p, ids = params(prefix, 500)
      local opts = {concurrency = 4, backoff = 0.05}
      local report
      if how == "fanout" then report = assert(c:fanout(p, opts))
      else report = drive(assert(c:plan(p, opts))) end
      assert.equal(report.calls, report.ok)
      assert.same({}, report.failures)
      exactly_once(emu, {prefix .. "1", prefix .. "101", prefix .. "201", prefix .. "301",
                         prefix .. "401", prefix .. "500"}, ids)
      local st = emu:stats()
      assert.is_true((st.codes["431"] or 0) >= 1, "the 431 path was taken")
      assert.is_true((st.codes["416"] or 0) >= 1, "a 416 was answered")
      assert.is_true((st.http["502"] or 0) >= 1, "a 502 was answered")
      assert.is_true(st.closed >= 1, "a connection was closed after delivery")
      c:close()
    end)
  end

  it("send_all: a 502 after delivery, retried, learns the outcome through the 431", function()
    local c = helpers.client_for(emu, {rate_limit = 0, retries = 2})
    local list, all = {}, {}
    for k = 1, 4 do
      local p, ids = params("sa" .. k, 2)
      list[k] = p
      all[k] = ids
    end
    local faults = {}
    for k = 1, 4 do
      faults[k] = {action = "status", status = 502, after_deliver = true, match = {accid = "sa" .. k .. "1"}}
    end
    emu:faults(faults)
    local results = c:send_all(list, {concurrency = 2})
    assert.equal(4, emu:stats().codes["431"])
    for k = 1, 4 do
      local r = results[k]
      assert.is_table(r.res, tostring(r.err))
      for _, id in ipairs(all[k]) do assert.is_not_nil(r.res.success[id], id) end
      exactly_once(emu, {"sa" .. k .. "1", "sa" .. k .. "2"}, all[k])
    end
    c:close()
  end)

  it("send: a 502 after delivery, retried, is delivered once and reported delivered", function()
    local c = helpers.client_for(emu, {rate_limit = 0, retries = 1})
    local p, ids = params("sd", 2)
    emu:faults({{action = "status", status = 502, after_deliver = true}})
    local res, err = c:send(p)
    assert.is_table(res, tostring(err))
    for _, id in ipairs(ids) do assert.is_not_nil(res.success[id], id) end
    exactly_once(emu, {"sd1", "sd2"}, ids)
    -- a lost answer the blocking send does not resend: sent = true, retryable
    emu:faults({{action = "close", after_deliver = true}})
    local p2, ids2 = params("se", 1)
    res, err = c:send(p2)
    assert.is_nil(res)
    assert.is_true(err.sent)
    assert.is_true(err.retryable)
    exactly_once(emu, {"se1"}, ids2)
    c:close()
  end)
end)
