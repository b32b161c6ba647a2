-- opts.results = "outcomes": send_all, fanout and plan keep of each message only
-- whether it was delivered (res.success[msgId] = its time, an integer) or why not
-- (res.fail[msgId] = the reason); the default keeps the full records.
local commsease = require "commsease"
local helpers = require "helpers"

local function params(prefix, n_msgs, to)
  local ml = {}
  for i = 1, n_msgs do
    ml[i] = commsease.text("hello " .. i, {msgId = prefix .. i, ext = '{"k":' .. i .. '}'})
  end
  return {roomid = 765788, fromAccid = "npc", toAccids = to or {"p1", "p2"}, msgList = ml}
end

-- the results as outcomes: per call, delivered msgId -> time, failed msgId -> reason
local function outcomes_of(results, full)
  local out = {}
  for i, r in ipairs(results) do
    if r.res then
      local ok = {}
      for id, v in pairs(r.res.success) do ok[id] = full and v.time or v end
      out[i] = {ok = ok, fail = r.res.fail, msgIds = r.res.msgIds}
    else
      out[i] = {kind = r.err.kind, code = r.err.code, message = r.err.message}
    end
  end
  return out
end

describe("opts.results", function()
  local emu, client
  setup(function()
    emu = helpers.start_emulator({"--rate-limit", "0"})
    client = helpers.client_for(emu, {rate_limit = 0})
  end)
  teardown(function() client:close(); emu:stop() end)
  before_each(function() emu:reset() end)

  it("send_all keeps only time per delivered message, the reason per failed one", function()
    local list = {params("oa", 3), params("ob", 2), {roomid = 765788}}
    -- one message refused by the service in the first call
    emu:faults{{action = "fail_msg", match = {msgId = "oa2"}, reason = "anti-spam hit"}}
    local results = client:send_all(list, {results = "outcomes"})
    assert.equal(3, #results)
    local r1 = assert(results[1].res)
    assert.equal(200, r1.code)
    assert.same({"oa1", "oa2", "oa3"}, r1.msgIds)
    assert.matches("^%x+$", r1.request_id)
    for _, id in ipairs{"oa1", "oa3"} do
      assert.equal("integer", helpers.math_type(r1.success[id]), id)
      assert.is_true(r1.success[id] > 1600000000000)
    end
    assert.is_nil(r1.success.oa2)
    assert.equal("anti-spam hit", r1.fail.oa2)
    assert.equal("integer", helpers.math_type(results[2].res.success.ob1))
    assert.equal("invalid", results[3].err.kind) -- errors are as they always are
  end)

  it("gives the same outcomes as the full results, over the same answers", function()
    local function run(mode)
      emu:reset()
      emu:faults{{action = "fail_msg", match = {msgId = "s2"}, reason = "no"},
                 {action = "code", code = 13004, desc = "sender muted", match = {msgId = "t1"}}}
      local list = {params("s", 3), params("t", 1), params("u", 2)}
      return client:send_all(list, {results = mode, concurrency = 1})
    end
    local full, outc = run(nil), run("outcomes")
    local a, b = outcomes_of(full, true), outcomes_of(outc, false)
    -- the times differ between the runs; whether each message has one does not
    for i = 1, #a do
      if a[i].ok then
        for id in pairs(a[i].ok) do a[i].ok[id] = "time" end
        for id in pairs(b[i].ok) do b[i].ok[id] = helpers.math_type(b[i].ok[id]) == "integer" and "time" end
      end
    end
    assert.same(a, b)
    assert.equal("api", b[2].kind)
    assert.equal(13004, b[2].code)
    -- the default keeps the whole record
    assert.equal("hello 1", full[1].res.success.s1.attach)
    assert.equal(765788, full[1].res.success.s1.roomId)
  end)

  it("fanout reports the same with outcomes, and its results hold no records", function()
    local to = {}
    for i = 1, 250 do to[i] = "f" .. i end
    local function run(mode)
      emu:reset()
      emu:faults{{action = "fail_msg", match = {msgId = "fm2:2"}, reason = "spam", count = 1}}
      return assert(client:fanout(params("fm", 12, to), {results = mode, per_receiver_rate = 0}))
    end
    local full, outc = run("full"), run("outcomes")
    for _, k in ipairs{"calls", "ok", "failed", "messages", "recipients"} do
      assert.equal(full[k], outc[k], k)
    end
    assert.same(full.failures, outc.failures)
    assert.equal(1, #outc.failures)
    assert.equal("spam", outc.failures[1].reason)
    for _, r in ipairs(outc.results) do
      for _, v in pairs(r.res.success) do assert.equal("integer", helpers.math_type(v)) end
    end
  end)

  it("plan keeps outcomes too", function()
    local plan = client:plan(params("pl", 2), {results = "outcomes"})
    while true do
      local job, wait = plan:next()
      if not job then
        if wait == nil then break end
        require("socket").sleep(wait)
      else
        local status, body = helpers.http(job.method, job.url, job.headers, job.body, job.timeout)
        plan:done(job.id, status, body)
      end
    end
    local report = plan:report()
    assert.equal(1, report.ok)
    assert.equal("integer", helpers.math_type(report.results[1].res.success["pl1:1"]))
  end)

  it("holds far less memory for many calls", function()
    local list = {}
    for i = 1, 60 do list[i] = params("mem" .. i .. "-", 10) end
    -- what the results hold: the heap with them, less the heap once they are
    -- dropped (so that garbage of earlier specs freed meanwhile cannot count)
    local function held(mode)
      emu:reset()
      local results = client:send_all(list, {results = mode})
      for i = 1, #list do assert(results[i].res, "call " .. i) end
      local n = #results
      -- twice: a cycle frees what the previous one only finalized
      collectgarbage("collect"); collectgarbage("collect")
      local with = collectgarbage("count")
      results = nil -- luacheck: ignore 311
      collectgarbage("collect"); collectgarbage("collect")
      return with - collectgarbage("count"), n
    end
    local full_kib, n1 = held("full")
    local out_kib, n2 = held("outcomes")
    assert.is_true(out_kib * 3 < full_kib,
      string.format("outcomes hold %.0f KiB, full results %.0f KiB", out_kib, full_kib))
    assert.is_true(out_kib > 0)
    assert.equal(n1, n2)
  end)

  it("refuses another value (misuse raises)", function()
    assert.has_error(function() client:send_all({params("x", 1)}, {results = "some"}) end,
      'client:send_all: option \'results\' must be "full" or "outcomes" (argument #2)')
    assert.has_error(function() client:fanout(params("x", 1), {results = 1}) end)
    assert.has_error(function() client:plan(params("x", 1), {results = true}) end)
  end)
end)
