-- Attacks on client:plan as a careless or hostile caller drives it: outcomes
-- handed to the wrong plan, twice, after the report, with the wrong types;
-- plans abandoned and collected; the client closed under a plan; what `sent`
-- says when the deadline settles calls.  Misuse raises, nothing crashes, the
-- secret shows nowhere.
local commsease = require "commsease"
local helpers = require "helpers"

local OK_ANSWER = '{"code":200,"success":[],"fail":[]}'

local function params(n, prefix, nmsgs)
  local acc, msgs = {}, {}
  for i = 1, n do acc[i] = prefix .. "a" .. i end
  for i = 1, nmsgs or 1 do msgs[i] = commsease.text("hi", {msgId = prefix .. "m" .. i}) end
  return {roomid = 42, fromAccid = "alice", toAccids = acc, msgList = msgs}
end

local function client(over)
  local o = {appkey = "demo-appkey", secret = "s3cr3t-attack-plan", endpoint = "http://127.0.0.1:9/nimserver",
             rate_limit = 0}
  for k, v in pairs(over or {}) do o[k] = v end
  return commsease.new(o)
end

describe("attack: client:plan misuse", function()
  it("refuses a job id handed out by another plan, even when this plan has a job out", function()
    -- every plan used to number its jobs 1, 2, 3, ...: plan B took plan A's answer
    -- for its own job 1 and reported B's messages "missing from the answer"
    local c = client()
    for round = 1, 20 do
      local pa = assert(c:plan(params(2, "x" .. round)))
      local pb = assert(c:plan(params(2, "y" .. round)))
      local ja, jb = pa:next(), pb:next()
      assert.is_table(ja)
      assert.is_table(jb)
      assert.are_not.equal(ja.id, jb.id)
      local ok, err = pcall(pb.done, pb, ja.id, 200, OK_ANSWER)
      assert.is_false(ok)
      assert.matches("not a job of this plan", err)
      -- each plan still takes its own
      pa:done(ja.id, 200, OK_ANSWER)
      pb:done(jb.id, 200, OK_ANSWER)
    end
    -- plans of two clients too
    local c2 = client()
    local pa, pb = c:plan(params(2, "u")), c2:plan(params(2, "v"))
    local ja, jb = pa:next(), pb:next()
    assert.are_not.equal(ja.id, jb.id)
    assert.has_error(function() pb:done(ja.id, 200, OK_ANSWER) end)
    c:close()
    c2:close()
  end)

  it("job ids stay exact integers on every Lua (below 2^53)", function()
    local c = client()
    for _ = 1, 50 do
      local p = c:plan(params(1, "i"))
      local j = p:next()
      assert.is_true(j.id >= 1 and j.id < 2 ^ 53 and j.id == math.floor(j.id))
    end
    c:close()
  end)

  it("raises on an outcome handed back twice, an unknown id, or after the report", function()
    local c = client()
    local p = c:plan(params(2, "t"))
    local j = p:next()
    p:done(j.id, 200, OK_ANSWER)
    assert.has_error(function() p:done(j.id, 200, OK_ANSWER) end)
    local job, wait = p:next()
    assert.is_nil(job)
    assert.is_nil(wait)
    local r = p:report()
    assert.equal(1, r.calls)
    assert.has_error(function() p:done(j.id, 200, OK_ANSWER) end)
    assert.has_error(function() p:done(j.id + 1, 200, OK_ANSWER) end)
    assert.has_error(function() p:done(-1, 200, OK_ANSWER) end)
    assert.has_error(function() p:done(2 ^ 62, 200, OK_ANSWER) end)
    -- the report is still whole, and again the same
    assert.same(r.failures, p:report().failures)
    assert.equal(r.ok + r.failed, p:report().calls)
    c:close()
  end)

  it("raises on wrong types without taking the job, and reads a failure table raw", function()
    local c = client()
    local p = c:plan(params(2, "w"))
    local j = p:next()
    local bad = {
      {j.id, "200", OK_ANSWER}, {j.id, 200.5, OK_ANSWER}, {j.id, 99, OK_ANSWER},
      {j.id, 1000, OK_ANSWER}, {j.id, 200, 42}, {j.id, 200, nil}, {j.id, nil, "x"},
      {j.id, nil, {sent = "yes"}}, {j.id, nil, {message = 42}}, {tostring(j.id), 200, OK_ANSWER},
      {j.id + 0.5, 200, OK_ANSWER}, {nil, 200, OK_ANSWER}, {{}, 200, OK_ANSWER},
    }
    for _, a in ipairs(bad) do
      local ok = pcall(p.done, p, a[1], a[2], a[3])
      assert.is_false(ok)
    end
    assert.has_error(function() p.done(nil, j.id, 200, OK_ANSWER) end)
    assert.has_error(function() p.done({}, j.id, 200, OK_ANSWER) end)
    assert.has_error(function() p.next(c) end)
    -- fields behind __index (that raises) are not read: sent left out counts as sent
    local hostile = setmetatable({}, {__index = function() error("read through __index") end,
                                      __len = function() error("len") end})
    p:done(j.id, nil, hostile)
    local j2 = p:next()
    assert.is_nil(j2) -- a backoff wait: the call was taken as ambiguous
    c:close()
  end)

  it("plans abandoned mid-way are collected with everything they hold", function()
    local c = client({rate_limit = 0})
    local weak = setmetatable({}, {__mode = "k"})
    for k = 1, 300 do
      local p = c:plan(params(250, "g" .. k, 3), {concurrency = 2,
                       on_progress = function() end})
      local j = p:next()
      p:next()
      weak[p] = true
      if k % 3 == 0 then p:done(j.id, nil, {sent = false, message = "refused"}) end
    end
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(weak))
    -- the client is unharmed
    local p = c:plan(params(2, "after"))
    assert.is_table(p:next())
    c:close()
  end)

  it("a client closed under a plan: next and done raise, a finished report still reads", function()
    local c = client({rate_limit = 0})
    local closed_in_progress = 0
    local p = c:plan(params(250, "cl", 3), {concurrency = 1, deadline = 0.05,
                     on_progress = function() closed_in_progress = closed_in_progress + 1; c:close() end})
    local j = p:next()
    helpers.sleep(0.1)
    -- the deadline settles every call inside next, on_progress closing the client each time
    local job, wait = p:next()
    assert.is_nil(job)
    assert.is_nil(wait)
    assert.equal(3, closed_in_progress)
    assert.has_error(function() p:done(j.id, 200, OK_ANSWER) end)
    local r = p:report()
    assert.equal(3, r.failed)
    for _, res in ipairs(r.results) do
      assert.is_true(res.err.deadline)
      assert.is_nil(tostring(res.err):find("s3cr3t", 1, true))
    end
    local p2 = client():plan(params(2, "x"))
    assert.has_no_error(function() return tostring(p2) end)
  end)

  it("the deadline says sent = false only for calls that never left", function()
    local c = client({rate_limit = 0, retries = 3})
    -- call 1: in flight at the deadline; call 2: refused once (sent = false), then waiting
    -- on the backoff; call 3: never started
    local p = c:plan(params(250, "dl", 3), {concurrency = 2, deadline = 0.3, backoff = 10})
    local j1, j2 = p:next(), p:next()
    assert.is_table(j1)
    assert.is_table(j2)
    p:done(j2.id, nil, {sent = false, message = "connection refused"})
    helpers.sleep(0.35)
    local job, wait = p:next()
    assert.is_nil(job)
    assert.is_nil(wait)
    p:done(j1.id, 200, OK_ANSWER) -- late: accepted and ignored
    local r = p:report()
    local by = {}
    for i, res in ipairs(r.results) do by[i] = res.err end
    assert.is_true(by[1].deadline and by[1].sent)
    assert.is_true(by[2].deadline)
    assert.is_false(by[2].sent)
    assert.is_true(by[3].deadline)
    assert.is_false(by[3].sent)
    c:close()
  end)

  it("the secret is in no job, error, report or tostring", function()
    local c = client({rate_limit = 0})
    local p = c:plan(params(250, "sec", 2), {concurrency = 2})
    local seen = {}
    local function scan(v, depth)
      depth = depth or 0
      if type(v) == "table" and depth < 6 then
        for k, x in pairs(v) do scan(k, depth + 1); scan(x, depth + 1) end
      else
        seen[#seen + 1] = tostring(v)
      end
    end
    local j1, j2 = p:next(), p:next()
    scan(j1)
    scan(j2)
    p:done(j1.id, 200, '{"code":414,"desc":"bad"}')
    p:done(j2.id, nil, {sent = true, message = "reset"})
    local j3
    repeat
      local w
      j3, w = p:next()
      if not j3 and w then helpers.sleep(w) end
    until j3
    scan(j3)
    p:done(j3.id, 502, "<html>bad gateway</html>")
    repeat
      local j, w = p:next()
      if j then scan(j); p:done(j.id, 200, "{not json") elseif w then helpers.sleep(w) else break end
    until false
    local r = p:report()
    scan(r)
    for _, res in ipairs(r.results) do if res.err then seen[#seen + 1] = tostring(res.err) end end
    seen[#seen + 1] = tostring(p)
    seen[#seen + 1] = tostring(c)
    for _, s in ipairs(seen) do assert.is_nil(s:find("s3cr3t", 1, true), s) end
    c:close()
  end)
end)
