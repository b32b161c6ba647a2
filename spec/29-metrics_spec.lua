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
    codes = {[200] = 3, [414] = 1}, http = {[200] = 4, [502] = 1},
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
