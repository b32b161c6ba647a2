-- client:stats() counts what a client did (calls and attempts per API path,
-- answers by API code and HTTP status, transport failures by kind, resends,
-- 416 pauses, latency quantiles), holding nothing secret; opts.on_attempt sees
-- every attempt, its errors caught and counted; commsease.prometheus writes
-- valid Prometheus text exposition format.
local commsease = require "commsease"
local helpers = require "helpers"

local BATCH = "chatroom/batchSendMsgToSomeone.action"

-- A strict reader of the text exposition format (version 0.0.4): HELP and TYPE
-- once per family and before its samples, metric and label names well formed,
-- label values escaped, no label named twice, no sample twice, counters named
-- *_total, summaries with quantile/_sum/_count, values numbers.
local function parse_exposition(text)
  assert.equal("\n", text:sub(-1), "the text ends with a newline")
  local families, samples, seen, current = {}, {}, {}, nil
  local NAME = "^[%a_:][%w_:]*$"
  for line in text:gmatch("([^\n]*)\n") do
    if line:sub(1, 1) == "#" then
      local what, name, rest = line:match("^# (%u+) (%S+) ?(.*)$")
      assert.truthy(what, "a comment line: " .. line)
      assert.truthy(name:match(NAME), "metric name " .. name)
      local f = families[name] or {name = name, samples = 0}
      families[name] = f
      if what == "HELP" then
        assert.is_nil(f.help, "HELP twice for " .. name)
        assert.is_nil(rest:gsub("\\[\\n]", ""):find("\\", 1, true), "HELP escapes: " .. line)
        f.help = rest
      elseif what == "TYPE" then
        assert.is_nil(f.type, "TYPE twice for " .. name)
        assert.equal(0, f.samples, "TYPE after samples of " .. name)
        assert.truthy(({counter = 1, gauge = 1, summary = 1, histogram = 1, untyped = 1})[rest], rest)
        f.type = rest
        if rest == "counter" then assert.truthy(name:match("_total$"), "counter " .. name) end
        current = f
      end
    else
      local name, rest = line:match("^([%a_:][%w_:]*)(.*)$")
      assert.truthy(name, "a sample line: " .. line)
      local labels, order = {}, {}
      if rest:sub(1, 1) == "{" then
        local i = 2
        while rest:sub(i, i) ~= "}" do
          local lname, after = rest:match("^([%a_][%w_]*)=\"()", i)
          assert.truthy(lname, "a label at " .. i .. " in " .. line)
          assert.is_nil(labels[lname], "label " .. lname .. " twice in " .. line)
          i = after
          local v = {}
          while true do
            local c = rest:sub(i, i)
            assert.are_not.equal("", c, "an unterminated label value in " .. line)
            if c == "\\" then
              local n = rest:sub(i + 1, i + 1)
              assert.truthy(n == "\\" or n == "\"" or n == "n", "escape \\" .. n .. " in " .. line)
              v[#v + 1] = n == "n" and "\n" or n
              i = i + 2
            elseif c == "\"" then
              i = i + 1
              break
            else
              assert.are_not.equal("\n", c)
              v[#v + 1] = c
              i = i + 1
            end
          end
          labels[lname] = table.concat(v)
          order[#order + 1] = lname
          if rest:sub(i, i) == "," then i = i + 1 end
        end
        rest = rest:sub(i + 1)
      end
      local value = rest:match("^ (%S+)$")
      assert.truthy(value, "a value in " .. line)
      assert.truthy(tonumber(value) or value == "+Inf" or value == "-Inf" or value == "NaN", value)
      assert.truthy(current, "a sample before any TYPE: " .. line)
      local base = current.name
      assert.truthy(name == base or (current.type == "summary" and
                    (name == base .. "_sum" or name == base .. "_count")),
                    name .. " outside its family " .. base)
      if current.type == "summary" and name == base then assert.truthy(labels.quantile, line) end
      current.samples = current.samples + 1
      table.sort(order)
      local key = {name}
      for _, k in ipairs(order) do key[#key + 1] = k .. "=" .. labels[k] end
      key = table.concat(key, "\0")
      assert.is_nil(seen[key], "a sample twice: " .. line)
      seen[key] = true
      samples[#samples + 1] = {name = name, labels = labels, value = tonumber(value)}
    end
  end
  for name, f in pairs(families) do
    assert.truthy(f.help and f.type, "HELP and TYPE for " .. name)
  end
  return samples, families
end

local function find(samples, name, labels)
  for _, s in ipairs(samples) do
    if s.name == name then
      local ok = true
      for k, v in pairs(labels or {}) do if s.labels[k] ~= v then ok = false end end
      if ok then return s.value end
    end
  end
end

describe("commsease.prometheus", function()
  local stats = {
    paths = {[BATCH] = {calls = 3, attempts = 4,
                        latency = {count = 3, sum = 0.3, p50 = 0.1, p90 = 0.2, p99 = 0.25, max = 0.25}},
             ["chatroom/x\"y\\z"] = {calls = 1, attempts = 1, latency = {count = 1, sum = 1.5, p50 = 1.5,
                                                                        p90 = 1.5, p99 = 1.5, max = 1.5}}},
    codes = {["200"] = 3, ["414"] = 1}, http = {["200"] = 4, ["502"] = 1},
    transport = {connect = 1, timeout = 0, lost = 2, too_big = 0, ["local"] = 0},
    resends = 2, pauses = 1, repeats = 1, hooks = {calls = 5, errors = 1},
    rate_store = "local", rate_store_fallbacks = 0,
  }

  it("writes valid text exposition format with every counter", function()
    local text = commsease.prometheus(stats)
    local s, fam = parse_exposition(text)
    assert.equal(3, find(s, "commsease_calls_total", {path = BATCH}))
    assert.equal(4, find(s, "commsease_attempts_total", {path = BATCH}))
    assert.equal(1, find(s, "commsease_calls_total", {path = "chatroom/x\"y\\z"}))
    assert.equal(0.1, find(s, "commsease_call_duration_seconds", {path = BATCH, quantile = "0.5"}))
    assert.equal(0.2, find(s, "commsease_call_duration_seconds", {path = BATCH, quantile = "0.9"}))
    assert.equal(0.25, find(s, "commsease_call_duration_seconds", {path = BATCH, quantile = "0.99"}))
    assert.equal(0.3, find(s, "commsease_call_duration_seconds_sum", {path = BATCH}))
    assert.equal(3, find(s, "commsease_call_duration_seconds_count", {path = BATCH}))
    assert.equal(0.25, find(s, "commsease_call_duration_max_seconds", {path = BATCH}))
    assert.equal(1, find(s, "commsease_answers_total", {code = "414"}))
    assert.equal(1, find(s, "commsease_http_responses_total", {status = "502"}))
    assert.equal(2, find(s, "commsease_transport_failures_total", {kind = "lost"}))
    assert.equal(2, find(s, "commsease_resends_total"))
    assert.equal(1, find(s, "commsease_rate_limit_pauses_total"))
    assert.equal(1, find(s, "commsease_repeated_requests_total"))
    assert.equal(1, find(s, "commsease_hook_errors_total"))
    assert.equal(1, find(s, "commsease_rate_store_info", {value = "local"}))
    assert.equal("summary", fam.commsease_call_duration_seconds.type)
  end)

  it("adds constant labels to every sample, escaped", function()
    local text = commsease.prometheus(stats, {app = "game \"one\"\\\nx", shard = 3})
    local s = parse_exposition(text)
    for _, x in ipairs(s) do
      assert.equal("game \"one\"\\\nx", x.labels.app, x.name)
      assert.equal("3", x.labels.shard)
    end
    assert.truthy(text:find('app="game \\"one\\"\\\\\\nx"', 1, true))
  end)

  it("writes an empty client's stats as valid text", function()
    parse_exposition(commsease.prometheus({}))
    parse_exposition(commsease.prometheus({paths = {}, codes = {}, http = {}, transport = {}}))
  end)

  it("raises on misuse: not a table, bad label names, labels the metrics use", function()
    for _, args in ipairs({
      {nil}, {"x"}, {stats, "x"}, {stats, {["bad-name"] = "v"}}, {stats, {["1x"] = "v"}},
      {stats, {__x = "v"}}, {stats, {path = "v"}}, {stats, {quantile = "v"}}, {stats, {app = {}}},
    }) do
      assert.is_false((pcall(commsease.prometheus, args[1], args[2])))
    end
  end)
end)

describe("client:stats", function()
  local SECRET = "stats-Secret-93c1"
  local emu
  setup(function() emu = helpers.start_emulator({"--rate-limit", "0", "--secret", SECRET}) end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)

  local function text_params(id)
    return {roomid = 7, fromAccid = "a", toAccids = {"b"}, msgList = {commsease.text("x", {msgId = id})}}
  end

  it("starts at zero and counts calls, attempts, codes and statuses per path", function()
    local c = helpers.client_for(emu)
    local s = c:stats()
    assert.same({}, s.paths)
    assert.equal(0, s.resends)
    for i = 1, 3 do assert(c:send(text_params("s" .. i))) end
    assert.truthy(c:send(text_params("s1")).fail.s1) -- a repeat: in fail, the call still 200
    emu:faults({{action = "code", code = 13004, desc = "muted"}})
    assert.is_nil((c:send(text_params("s9"))))
    assert(c:send_one{roomid = 7, fromAccid = "a", toAccids = {"b"}, msgType = 0, attach = "one"})
    c:call("user/create.action", {accid = "x"})
    s = c:stats()
    local batch = s.paths[BATCH]
    assert.equal(5, batch.calls)
    assert.equal(5, batch.attempts)
    assert.equal(1, s.paths["chatroom/sendMsgToSomeone.action"].calls)
    assert.equal(1, s.paths["user/create.action"].calls)
    assert.equal(5, s.codes["200"])
    assert.equal(1, s.codes["13004"])
    assert.equal(6, s.http["200"])
    assert.equal(1, s.http["404"])
    assert.equal(5, batch.latency.count)
    local l = batch.latency
    assert.is_true(l.p50 > 0 and l.p50 <= l.p90 and l.p90 <= l.p99 and l.p99 <= l.max)
    assert.is_true(l.sum >= l.max and l.max < 5)
    c:close()
  end)

  it("counts failovers as attempts and transport failures by kind", function()
    local c = helpers.client_for(emu, {endpoints = {"http://127.0.0.1:9/nimserver", emu.base}, retries = 1})
    assert(c:send(text_params("f1")))
    local s = c:stats()
    assert.equal(1, s.paths[BATCH].calls)
    assert.equal(2, s.paths[BATCH].attempts)
    assert.equal(1, s.transport.connect)
    c:close()
    c = helpers.client_for(emu, {timeout = 0.2, retries = 0})
    emu:faults({{action = "delay", ms = 600}})
    assert.is_nil((c:send(text_params("f2"))))
    assert.equal(1, c:stats().transport.timeout)
    emu:faults({{action = "close"}})
    assert.is_nil((c:send(text_params("f3"))))
    assert.equal(1, c:stats().transport.lost + c:stats().transport.connect)
    c:close()
  end)

  it("counts fan-out resends and 416 pauses", function()
    local c = helpers.client_for(emu, {rate_limit_penalty = 0.2})
    emu:faults({{action = "status", status = 503}, {action = "code", code = 416, desc = "slow down"}})
    local report = assert(c:fanout({roomid = 7, fromAccid = "a", toAccids = {"b", "c"},
                                    msgList = {commsease.text("x", {msgId = "fr"})}}, {backoff = 0.01}))
    assert.equal(1, report.ok)
    local s = c:stats()
    assert.equal(1, s.paths[BATCH].calls)
    assert.equal(3, s.paths[BATCH].attempts)
    assert.equal(2, s.resends)
    assert.equal(1, s.pauses)
    assert.equal(1, s.http["503"])
    assert.equal(1, s.codes["416"])
    c:close()
  end)

  -- client:plan's jobs are counted from what plan:done hands back, as send_all's
  -- transfers are: a job's time runs from plan:next to plan:done
  local function drive_plan(plan, answer) -- answer(job, n) -> status, body | nil, failure
    local n = 0
    while true do
      local job, wait = plan:next()
      if job then
        n = n + 1
        plan:done(job.id, answer(job, n))
      elseif wait then
        helpers.sleep(wait)
      else
        return plan:report()
      end
    end
  end
  local function over_http(job) return helpers.http(job.method, job.url, job.headers, job.body, job.timeout) end

  it("counts plan jobs as fanout counts its calls: attempts, resends, pauses, codes, latency", function()
    local params = {roomid = 7, fromAccid = "a", toAccids = {"b", "c"}, msgList = {commsease.text("x")}}
    local faults = {{action = "status", status = 503}, {action = "code", code = 416, desc = "slow down"}}
    local function counted(s)
      local p = s.paths[BATCH]
      return {calls = p.calls, attempts = p.attempts, latency = p.latency.count, resends = s.resends,
              pauses = s.pauses, repeats = s.repeats, codes = s.codes, http = s.http,
              transport = s.transport, hooks = s.hooks}
    end
    local hook = function() end
    local a = helpers.client_for(emu, {rate_limit_penalty = 0.2, on_attempt = hook})
    emu:faults(faults)
    assert.equal(1, assert(a:fanout(params, {backoff = 0.01})).ok)
    local want = counted(a:stats())
    emu:reset()
    local b = helpers.client_for(emu, {rate_limit_penalty = 0.2, on_attempt = hook})
    emu:faults(faults)
    local report = drive_plan(assert(b:plan(params, {backoff = 0.01})), over_http)
    assert.equal(1, report.ok)
    local got = counted(b:stats())
    assert.same(want, got)
    assert.equal(3, got.attempts) -- (what fanout's own spec above counts)
    assert.equal(2, got.resends)
    assert.equal(1, got.pauses)
    assert.equal(3, got.hooks.calls)
    local l = b:stats().paths[BATCH].latency
    assert.is_true(l.max >= 0.2 and l.max < 5, "the call's latency spans the 416 penalty: " .. l.max)
    a:close()
    b:close()
  end)

  it("counts the transport failures a plan's driver reports, by kind, and shows them to on_attempt", function()
    local seen = {}
    local c = helpers.client_for(emu, {on_attempt = function(a) seen[#seen + 1] = a end})
    local script = {
      {nil, {sent = false, message = "connection refused", code = 7}},
      {nil, {sent = true, message = "timeout", code = 28}},
      {nil, {sent = true, message = "connection reset by peer"}},
    }
    local report = drive_plan(assert(c:plan(text_params("pt"), {retries = 5, backoff = 0.01})),
      function(job, n)
        if script[n] then return script[n][1], script[n][2] end
        return over_http(job)
      end)
    assert.equal(1, report.ok, report.results[1].err and tostring(report.results[1].err))
    local s = c:stats()
    assert.same({connect = 1, timeout = 1, lost = 1, too_big = 0, ["local"] = 0}, s.transport)
    assert.equal(1, s.paths[BATCH].calls)
    assert.equal(4, s.paths[BATCH].attempts)
    assert.equal(1, s.paths[BATCH].latency.count)
    assert.same({["200"] = 1}, s.http)
    assert.same({["200"] = 1}, s.codes)
    assert.equal(4, #seen)
    assert.same({"connect", "timeout", "lost"}, {seen[1].transport, seen[2].transport, seen[3].transport})
    assert.equal(200, seen[4].status)
    for n, a in ipairs(seen) do
      assert.equal(n, a.attempt)
      assert.equal(report.results[1].res.request_id, a.request_id)
      assert.is_true(a.ms >= 0 and a.ms < 5000)
    end
    assert.is_false(seen[1].resend)
    for n = 2, 4 do assert.is_true(seen[n].resend) end -- (fanout marks every attempt after the first)
    assert.equal(3, s.resends)
    c:close()
  end)

  it("refuses the plan's own methods inside on_attempt (counted as hook errors), the plan goes on", function()
    local plan, inner
    local c = helpers.client_for(emu, {on_attempt = function()
      inner = {pcall(plan.next, plan)}
      error(inner[2], 0)
    end})
    plan = assert(c:plan(text_params("pn")))
    local report = drive_plan(plan, over_http)
    assert.equal(1, report.ok)
    assert.is_false(inner[1])
    assert.matches("plan:next called from on_progress or on_attempt", inner[2])
    assert.same({calls = 1, errors = 1}, c:stats().hooks)
    c:close()
  end)

  it("keeps the code a plan's driver gives a transport failure in the error value", function()
    local c = helpers.client_for(emu)
    local report = drive_plan(assert(c:plan(text_params("pc"), {retries = 0})), function()
      return nil, {sent = true, message = "timeout", code = 28}
    end)
    local err = report.results[1].err
    assert.equal("transport", err.kind)
    assert.equal(28, err.code)
    assert.is_true(err.sent)
    assert.matches("transport 28: timeout", tostring(err))
    -- an answer over 1 MiB: a response error, counted as send counts it (too_big, no status);
    -- sent, and retryable as every response error is (with retries, resent once)
    report = drive_plan(assert(c:plan(text_params("pb"), {retries = 0})), function()
      return 200, ("x"):rep(1024 * 1024 + 1)
    end)
    assert.equal("response", report.results[1].err.kind)
    assert.is_true(report.results[1].err.sent)
    assert.is_true(report.results[1].err.retryable)
    local s = c:stats()
    assert.equal(1, s.transport.too_big)
    assert.equal(1, s.transport.timeout)
    assert.is_nil(s.http["200"])
    assert.equal(2, s.paths[BATCH].calls)
    local plan = assert(c:plan(text_params("pd")))
    local job = plan:next()
    assert.has_error(function() plan:done(job.id, nil, {sent = true, code = "timeout"}) end)
    assert.has_error(function() plan:done(job.id, nil, {sent = true, code = 0}) end)
    c:close()
  end)

  it("holds nothing secret, and its Prometheus text is valid", function()
    local c = helpers.client_for(emu)
    assert(c:send(text_params("p1")))
    local s = c:stats()
    local function walk(t, depth)
      assert.is_true(depth < 10)
      for k, v in pairs(t) do
        assert.is_nil(tostring(k):find(SECRET, 1, true))
        if type(v) == "table" then walk(v, depth + 1)
        else assert.is_nil(tostring(v):find(SECRET, 1, true)) end
      end
    end
    walk(s, 0)
    assert.truthy(require("cjson").encode(s)) -- plain data: it encodes as JSON
    local text = commsease.prometheus(s, {app = "spec"})
    assert.is_nil(text:find(SECRET, 1, true))
    local samples = parse_exposition(text)
    assert.equal(1, find(samples, "commsease_calls_total", {path = BATCH, app = "spec"}))
    c:close()
  end)

  it("is a fresh table each time, and works on a closed client", function()
    local c = helpers.client_for(emu)
    local a, b = c:stats(), c:stats()
    assert.are_not.equal(a, b)
    c:close()
    assert.equal("table", type(c:stats().paths))
  end)
end)

describe("opts.on_attempt", function()
  local emu
  setup(function() emu = helpers.start_emulator({"--rate-limit", "0"}) end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)

  local function params(id)
    return {roomid = 7, fromAccid = "a", toAccids = {"b"}, msgList = {commsease.text("x", {msgId = id})}}
  end

  it("sees every attempt: endpoint, path, status, code, ms, attempt, request_id, resend", function()
    local seen = {}
    local dead = "http://127.0.0.1:9/nimserver"
    local c = helpers.client_for(emu, {endpoints = {dead, emu.base}, retries = 1,
                                       on_attempt = function(a) seen[#seen + 1] = a end})
    local res = assert(c:send(params("h1")))
    assert.equal(2, #seen)
    assert.equal(dead, seen[1].endpoint)
    assert.equal("connect", seen[1].transport)
    assert.is_nil(seen[1].status)
    assert.equal(1, seen[1].attempt)
    assert.equal(emu.base, seen[2].endpoint)
    assert.equal(BATCH, seen[2].path)
    assert.equal(200, seen[2].status)
    assert.equal(200, seen[2].code)
    assert.equal(2, seen[2].attempt)
    assert.is_false(seen[2].resend)
    assert.equal(res.request_id, seen[1].request_id)
    assert.equal(res.request_id, seen[2].request_id)
    assert.is_true(seen[2].ms > 0 and seen[2].ms < 5000)
    c:close()
  end)

  it("sees send_all and fanout attempts, resends marked", function()
    local seen = {}
    local c = helpers.client_for(emu, {on_attempt = function(a) seen[#seen + 1] = a end})
    c:send_all({params("h2"), params("h3")})
    assert.equal(2, #seen)
    seen = {}
    emu:faults({{action = "status", status = 503}})
    assert(c:fanout({roomid = 7, fromAccid = "a", toAccids = {"b"}, msgList = {commsease.text("x")}},
                    {backoff = 0.01}))
    assert.equal(2, #seen)
    assert.equal(503, seen[1].status)
    assert.is_false(seen[1].resend)
    assert.is_true(seen[2].resend)
    assert.equal(2, seen[2].attempt)
    c:close()
  end)

  it("catches and counts errors raised in it; the call goes on", function()
    local c = helpers.client_for(emu, {on_attempt = function() error("hook broke") end})
    local res = assert(c:send(params("h4")))
    assert.truthy(res.success.h4)
    local out = c:send_all({params("h5")})
    assert.truthy(out[1].res)
    local s = c:stats()
    assert.equal(2, s.hooks.calls)
    assert.equal(2, s.hooks.errors)
    c:close()
  end)

  it("may read stats, but the client's own calls raise inside it (counted as errors)", function()
    local c
    local got, inner
    c = helpers.client_for(emu, {on_attempt = function()
      got = c:stats().paths[BATCH].attempts
      inner = {pcall(c.send, c, params("inner"))}
      c:close()
    end})
    assert(c:send(params("h6")))
    assert.equal(1, got)
    assert.is_false(inner[1])
    assert.matches("on_attempt", inner[2])
    assert.is_false(c:is_closed())
    assert.equal(1, c:stats().hooks.errors) -- the close
    assert.equal(1, #emu:inbox("b"))
    c:close()
  end)

  it("does not keep a client alive that its hook refers to", function()
    local weak = setmetatable({}, {__mode = "v"})
    do
      local c
      c = helpers.client_for(emu, {on_attempt = function() return c end})
      weak[1] = c
    end
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak[1])
  end)

  it("must be a function", function()
    assert.is_false((pcall(helpers.client_for, emu, {on_attempt = "print"})))
  end)
end)
