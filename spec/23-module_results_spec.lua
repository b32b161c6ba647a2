-- Answers and failures: result tables, each error kind driven through the
-- emulator's faults, connection reuse, failover, and no libcurl replay.
local commsease = require "commsease"
local helpers = require "helpers"

local function params(id)
  return {roomid = 765788, fromAccid = "npc", toAccids = {"p1", "p2"},
          msgList = {commsease.text("hello", {msgId = id or helpers.msgid("r")})}}
end

describe("results", function()
  local emu, client
  setup(function()
    emu = helpers.start_emulator({"--rate-limit", "0"})
    client = helpers.client_for(emu)
  end)
  teardown(function() client:close(); emu:stop() end)
  before_each(function() emu:reset(); emu:config{numbers_as_strings = false} end)

  for _, strings in ipairs{false, true} do
    it("has integer time, roomId and type when the service sends " ..
       (strings and "numeric strings" or "numbers"), function()
      emu:config{numbers_as_strings = strings}
      local p = params()
      p.msgList[2] = commsease.custom({a = 1}, {msgId = "c-" .. tostring(strings)})
      local res = assert(client:send(p))
      assert.equal(200, res.code)
      for _, id in ipairs(res.msgIds) do
        local m = res.success[id]
        assert.equal("integer", helpers.math_type(m.time))
        assert.equal("integer", helpers.math_type(m.roomId))
        assert.equal("integer", helpers.math_type(m.type))
        assert.equal(765788, m.roomId)
        assert.is_true(m.time > 1600000000000)
        assert.equal(id, m.msgid_client)
      end
      assert.equal(100, res.success[res.msgIds[2]].type)
    end)
  end

  it("reports a partial failure as a result, with the reason per msgId", function()
    local p = params("dup-1")
    assert(client:send(p))
    p.msgList[2] = commsease.text("new one", {msgId = "fresh-1"})
    local res, err = client:send(p)
    assert.is_nil(err)
    assert.equal("parameter resendFlag should be used for RESEND!", res.fail["dup-1"])
    assert.is_table(res.success["fresh-1"])
    assert.same({"dup-1", "fresh-1"}, res.msgIds)
    -- with resendFlag the duplicate succeeds and is not delivered twice
    p.msgList[1].resendFlag = true
    res = assert(client:send(p))
    assert.is_table(res.success["dup-1"])
    local n = 0
    for _, m in ipairs(emu:inbox("p1")) do if m.msgid_client == "dup-1" then n = n + 1 end end
    assert.equal(1, n)
  end)

  it("parse() reads answers with no client and no I/O", function()
    local res = assert(commsease.parse(200, '{"code":200,"success":[{"m1":{"time":"1668566975724",' ..
      '"roomId":"72","type":"2","msgid_client":"m1"}}],"fail":[{"m2":"bad"}]}'))
    assert.equal(1668566975724, res.success.m1.time)
    assert.equal(72, res.success.m1.roomId)
    assert.equal(2, res.success.m1.type)
    assert.equal("bad", res.fail.m2)
    res = assert(commsease.parse(200, '{"code":"200"}'))
    assert.same({}, res.success)
    assert.same({}, res.fail)
  end)

  local bad_answers = {
    {"a non-200 status", 502, "x", "http", 502, true},
    {"an API error code", 200, '{"code":13004,"desc":"sender muted"}', "api", 13004, false},
    {"a rate-limit code", 200, '{"code":416,"desc":"too many"}', "api", 416, true},
    {"a busy code", 200, '{"code":503,"desc":"busy"}', "api", 503, true},
    {"an unknown code", 200, '{"code":99999}', "api", 99999, false},
    {"non-JSON", 200, "<html>oops</html>", "response", nil, true},
    {"a truncated body", 200, '{"code":200,"success":[{"m1":{"ti', "response", nil, true},
    {"no code", 200, '{"success":[]}', "response", nil, true},
    {"a malformed success list", 200, '{"code":200,"success":{"m1":1}}', "response", nil, true},
    {"a malformed message", 200, '{"code":200,"success":[{"m1":{"time":"soon"}}]}', "response", nil, true},
    {"a JSON array", 200, "[1,2]", "response", nil, true},
  }
  for _, case in ipairs(bad_answers) do
    it("parse() turns " .. case[1] .. " into a " .. case[4] .. " error", function()
      local res, err = commsease.parse(case[2], case[3])
      assert.is_nil(res)
      assert.equal(case[4], err.kind)
      assert.equal(case[5], err.code)
      assert.equal(case[6], err.retryable)
      assert.matches("^commsease: " .. case[4], tostring(err))
    end)
  end

  it("prints long error messages whole (tostring builds no buffer around moving values)", function()
    local desc = string.rep("x", 3000) .. "END"
    local _, err = commsease.parse(200, '{"code":500,"desc":"' .. desc .. '"}')
    local text = tostring(err)
    assert.equal("commsease: api 500: " .. desc, text)
  end)

  it("parse() refuses answers over 1 MiB", function()
    local _, err = commsease.parse(200, '{"code":200,"x":"' .. string.rep("a", 1024 * 1024) .. '"}')
    assert.equal("response", err.kind)
    assert.matches("1 MiB", err.message)
  end)

  local faults = {
    {"an HTTP 503", {action = "status", status = 503}, "http", 503},
    {"an API error", {action = "code", code = 13002, desc = "chat room abnormal"}, "api", 13002},
    {"a non-JSON body", {action = "garbage"}, "response", nil},
    {"a truncated body", {action = "truncate"}, "response", nil},
    {"a closed connection", {action = "close"}, "transport", nil},
  }
  for _, f in ipairs(faults) do
    it("send() returns a " .. f[3] .. " error on " .. f[1] .. " with request_id and endpoint", function()
      emu:faults{f[2]}
      local res, err = client:send(params())
      assert.is_nil(res)
      assert.equal(f[3], err.kind)
      if f[4] then assert.equal(f[4], err.code) end
      assert.matches("^%x+$", err.request_id)
      assert.equal(emu.base, err.endpoint)
      assert.is_true(err.sent)
      assert.matches("^commsease: " .. f[3], tostring(err))
      -- and the client still works afterwards
      assert(client:send(params()))
    end)
  end

  it("send() returns a transport error, not a hang, when the answer is too slow", function()
    local slow = helpers.client_for(emu, {timeout = 0.3})
    emu:faults{{action = "delay", ms = 1500}}
    local t0 = helpers.now()
    local _, err = slow:send(params())
    assert.is_true(helpers.now() - t0 < 1.2)
    assert.equal("transport", err.kind)
    assert.equal(28, err.code) -- CURLE_OPERATION_TIMEDOUT
    assert.is_true(err.sent)
    slow:close()
  end)

  it("reuses one kept-alive connection for consecutive sends", function()
    local c = helpers.client_for(emu)
    -- each stats query is a connection of its own: measure what one costs
    local c0 = emu:stats().connections
    local before = emu:stats().connections
    local per_query = before - c0
    for _ = 1, 25 do assert(c:send(params())) end
    assert.equal(1, emu:stats().connections - before - per_query)
    c:close()
  end)

  it("does not let libcurl replay a request whose kept-alive connection died after delivery", function()
    local c = helpers.client_for(emu)
    assert(c:send(params()))                        -- the connection is now kept alive
    local before = emu:stats().requests
    emu:faults{{action = "close", after_deliver = true}}
    local res, err = c:send(params("replay-1"))
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    assert.is_true(err.sent)
    assert.is_true(err.retryable)
    assert.equal(1, emu:stats().requests - before) -- exactly one request reached the service
    local n = 0
    for _, m in ipairs(emu:inbox("p1")) do if m.msgid_client == "replay-1" then n = n + 1 end end
    assert.equal(1, n)
    c:close()
  end)
end)

