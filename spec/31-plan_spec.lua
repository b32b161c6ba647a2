-- client:plan: the fan-out engine without I/O, driven here by a plain Lua loop
-- over LuaSocket, as any event loop would drive it.
local commsease = require "commsease"
local helpers = require "helpers"
local socket = require "socket"

local function accids(n, prefix)
  local t = {}
  for i = 1, n do t[i] = (prefix or "pl") .. i end
  return t
end

local function messages(n, prefix)
  local t = {}
  for i = 1, n do t[i] = commsease.text("announcement " .. i, {msgId = (prefix or "ann") .. i}) end
  return t
end

local function inbox_counts(emu, accid)
  local counts = {}
  for _, m in ipairs(emu:inbox(accid)) do
    local caller = m.msgid_client:match("^(.*):%d+$") or m.msgid_client
    counts[caller] = (counts[caller] or 0) + 1
  end
  return counts
end

-- one job over LuaSocket: an answer, or a transport failure saying whether the
-- request may have left (a refused connection: certainly not)
local function send_job(job)
  local status, body = helpers.http(job.method, job.url, job.headers, job.body, job.timeout)
  if status then return status, body end
  return nil, {sent = not tostring(body):find("refused"), message = tostring(body)}
end

-- the plain loop: take every job the plan hands out, send them, hand the
-- outcomes back, sleep when told to
local function drive(plan, stats)
  stats = stats or {}
  stats.jobs, stats.max_out = 0, 0
  while true do
    local jobs = {}
    local job, wait = plan:next()
    while job do
      jobs[#jobs + 1] = job
      job, wait = plan:next()
    end
    if #jobs > stats.max_out then stats.max_out = #jobs end
    for _, j in ipairs(jobs) do
      stats.jobs = stats.jobs + 1
      local status, b = send_job(j)
      plan:done(j.id, status, b)
    end
    if #jobs == 0 then
      if wait == nil then break end
      assert(type(wait) == "number" and wait > 0, "wait is a positive number of seconds")
      socket.sleep(wait)
    end
  end
  return plan:report()
end

-- the parts of a report that do not depend on timing
local function shape(report)
  local results = {}
  for i, r in ipairs(report.results) do
    local ids = {}
    if r.res then
      for id in pairs(r.res.success) do ids[#ids + 1] = id end
      table.sort(ids)
      results[i] = {ok = ids, fail = r.res.fail}
    else
      results[i] = {kind = r.err.kind, code = r.err.code, message = r.err.message}
    end
  end
  return {calls = report.calls, ok = report.ok, failed = report.failed, messages = report.messages,
          recipients = report.recipients, failures = report.failures, results = results}
end

describe("client:plan", function()
  local emu
  before_each(function() emu = helpers.start_emulator({"--rate-limit", "0"}) end)
  after_each(function() emu:stop() end)

  local function new_client(over)
    local o = {rate_limit = 0, timeout = 0.5}
    for k, v in pairs(over or {}) do o[k] = v end
    return helpers.client_for(emu, o)
  end

  it("does no I/O and hands out signed jobs: id, method, url, headers, body, timeout", function()
    local c = new_client{timeout = 2}
    local plan = c:plan{roomid = 3, fromAccid = "sys", toAccids = accids(150), msgList = messages(2)}
    assert.matches("^commsease%.plan %(0x%x+%)", tostring(plan))
    local job = plan:next()
    assert.equal(0, emu:stats().requests) -- nothing was sent by the plan
    assert.is_number(job.id)
    assert.equal("POST", job.method)
    assert.equal(emu.url, job.url)
    assert.equal(2, job.timeout)
    local h = job.headers
    assert.equal(emu.appkey, h.AppKey)
    assert.equal(helpers.sign(emu.secret, h.Nonce, h.CurTime), h.CheckSum)
    assert.is_true(math.abs(tonumber(h.CurTime) - os.time()) <= 2)
    assert.matches("^%x+$", h.RequestId)
    assert.matches("^application/x%-www%-form%-urlencoded", h["Content-Type"])
    assert.matches("msgList=", job.body)
    assert.matches("ann1%%3A1", job.body) -- derived msgIds, as fanout sends them
    -- the job is a valid request as it stands
    local status, body = helpers.http(job.method, job.url, job.headers, job.body)
    assert.equal(200, status)
    plan:done(job.id, status, body)
    assert.equal(2, #emu:inbox("pl1")) -- call 1: both messages to pl1..pl100
    c:close()
  end)

  it("hands out `concurrency` jobs before answers come back, then says how long to wait", function()
    local c = new_client()
    local plan = c:plan({roomid = 3, fromAccid = "sys", toAccids = accids(1000), msgList = messages(1)},
                        {concurrency = 4})
    local jobs = {}
    for i = 1, 4 do jobs[i] = assert(plan:next()) end
    local job, wait = plan:next()
    assert.is_nil(job)
    assert.is_number(wait)
    assert.is_true(wait > 0 and wait <= 0.5, "wait " .. wait .. " is at most the attempt's timeout")
    local status, body = send_job(jobs[1])
    plan:done(jobs[1].id, status, body)
    assert.is_table(plan:next())             -- an answer frees a job
    assert.is_nil((plan:next()))
    c:close()
  end)

  it("resends an ambiguous failure: same RequestId, fresh signature, resendFlag = 1 everywhere", function()
    local c = new_client()
    local plan = c:plan({roomid = 3, fromAccid = "sys", toAccids = accids(3), msgList = messages(3)},
                        {backoff = 0})
    local first = plan:next()
    plan:done(first.id, nil, {sent = true, message = "connection reset"})
    local again = assert(plan:next())
    assert.not_equal(first.id, again.id)
    assert.equal(first.headers.RequestId, again.headers.RequestId)
    assert.not_equal(first.headers.Nonce, again.headers.Nonce)
    assert.equal(helpers.sign(emu.secret, again.headers.Nonce, again.headers.CurTime),
                 again.headers.CheckSum)
    assert.is_nil(first.body:find("resendFlag", 1, true))
    local _, flags = again.body:gsub("%%22resendFlag%%22%%3A1", "")
    assert.equal(3, flags)                   -- every message of the call
    -- a definite answer settles it: nil, nil
    local status, body = send_job(again)
    plan:done(again.id, status, body)
    local job, wait = plan:next()
    assert.is_nil(job)
    assert.is_nil(wait)
    local report = plan:report()
    assert.equal(1, report.ok)
    assert.same({}, report.failures)
    c:close()
  end)

  it("moves to the next endpoint when a request certainly did not leave", function()
    local c = new_client{endpoints = {"http://127.0.0.1:9/nimserver", emu.base}, retries = 2}
    local plan = c:plan{roomid = 3, fromAccid = "sys", toAccids = {"x"}, msgList = messages(1)}
    local first = plan:next()
    assert.equal("http://127.0.0.1:9/nimserver/chatroom/batchSendMsgToSomeone.action", first.url)
    local status, terr = send_job(first)
    assert.is_nil(status)
    assert.is_false(terr.sent)
    plan:done(first.id, nil, terr)
    local second = assert(plan:next())       -- at once: no backoff for a failover
    assert.equal(emu.url, second.url)
    assert.equal(first.headers.RequestId, second.headers.RequestId)
    plan:done(second.id, send_job(second))
    assert.is_nil((plan:next()))
    assert.equal(1, plan:report().ok)
    c:close()
  end)

  it("raises on misuse: an unknown job, a job handed back twice, bad outcomes, an early report", function()
    local c = new_client()
    local plan = c:plan{roomid = 3, fromAccid = "sys", toAccids = {"x"}, msgList = messages(1)}
    local job = plan:next()
    assert.has_error(function() plan:report() end, nil)
    assert.has_error(function() plan:done(job.id + 1000, 200, "{}") end)
    assert.has_error(function() plan:done(job.id, "200", "{}") end)
    assert.has_error(function() plan:done(job.id, 200, nil) end)
    assert.has_error(function() plan:done(job.id, nil, "timeout") end)
    assert.has_error(function() plan:done(job.id, nil, {sent = "yes"}) end)
    plan:done(job.id, send_job(job))         -- the misuse above did not use the job up
    local ok, msg = pcall(plan.done, plan, job.id, 200, "{}")
    assert.is_false(ok)
    assert.matches("handed back already", msg)
    assert.is_nil((plan:next()))
    assert.equal(1, plan:report().ok)
    c:close()
    assert.has_error(function() plan:next() end) -- its client is closed
  end)

  it("returns nil, err for invalid params, like fanout", function()
    local c = new_client()
    local plan, err = c:plan{roomid = 1, fromAccid = "a", toAccids = {}, msgList = messages(1)}
    assert.is_nil(plan)
    assert.equal("toAccids", err.field)
    c:close()
  end)

  it("settles every call at the deadline; a late answer is taken and ignored", function()
    local c = new_client()
    local plan = c:plan({roomid = 3, fromAccid = "sys", toAccids = accids(300), msgList = messages(1)},
                        {deadline = 0.2, concurrency = 1})
    local job = plan:next()
    local none, wait = plan:next()
    assert.is_nil(none)
    assert.is_true(wait <= 0.2)
    socket.sleep(0.25)
    local j2, w2 = plan:next()
    assert.is_nil(j2)
    assert.is_nil(w2)
    plan:done(job.id, 200, '{"code":200}')   -- too late: accepted, not counted
    local report = plan:report()
    assert.equal(3, report.failed)
    assert.is_true(report.results[1].err.sent)   -- it was handed out
    assert.is_false(report.results[2].err.sent)  -- never handed out
    assert.equal("deadline", report.failures[1].reason)
    assert.equal(0, emu:stats().requests)
    c:close()
  end)

  it("waits out the penalty after a 416 and sends the call again", function()
    local c = new_client{rate_limit_penalty = 0.3}
    local plan = c:plan{roomid = 3, fromAccid = "sys", toAccids = {"x"}, msgList = messages(1)}
    local job = plan:next()
    plan:done(job.id, 200, '{"code":416,"desc":"rate limited"}')
    local none, wait = plan:next()
    assert.is_nil(none)
    assert.is_true(wait > 0.1 and wait <= 0.3, "penalty wait " .. tostring(wait)) -- 0.3 s from the answer
    socket.sleep(wait)
    local again = assert(plan:next())
    assert.is_nil(again.body:find("resendFlag", 1, true)) -- a 416 was not processed: no resend mark
    plan:done(again.id, send_job(again))
    assert.equal(1, plan:report().ok)
    c:close()
  end)

  it("calls on_progress and keeps its error, like fanout", function()
    local c = new_client()
    local seen = {}
    local plan = c:plan({roomid = 3, fromAccid = "sys", toAccids = accids(300), msgList = messages(1)},
                        {on_progress = function(done, total)
                           seen[#seen + 1] = done .. "/" .. total
                           if done == 2 then error("bar broke") end
                         end})
    local report = drive(plan)
    assert.same({"1/3", "2/3"}, seen)
    assert.matches("bar broke", tostring(report.progress_error))
    assert.equal(3, report.ok)
    c:close()
  end)

  it("gives the same report as fanout through the exactly-once fault plan", function()
    local faults = {
      {action = "close", after_deliver = true, count = 2},
      {action = "status", status = 502, count = 2},
      {action = "delay", ms = 1200, count = 2},           -- delivered, answered after the timeout
      {action = "code", code = 416, desc = "rate limited"},
      {action = "truncate"},
      {action = "close"},
    }
    local params = {roomid = 9001, fromAccid = "system", toAccids = accids(1000, "m"),
                    msgList = messages(25)}
    local opts = {concurrency = 8, retries = 4, backoff = 0.05}
    local c = new_client{rate_limit_penalty = 0.3}
    emu:faults(faults)
    local want = c:fanout(params, opts)
    local emu2 = helpers.start_emulator({"--rate-limit", "0"})
    finally(function() emu2:stop() end)
    local c2 = helpers.client_for(emu2, {rate_limit = 0, timeout = 0.5, rate_limit_penalty = 0.3})
    emu2:faults(faults)
    local stats = {}
    local got = drive(c2:plan(params, opts), stats)
    assert.equal(30, got.calls)
    assert.equal(30, got.ok)
    assert.same(shape(want), shape(got))
    assert.is_true(stats.jobs > 30, "the faults forced resends (" .. stats.jobs .. " jobs)")
    assert.is_true(stats.max_out <= 8)
    for _, e in ipairs{emu, emu2} do
      for i = 1, 1000, 37 do
        local counts = inbox_counts(e, "m" .. i)
        for k = 1, 25 do assert.equal(1, counts["ann" .. k], "m" .. i .. " ann" .. k) end
      end
    end
    for i = 1, 1000 do
      local counts = inbox_counts(emu2, "m" .. i)
      for k = 1, 25 do
        if counts["ann" .. k] ~= 1 then
          error(("plan: m%d got ann%d %s times"):format(i, k, tostring(counts["ann" .. k])))
        end
      end
    end
    c:close()
    c2:close()
  end)

  it("gives the same report as fanout when calls fail for good", function()
    local msgs = messages(12)
    msgs[5].msgId = "bad-5"
    local faults = {
      {action = "code", code = 13004, desc = "sender muted in room", match = {accid = "pl150"}, count = 2},
      {action = "fail_msg", match = {msgId = "bad-5"}, reason = "anti-spam hit", count = 2},
    }
    local params = {roomid = 4, fromAccid = "sys", toAccids = accids(250), msgList = msgs}
    local c = new_client()
    emu:faults(faults)
    local want = c:fanout(params)
    emu:reset()
    emu:faults(faults)
    local got = drive(c:plan(params))
    assert.equal(4, got.failed)
    assert.equal(14, #got.failures)
    assert.same(shape(want), shape(got))
    c:close()
  end)
end)

-- A plan driven out of order against a service simulated in Lua (no network):
-- jobs answered in random order with random outcomes.  Whatever the order, a
-- call keeps its RequestId and msgIds, every attempt after one that may have
-- been delivered is marked resendFlag = 1 on every message, no more than
-- `concurrency` jobs are ever out, and every message is delivered once.
describe("client:plan driven out of order", function()
  local function form_decode(body)
    local t = {}
    for k, v in body:gmatch("([^&=]+)=([^&]*)") do
      local function dec(s) return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end
      t[dec(k)] = dec(v)
    end
    return t
  end

  for _, seed in ipairs{1, 2, 3} do
    it("keeps every promise with answers in random order (seed " .. seed .. ")", function()
      math.randomseed(seed)
      local c = commsease.new{appkey = "k", secret = "s", endpoints = {"http://a.invalid/nimserver",
                              "http://b.invalid/nimserver"}, rate_limit = 0, rate_limit_penalty = 0.01}
      local to = accids(900)
      local plan = c:plan({roomid = 1, fromAccid = "sys", toAccids = to, msgList = messages(23)},
                          {concurrency = 6, retries = 10, backoff = 0, per_receiver_rate = 0})
      local delivered, calls, out, n_out, max_out = {}, {}, {}, 0, 0
      local stats = {lost = 0, refused = 0, bad_gateway = 0, limited = 0, ok = 0}
      local forced = {0.1, 0.15, 0.25, 0.28}
      local function answer(job)
        local f = form_decode(job.body)
        local msgs = helpers.json.decode(f.msgList)
        local rid = job.headers.RequestId
        local ids = {}
        for i, m in ipairs(msgs) do ids[i] = m.msgId end
        local key = table.concat(ids, ",")
        local call = calls[key]
        if not call then
          call = {rid = rid, attempts = 0}
          calls[key] = call
        end
        assert.equal(call.rid, rid)                     -- the same RequestId on every attempt
        assert.equal(helpers.sign("s", job.headers.Nonce, job.headers.CurTime), job.headers.CheckSum)
        if call.maybe_delivered then                    -- a resend: every message marked
          for _, m in ipairs(msgs) do assert.equal(1, m.resendFlag, "resend of " .. m.msgId) end
        end
        call.attempts = call.attempts + 1
        -- the first answers are one of each fault, the rest at random
        local r = table.remove(forced, 1) or math.random()
        local function deliver()
          for _, m in ipairs(msgs) do
            if delivered[m.msgId] then
              assert.equal(1, m.resendFlag, m.msgId .. " delivered twice without resendFlag")
            else
              delivered[m.msgId] = true
            end
          end
          call.maybe_delivered = true
        end
        if r < 0.12 then                                -- delivered, answer lost
          stats.lost = stats.lost + 1
          deliver()
          return nil, {sent = true, message = "connection reset by peer"}
        elseif r < 0.2 then                             -- never reached the service
          stats.refused = stats.refused + 1
          return nil, {sent = false, message = "connection refused"}
        elseif r < 0.26 then
          stats.bad_gateway = stats.bad_gateway + 1
          return 502, "<html>bad gateway</html>"
        elseif r < 0.3 then
          stats.limited = stats.limited + 1
          return 200, '{"code":416,"desc":"rate limited"}'
        end
        stats.ok = stats.ok + 1
        deliver()
        local success = {}
        for i, m in ipairs(msgs) do success[i] = {[m.msgId] = {time = 1, roomId = 1, type = 0}} end
        return 200, helpers.json.encode({code = 200, success = success, fail = {}})
      end
      local guard = 0
      while true do
        guard = guard + 1
        assert(guard < 20000, "the plan never finished")
        local job, wait = plan:next()
        if job then
          out[job.id] = job
          n_out = n_out + 1
          if n_out > max_out then max_out = n_out end
        elseif n_out > 0 and (wait == nil or math.random() < 0.9) then
          -- answer one outstanding job, picked at random
          local ids = {}
          for id in pairs(out) do ids[#ids + 1] = id end
          table.sort(ids)
          local id = ids[math.random(#ids)]
          local j = out[id]
          out[id], n_out = nil, n_out - 1
          plan:done(id, answer(j))
        elseif wait then
          socket.sleep(math.min(wait, 0.02))
        else
          break
        end
      end
      assert.equal(0, n_out)
      assert.is_true(max_out <= 6, "at most concurrency jobs out, saw " .. max_out)
      local report = plan:report()
      assert.equal(27, report.calls)                    -- 3 batches x 9 groups
      assert.equal(27, report.ok, tostring(report.failures[1] and report.failures[1].reason))
      local n = 0
      for _ in pairs(delivered) do n = n + 1 end
      assert.equal(23 * 9, n)                           -- every derived msgId, once
      assert.is_true(stats.lost > 0 and stats.refused > 0 and stats.bad_gateway > 0 and stats.limited > 0,
                     "every kind of fault happened")
      c:close()
    end)
  end
end)
