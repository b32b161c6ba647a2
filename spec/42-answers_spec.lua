-- Answers, every byte of them, and their numbers exact on every Lua: a NUL byte never
-- ends the check early; ids beyond 2^53 keep their digits (integers where the runtime has
-- 64-bit integers, exact decimal strings where it has only doubles); parse() takes only
-- whole-number statuses.
local commsease = require "commsease"

local DOUBLES_ONLY = math.type == nil -- Lua 5.1, 5.2, LuaJIT

local function answer(entry)
  return '{"code":200,"success":[{"m1":' .. entry .. '}],"fail":[]}'
end

describe("answers", function()
  describe("every byte is checked", function()
    local cases = {
      {"valid JSON, a NUL, then garbage", '{"code":200,"success":[],"fail":[]}\0garbage'},
      {"valid JSON and a NUL", '{"code":200}\0'},
      {"a NUL inside a string", '{"code":200,"success":[{"m1":{"attach":"a\0b"}}]}'},
      {"a NUL after a backslash", '{"code":200,"desc":"\\\0"}'},
      {"valid JSON and trailing garbage", '{"code":200} garbage'},
    }
    for _, case in ipairs(cases) do
      it("refuses " .. case[1] .. " (kind response)", function()
        local res, err = commsease.parse(200, case[2])
        assert.is_nil(res)
        assert.equal("response", err.kind)
        assert.is_true(err.sent)
      end)
    end

    it("gives nil, err for an API error whose desc object cannot be written back (found by fuzz_parse)",
       function()
      local n = select("#", commsease.parse(200, '{"code":2,"desc":{"a":5e4044073709551617}}'))
      local res, err = commsease.parse(200, '{"code":2,"desc":{"a":5e4044073709551617}}')
      assert.equal(2, n)
      assert.is_nil(res)
      assert.equal("api", err.kind)
      assert.equal(2, err.code)
      assert.equal("commsease: api 2: the service refused the call (no desc)", tostring(err))
    end)

    it("refuses it from send() too: a server that answers JSON, a NUL and garbage", function()
      local h = require("hostile").start("nulbody")
      local c = commsease.new{appkey = "k", secret = "s", retries = 0, endpoint = h.base}
      finally(function() c:close(); h.stop() end)
      local res, err = c:send{roomid = 1, fromAccid = "a", toAccids = {"b"},
                              msgList = {commsease.text("x")}}
      assert.is_nil(res)
      assert.equal("response", err.kind)
      assert.matches("NUL", err.message)
    end)
  end)

  describe("numbers", function()
    it("keeps an unquoted roomId beyond 2^53 exact (lua-cjson alone rounds it)", function()
      local res = assert(commsease.parse(200, answer('{"roomId":9007199254740993,"time":1700000000000}')))
      assert.equal("9007199254740993", tostring(res.success.m1.roomId))
      assert.equal(DOUBLES_ONLY and "string" or "number", type(res.success.m1.roomId))
      assert.equal(1700000000000, res.success.m1.time)
      assert.equal("number", type(res.success.m1.time))
    end)

    it("keeps roomId and time sent as numeric strings beyond 2^53 exact", function()
      local res = assert(commsease.parse(200, answer(
        '{"roomId":"9007199254740993","time":"9223372036854775807","type":"100"}')))
      assert.equal("9007199254740993", tostring(res.success.m1.roomId))
      assert.equal("9223372036854775807", tostring(res.success.m1.time))
      assert.equal(100, res.success.m1.type)
      if not DOUBLES_ONLY then assert.equal("integer", math.type(res.success.m1.roomId)) end
    end)

    it("gives numbers up to 2^53 as numbers on every Lua", function()
      local res = assert(commsease.parse(200, answer('{"roomId":9007199254740992,"time":"-9007199254740992"}')))
      assert.equal("number", type(res.success.m1.roomId))
      assert.equal(2 ^ 53, res.success.m1.roomId)
      assert.equal(-(2 ^ 53), res.success.m1.time)
    end)

    it("keeps the digits of any other JSON integer beyond 2^53 (as a string)", function()
      local res = assert(commsease.parse(200, answer(
        '{"roomId":1,"msgSeq":123456789012345678901234567890,"neg":-9007199254740993,' ..
        '"list":[1,18446744073709551617,2.5e300],"small":42,"float":0.1}')))
      local m = res.success.m1
      assert.equal("123456789012345678901234567890", m.msgSeq)
      assert.equal("-9007199254740993", m.neg)
      assert.equal(1, m.list[1])
      assert.equal("18446744073709551617", m.list[2])
      assert.equal(2.5e300, m.list[3])
      assert.equal(42, m.small)
      assert.equal(0.1, m.float)
    end)

    it("leaves digits inside strings alone, escaped quotes included", function()
      local res = assert(commsease.parse(200, answer(
        '{"roomId":7,"attach":"say \\"99999999999999999\\" \\\\","ext":"12345678901234567890"}')))
      assert.equal('say "99999999999999999" \\', res.success.m1.attach)
      assert.equal("12345678901234567890", res.success.m1.ext)
      assert.equal(7, res.success.m1.roomId)
    end)

    it("refuses a roomId beyond 64 bits (kind response)", function()
      local _, err = commsease.parse(200, answer('{"roomId":99999999999999999999}'))
      assert.equal("response", err.kind)
    end)
  end)

  describe("parse(status, body)", function()
    for _, bad in ipairs{200.5, -1, 1000, 1e300, 0 / 0, 1 / 0} do
      it("raises on the status " .. tostring(bad) .. " on every Lua", function()
        assert.has_error(function() commsease.parse(bad, '{"code":200}') end)
      end)
    end
    it("raises on a status that is not a number", function()
      assert.has_error(function() commsease.parse({}, '{"code":200}') end)
      assert.has_error(function() commsease.parse(nil, '{"code":200}') end)
    end)
    it("takes whole-number statuses, as numbers or numeric strings", function()
      assert.is_table((commsease.parse(200.0, '{"code":200}')))
      assert.is_table((commsease.parse("200", '{"code":200}')))
      local _, err = commsease.parse(502, "x")
      assert.equal("http", err.kind)
      assert.equal(502, err.code)
    end)
  end)
end)