describe("failover", function()
  local emu
  setup(function() emu = helpers.start_emulator({"--rate-limit", "0"}) end)
  teardown(function() emu:stop() end)

  it("moves to the next endpoint on a connect failure", function()
    local c = helpers.client_for(emu, {retries = 1, endpoints = {"http://127.0.0.1:9/nimserver", emu.base}})
    local before = emu:stats().requests
    local res = assert(c:send(params()))
    assert.equal(200, res.code)
    assert.equal(1, emu:stats().requests - before)
    c:close()
  end)

  it("moves to the next endpoint on HTTP 502", function()
    local other = helpers.start_emulator({"--rate-limit", "0"})
    finally(function() other:stop() end)
    local c = helpers.client_for(emu, {retries = 1, endpoints = {emu.base, other.base}})
    emu:faults{{action = "status", status = 502}}
    local res = assert(c:send(params("fo-502")))
    assert.is_table(res.success["fo-502"])
    local got = other:inbox("p1")
    assert.equal("fo-502", got[#got].msgid_client)
    -- the second attempt: a fresh Nonce and CheckSum, the same RequestId and body
    local first, second = emu:requests(), other:requests()
    first, second = first[#first], second[#second]
    assert.equal(first.headers.RequestId, second.headers.RequestId)
    assert.are_not.equal(first.headers.Nonce, second.headers.Nonce)
    assert.equal(helpers.sign(emu.secret, second.headers.Nonce, second.headers.CurTime),
                 second.headers.CheckSum)
    assert.equal(first.body, second.body)
    c:close()
  end)

  it("gives up after `retries` attempts with a transport error that was not sent", function()
    local c = commsease.new{appkey = "k", secret = "s", retries = 2,
                            endpoints = {"http://127.0.0.1:9/nimserver", "http://127.0.0.1:7/nimserver"}}
    local _, err = c:send(params())
    assert.equal("transport", err.kind)
    assert.equal(7, err.code) -- CURLE_COULDNT_CONNECT
    assert.is_false(err.sent)
    assert.is_true(err.retryable)
    c:close()
  end)

  it("does not resend an ambiguous failure by itself (HTTP 503 is returned)", function()
    local c = helpers.client_for(emu, {retries = 3})
    local before = emu:stats().requests
    emu:faults{{action = "status", status = 503}}
    local _, err = c:send(params())
    assert.equal("http", err.kind)
    assert.equal(1, emu:stats().requests - before)
    c:close()
  end)
end)
