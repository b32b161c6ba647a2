-- Numbers reach the service exactly as the caller gave them, or are refused
-- with the field's path (issue 9 defect 6, issue 10).  Integers are written
-- exactly; other numbers in the shortest text that reads back as the same
-- double; what a double may already have rounded (a whole float of 2^53 or
-- more, every number on 5.1/5.2/LuaJIT) is refused with "pass it as a string".
-- Written for every Lua the module supports (no 5.3+ syntax).
local commsease = require "commsease"
local cjson = require "cjson"

local HAS_INT = math.type ~= nil           -- 5.3+: integers and floats
local TWO53 = 9007199254740992             -- 2^53, a float on 5.1

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
local function form_of(body)
  local f = {}
  for k, v in body:gmatch("([^&=]+)=([^&]*)") do f[k] = unescape(v) end
  return f
end

local client
setup(function()
  client = commsease.new{appkey = "k", secret = "s", endpoint = "http://127.0.0.1:9/nimserver"}
end)
teardown(function() client:close() end)

local function params(over)
  local p = {roomid = 42, fromAccid = "npc", toAccids = {"p1"},
             msgList = {commsease.text("hi", {msgId = "m1"})}}
  for k, v in pairs(over or {}) do p[k] = v end
  return p
end
-- the text an ext table is written as
local function ext_text(ext)
  local req, err = client:prepare(params{msgList = {commsease.text("hi", {msgId = "m1", ext = ext})}})
  if not req then return nil, err end
  return cjson.decode(form_of(req.body).msgList)[1].ext
end

describe("numbers in tables (defect 6)", function()
  if HAS_INT then
    it("writes integers of 10^14 and more exactly, as values and as keys", function()
      local big = load("return 123456789012345678, math.maxinteger, math.mininteger")
      local a, maxi, mini = big()
      assert.equal('{"id":123456789012345678}', ext_text({id = a}))
      assert.equal('[9223372036854775807,-9223372036854775808]', ext_text({maxi, mini}))
      assert.equal('{"123456789012345678":"x"}', ext_text({[a] = "x"}))
      assert.equal('{"100000000000000":1}', ext_text({[100000000000000] = 1}))
    end)
  end

  it("writes non-integer floats so that they read back as the same double", function()
    local values = {0.1, 1 / 3, 2 / 3, math.pi, -2.5e-300, 123.456, 1e-7, 5e-324,
                    0.30000000000000004, 1234567.8901234567}
    local text = assert(ext_text(values))
    local back = {}
    for num in text:gmatch("[^%[%],]+") do back[#back + 1] = tonumber(num) end
    assert.equal(#values, #back, text)
    for i, v in ipairs(values) do
      assert.is_true(back[i] == v, ("%s read back as %s (%s)"):format(("%.17g"):format(v), tostring(back[i]), text))
    end
    assert.equal("[0.1]", ext_text({0.1})) -- the shortest such text
  end)

  it("writes whole floats below 2^53 as integers", function()
    assert.equal("[3,-7,9007199254740991]", ext_text({3.0, -7.0, TWO53 - 1}))
  end)

  local refused = {
    {"NaN", function() return 0 / 0 end, "NaN"},
    {"infinity", function() return math.huge end, "infinite"},
    {"minus infinity", function() return -math.huge end, "infinite"},
    {"a whole float of 2^53", function() return TWO53 + 0.0 end, "pass it as a string"},
    {"a whole float of 1e20", function() return 1e20 end, "pass it as a string"},
  }
  for _, r in ipairs(refused) do
    it("refuses " .. r[1] .. " with the value's path", function()
      local text, err = ext_text({order = {ids = {7, r[2]()}}})
      assert.is_nil(text, text)
      assert.equal("invalid", err.kind)
      assert.equal("msgList[1].ext.order.ids[2]", err.field)
      assert.truthy(err.message:find(r[3], 1, true), err.message)
      assert.truthy(err.message:find("msgList[1].ext.order.ids[2]", 1, true), err.message)
    end)
  end

  it("refuses a number key that is not whole, naming it", function()
    local _, err = ext_text({[1.5] = "x"})
    assert.equal("msgList[1].ext", err.field)
    assert.truthy(err.message:find("number key", 1, true), err.message)
  end)

  it("checks the same numbers in an image attach as it writes", function()
    local req = assert(client:prepare(params{msgList = {commsease.image{url = "u", md5 = "m", ext = "jpg",
                                                                        w = 64.0, h = 48, size = 2048}}}))
    local attach = cjson.decode(cjson.decode(form_of(req.body).msgList)[1].attach)
    assert.equal(64, attach.w)
    local _, err = client:prepare(params{msgList = {commsease.image{url = "u", md5 = "m", ext = "jpg",
                                                                    w = 1e20, h = 48, size = 2048}}})
    assert.equal("msgList[1].attach.w", err.field)
  end)
end)

describe("integer fields hold what a double cannot hold exactly only as strings (issue 10)", function()
  it("sends a roomid of 2^53 + 1 given as a string exactly", function()
    local req = assert(client:prepare(params{roomid = "9007199254740993"}))
    assert.equal("9007199254740993", form_of(req.body).roomid)
  end)

  if HAS_INT then
    it("sends a roomid of 2^53 + 1 given as an integer exactly (5.3+)", function()
      local req = assert(client:prepare(params{roomid = load("return 9007199254740993")()}))
      assert.equal("9007199254740993", form_of(req.body).roomid)
    end)
  else
    it("refuses a numeric roomid of 2^53 + 1, which a double holds as 2^53 (5.1, 5.2, LuaJIT)", function()
      local _, err = client:prepare(params{roomid = 9007199254740993})
      assert.equal("roomid", err.field)
      assert.truthy(err.message:find("pass it as a string", 1, true), err.message)
    end)
  end

  local fields = {
    {"roomid", function(v) return params{roomid = v} end, "roomid"},
    {"useYidun", function(v) return params{useYidun = v} end, "useYidun"},
    {"route", function(v) return params{route = v} end, "route"},
    {"msgType", function(v) return params{msgList = {{msgId = "m1", msgType = v, attach = "x"}}} end,
     "msgList[1].msgType"},
    {"subType", function(v) return params{msgList = {commsease.text("x", {subType = v})}} end,
     "msgList[1].subType"},
    {"resendFlag", function(v) return params{msgList = {commsease.text("x", {resendFlag = v})}} end,
     "msgList[1].resendFlag"},
  }
  for _, f in ipairs(fields) do
    it("refuses a whole float of 2^53 or more as " .. f[1] .. ", saying to pass it as a string", function()
      for _, v in ipairs({TWO53 + 0.0, TWO53 * 4 + 0.0, -TWO53 - 0.0}) do
        local req, err = client:prepare(f[2](v))
        assert.is_nil(req, req and req.body)
        assert.equal(f[3], err.field)
        assert.truthy(err.message:find("pass it as a string", 1, true), err.message)
      end
    end)
  end

  it("still takes whole floats below 2^53 as integers", function()
    local req = assert(client:prepare(params{roomid = TWO53 - 1.0}))
    assert.equal("9007199254740991", form_of(req.body).roomid)
  end)
end)
