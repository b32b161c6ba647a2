-- Fan-out at scale: chunk, send_all, pacing, 416 penalties, receiver pacing,
-- resends that lose nothing and deliver nothing twice, progress and deadlines.
local commsease = require "commsease"
local helpers = require "helpers"

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

local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = deep_copy(x) end
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

describe("commsease.chunk", function()
  it("splits any number of messages and recipients into valid calls, batch-major", function()
    local to = accids(250)
    to[251], to[252] = "PL7", "pl250" -- duplicates in another case: dropped
    local params = {roomid = 7, fromAccid = "sys", toAccids = to, msgList = messages(25), route = 0}
    local copy = deep_copy(params)
    local calls, plan = assert(commsease.chunk(params))
    assert.same(copy, params) -- the caller's tables are untouched
    assert.equal(9, #calls)   -- 3 batches of messages x 3 groups of recipients
    assert.equal(25, plan.messages)
    assert.equal(250, plan.recipients)
    local client = commsease.new{appkey = "k", secret = "s"}
    for i, call in ipairs(calls) do
      local meta = plan.calls[i]
      assert.equal(math.floor((i - 1) / 3) + 1, meta.batch)
      assert.equal((i - 1) % 3 + 1, meta.group)
      assert.is_true(#call.msgList <= 10 and #call.toAccids <= 100)
      assert.equal(7, call.roomid)
      assert.equal(0, call.route)
      assert.equal(("pl%d"):format((meta.group - 1) * 100 + 1), call.toAccids[1])
      for k, m in ipairs(call.msgList) do
        local caller = ("ann%d"):format((meta.batch - 1) * 10 + k)
        assert.equal(caller .. ":" .. meta.group, m.msgId)
        assert.equal(caller, meta.origin[m.msgId])
      end
      assert.is_table(client:prepare(call)) -- every call is valid as it stands
    end
    assert.equal(10, #calls[1].msgList)
    assert.equal(5, #calls[9].msgList)
    assert.equal(50, #calls[9].toAccids)
    client:close()
    -- the same input always gives the same calls
    assert.same(calls, (commsease.chunk(params)))
  end)

  it("keeps the first spelling of a recipient and the caller's order", function()
    local calls = assert(commsease.chunk{roomid = 1, fromAccid = "a",
                                         toAccids = {"Bob", "carol", "BOB", "alice", "Carol"},
                                         msgList = messages(1)})
    assert.same({"Bob", "carol", "alice"}, calls[1].toAccids)
  end)

  it("names a bad recipient or message in the caller's numbering", function()
    local to = accids(150)
    to[120] = "not valid!"
    local _, err = commsease.chunk{roomid = 1, fromAccid = "a", toAccids = to, msgList = messages(3)}
    assert.equal("invalid", err.kind)
    assert.equal("toAccids[120]", err.field)
    local msgs = messages(15)
    msgs[13].attach = string.rep("x", 5000)
    _, err = commsease.chunk{roomid = 1, fromAccid = "a", toAccids = {"b"}, msgList = msgs}
    assert.equal("msgList[13].attach", err.field)
    assert.matches("^msgList%[13%]", err.message)
    msgs = messages(3)
    msgs[3].msgId = "ann1"
    _, err = commsease.chunk{roomid = 1, fromAccid = "a", toAccids = {"b"}, msgList = msgs}
    assert.equal("msgList[3].msgId", err.field)
  end)
end)

describe("client:send_all", function()
  local emu, client
  setup(function()
    emu = helpers.start_emulator({"--rate-limit", "0"})
    client = helpers.client_for(emu, {rate_limit = 0})
  end)
  teardown(function() client:close(); emu:stop() end)
  before_each(function() emu:reset() end)

  local function list(n, room)
    local t = {}
    for i = 1, n do
      t[i] = {roomid = room or 5, fromAccid = "a", toAccids = {"r" .. i},
              msgList = {commsease.text("m" .. i, {msgId = "sa-" .. i})}}
    end
    return t
  end

  it("returns results in input order; a bad entry does not stop the others", function()
    local l = list(20)
    l[7] = {roomid = 0}
    local out = client:send_all(l, {concurrency = 8})
    assert.equal(20, #out)
    for i, r in ipairs(out) do
      if i == 7 then
        assert.equal("invalid", r.err.kind)
      else
        assert.is_nil(r.err)
        assert.same({"sa-" .. i}, r.res.msgIds)
        assert.is_table(r.res.success["sa-" .. i])
      end
    end
    assert.equal(19, emu:stats().requests)
  end)

  it("never has more than `concurrency` requests in flight", function()
    local l = list(12)
    emu:faults{{action = "delay", ms = 300, when = "before", count = 12}}
    local t0 = helpers.now()
    local out = client:send_all(l, {concurrency = 4})
    local took = helpers.now() - t0
    for _, r in ipairs(out) do assert.is_table(r.res) end
    assert.is_true(took >= 0.85, "12 calls of 300 ms at concurrency 4 took " .. took)
    emu:reset()
    emu:faults{{action = "delay", ms = 300, when = "before", count = 12}}
    t0 = helpers.now()
    client:send_all(list(12, 6), {concurrency = 12})
    took = helpers.now() - t0
    assert.is_true(took < 0.85, "12 calls of 300 ms at concurrency 12 took " .. took)
  end)

  it("sends a retried call with the msgIds it generated the first time", function()
    emu:faults{{action = "status", status = 502}}
    local c = helpers.client_for(emu, {rate_limit = 0, retries = 1})
    local out = c:send_all({{roomid = 5, fromAccid = "a", toAccids = {"gen"},
                             msgList = {commsease.text("no id given")}}})
    local res = assert(out[1].res, tostring(out[1].err))
    local reqs = emu:requests()
    assert.equal(2, #reqs)
    assert.equal(reqs[1].form.msgList, reqs[2].form.msgList)
    assert.is_table(res.success[res.msgIds[1]])
    assert.equal(1, #emu:inbox("gen"))
    c:close()
  end)

  it("runs from a coroutine with a small stack", function()
    local co = coroutine.wrap(function()
      local a, b, cc, d, e, f, g, h, i, j, k, l, m, n, o, q, r, s1, t, u = 1, 2, 3, 4, 5, 6, 7, 8, 9,
        10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20
      local calls = assert(commsease.chunk{roomid = 1, fromAccid = "a", toAccids = {"b"},
                                           msgList = {commsease.custom({x = {y = {z = 1}}})}})
      local out = client:send_all(calls)
      return out[1].res and out[1].res.code, a + b + cc + d + e + f + g + h + i + j + k + l + m + n
        + o + q + r + s1 + t + u
    end)
    local code, sum = co()
    assert.equal(200, code)
    assert.equal(210, sum)
  end)

  it("shares kept-alive connections across calls", function()
    local c0 = emu:stats().connections
    local before = emu:stats().connections
    local per_query = before - c0
    client:send_all(list(40), {concurrency = 4})
    client:send_all(list(40, 9), {concurrency = 4})
    assert.is_true(emu:stats().connections - before - per_query <= 4)
  end)

  it("raises on misuse of its options", function()
    assert.has_error(function() client:send_all(list(1), {concurrency = 0}) end)
    assert.has_error(function() client:send_all("x") end)
    assert.has_error(function() client:send_all(list(1), {on_progress = 5}) end)
  end)
end)

describe("pacing", function()
  it("keeps a client under its rate limit, so the service never answers 416", function()
    local emu = helpers.start_emulator({"--rate-limit", "20", "--penalty", "5"})
    finally(function() emu:stop() end)
    local c = helpers.client_for(emu, {rate_limit = 20})
    local t0 = helpers.now()
    for i = 1, 30 do
      assert(c:send{roomid = 1, fromAccid = "a", toAccids = {"b"}, msgList = {commsease.text("x" .. i)}})
    end
    local took = helpers.now() - t0
    assert.is_nil(emu:stats().codes["416"])
    assert.is_true(took >= 1.2, "30 calls at 20/s took " .. took)
    c:close()
  end)

  it("pauses every call for the penalty after a 416 and sends the affected calls again", function()
    local emu = helpers.start_emulator({"--rate-limit", "5", "--penalty", "0.5"})
    finally(function() emu:stop() end)
    local c = helpers.client_for(emu, {rate_limit = 0, rate_limit_penalty = 0.6})
    local l = {}
    for i = 1, 12 do
      l[i] = {roomid = 1, fromAccid = "a", toAccids = {"rl"},
              msgList = {commsease.text("x", {msgId = "rl-" .. i})}}
    end
    local out = c:send_all(l, {concurrency = 4, retries = 0})
    for i, r in ipairs(out) do assert.is_table(r.res and r.res.success["rl-" .. i], tostring(r.err)) end
    assert.is_true((emu:stats().codes["416"] or 0) >= 1)
    local counts = inbox_counts(emu, "rl")
    for i = 1, 12 do assert.equal(1, counts["rl-" .. i]) end
    c:close()
  end)
end)

describe("client:fanout", function()
  local emu
  before_each(function() emu = helpers.start_emulator({"--rate-limit", "0"}) end)
  after_each(function() emu:stop() end)

  local function new_client(over)
    local o = {appkey = emu.appkey, secret = emu.secret, endpoint = emu.base, rate_limit = 0,
               timeout = 0.5}
    for k, v in pairs(over or {}) do o[k] = v end
    return commsease.new(o)
  end

  it("spaces further messages to the same recipients (per_receiver_rate)", function()
    local c = new_client()
    local report = c:fanout({roomid = 3, fromAccid = "sys", toAccids = accids(5), msgList = messages(25)},
                            {per_receiver_rate = 20})
    assert.equal(3, report.calls)
    assert.equal(3, report.ok)
    local inbox = emu:inbox("pl1")
    assert.equal(25, #inbox)
    local first, last = inbox[1].time, inbox[#inbox].time
    assert.is_true(last - first >= 950, "25 messages at 20/s arrived within " .. (last - first) .. " ms")
    c:close()
  end)

  it("delivers every message exactly once to 1,000 recipients through drops, 502s, timeouts and a 416", function()
    local c = new_client{rate_limit_penalty = 0.3}
    emu:faults{
      {action = "close", after_deliver = true, count = 2},
      {action = "status", status = 502, count = 2},
      {action = "delay", ms = 1200, count = 2},           -- delivered, answered after the timeout
      {action = "code", code = 416, desc = "rate limited"},
      {action = "truncate"},
      {action = "close"},
    }
    local progress = 0
    local report = c:fanout({roomid = 9001, fromAccid = "system", toAccids = accids(1000, "m"),
                             msgList = messages(25)},
                            {concurrency = 8, retries = 4, backoff = 0.05,
                             on_progress = function(done, total) progress = done; assert(total == 30) end})
    assert.equal(30, report.calls)
    assert.equal(30, report.ok)
    assert.equal(0, report.failed)
    assert.same({}, report.failures)
    assert.equal(25, report.messages)
    assert.equal(1000, report.recipients)
    assert.equal(30, progress)
    assert.is_nil(report.progress_error)
    local stats = emu:stats()
    assert.is_true(stats.requests > 30, "the faults forced resends")
    for i = 1, 1000 do
      local counts = inbox_counts(emu, "m" .. i)
      for k = 1, 25 do
        if counts["ann" .. k] ~= 1 then
          error(("m%d got ann%d %s times"):format(i, k, tostring(counts["ann" .. k])))
        end
      end
    end
    c:close()
  end)

  it("names exactly the messages and recipients that failed for good, and why", function()
    local c = new_client()
    local msgs = messages(12)
    msgs[5].msgId = "bad-5"
    -- the emulator applies the first matching entry: group 2 (pl101..pl200) is
    -- muted for both of its calls; then bad-5 is refused in groups 1 and 3
    emu:faults{
      {action = "code", code = 13004, desc = "sender muted in room", match = {accid = "pl150"}, count = 2},
      {action = "fail_msg", match = {msgId = "bad-5"}, reason = "anti-spam hit", count = 2},
    }
    local report = c:fanout({roomid = 4, fromAccid = "sys", toAccids = accids(250), msgList = msgs})
    assert.equal(6, report.calls)        -- 2 batches x 3 groups
    assert.equal(2, report.ok)           -- messages 11-12 to groups 1 and 3
    assert.equal(4, report.failed)
    local muted, spam = {}, {}
    for _, f in ipairs(report.failures) do
      if f.code == 13004 then
        assert.is_nil(muted[f.msgId])
        muted[f.msgId] = f.accids
        assert.equal("sender muted in room", f.reason)
        assert.equal("api", f.kind)
      else
        assert.equal("bad-5", f.msgId)
        assert.equal("anti-spam hit", f.reason)
        spam[#spam + 1] = f.accids
      end
    end
    local n = 0
    for id, to in pairs(muted) do
      n = n + 1
      assert.is_truthy(id == "bad-5" or id:match("^ann%d+$"))
      assert.equal(100, #to)
      assert.equal("pl101", to[1])
      assert.equal("pl200", to[100])
    end
    assert.equal(12, n)                  -- every message of group 2
    assert.equal(2, #spam)
    table.sort(spam, function(a, b) return #a > #b end)
    assert.equal("pl1", spam[1][1])      -- group 1: pl1..pl100
    assert.equal(100, #spam[1])
    assert.equal("pl201", spam[2][1])    -- group 3: pl201..pl250
    assert.equal(50, #spam[2])
    assert.equal(14, #report.failures)
    -- and the inboxes agree with the report
    local counts = inbox_counts(emu, "pl1")
    assert.is_nil(counts["bad-5"])
    for _, k in ipairs{1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12} do assert.equal(1, counts["ann" .. k]) end
    assert.same({}, inbox_counts(emu, "pl150"))
    c:close()
  end)

  it("keeps a Lua error raised in on_progress and goes on", function()
    local c = new_client()
    local calls = 0
    local report = c:fanout({roomid = 5, fromAccid = "sys", toAccids = accids(300), msgList = messages(3)},
                            {on_progress = function() calls = calls + 1; error("progress bar broke") end})
    assert.equal(1, calls)
    assert.matches("progress bar broke", tostring(report.progress_error))
    assert.equal(3, report.ok)
    c:close()
  end)

  it("refuses send_all, fanout and close from inside on_progress, and stays usable", function()
    local c = new_client()
    local tried = {}
    local report = c:fanout({roomid = 7, fromAccid = "sys", toAccids = accids(150), msgList = messages(2)},
                            {on_progress = function(done)
                               if done == 1 then
                                 tried[#tried + 1] = select(2, pcall(c.send_all, c, {}))
                                 tried[#tried + 1] = select(2, pcall(c.fanout, c, {}))
                                 tried[#tried + 1] = select(2, pcall(c.close, c))
                                 -- a plain send uses its own handle and is fine
                                 tried[#tried + 1] = c:send{roomid = 7, fromAccid = "sys", toAccids = {"x1"},
                                                            msgList = {commsease.text("inner")}} and "sent"
                               end
                             end})
    assert.equal(2, report.ok)
    assert.matches("already running", tried[1])
    assert.matches("already running", tried[2])
    assert.matches("cannot close", tried[3])
    assert.equal("sent", tried[4])
    assert.is_false(c:is_closed())
    local again = c:fanout{roomid = 7, fromAccid = "sys", toAccids = accids(3), msgList = messages(1, "again")}
    assert.equal(1, again.ok)
    c:close()
  end)

  it("keeps the order of batches to the same recipients when the first is resent", function()
    local c = new_client()
    emu:faults{{action = "status", status = 502}}
    local report = c:fanout({roomid = 8, fromAccid = "sys", toAccids = accids(3), msgList = messages(15)},
                            {backoff = 0.4, per_receiver_rate = 20})
    assert.equal(2, report.ok)
    local inbox = emu:inbox("pl2")
    assert.equal(15, #inbox)
    for k = 1, 15 do
      assert.equal("ann" .. k .. ":1", inbox[k].msgid_client)
    end
    c:close()
  end)

  it("aborts hundreds of waiting calls at the deadline, marking the unsent ones", function()
    local c = new_client{timeout = 5}
    emu:faults{{action = "delay", ms = 2000, when = "before"}}
    local report = c:fanout({roomid = 10, fromAccid = "sys", toAccids = accids(30000), msgList = messages(1)},
                            {deadline = 0.5, concurrency = 1})
    assert.equal(300, report.calls)
    assert.equal(300, report.failed)
    assert.is_true(report.results[1].err.sent)   -- in flight when the deadline came
    assert.is_false(report.results[2].err.sent)  -- never sent
    assert.equal("deadline", report.failures[300].reason)
    c:close()
  end)

  it("stops at the deadline and reports what did not finish", function()
    local c = new_client{timeout = 5}
    emu:faults{{action = "delay", ms = 3000, when = "before", count = 10}}
    local t0 = helpers.now()
    local report = c:fanout({roomid = 6, fromAccid = "sys", toAccids = accids(200), msgList = messages(2)},
                            {deadline = 0.4})
    assert.is_true(helpers.now() - t0 < 2)
    assert.equal(2, report.calls)
    assert.equal(2, report.failed)
    assert.equal(4, #report.failures)
    for _, f in ipairs(report.failures) do assert.equal("deadline", f.reason) end
    c:close()
  end)

  it("returns nil, err for invalid params and sends nothing", function()
    local c = new_client()
    local report, err = c:fanout{roomid = 1, fromAccid = "a", toAccids = {}, msgList = messages(1)}
    assert.is_nil(report)
    assert.equal("toAccids", err.field)
    assert.equal(0, emu:stats().requests)
    c:close()
  end)
end)
