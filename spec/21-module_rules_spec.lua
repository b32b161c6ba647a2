-- Every rule of API.md, checked before any I/O: kind "invalid", the field's
-- 1-based path, a message that says what is allowed, and no request sent.
local commsease = require "commsease"
local helpers = require "helpers"

local emu, client
setup(function()
  emu = helpers.start_emulator({"--rate-limit", "0"})
  client = helpers.client_for(emu)
end)
teardown(function()
  client:close()
  emu:stop()
end)

local function base()
  return {
    roomid = 42, fromAccid = "npc_merchant", toAccids = {"p1001", "p1002"},
    msgList = {
      commsease.text("hello", {msgId = "m1"}),
      commsease.image({url = "https://cdn.example/x.jpg", md5 = "0123", ext = "jpg",
                       w = 64, h = 64, size = 2048}, {msgId = "m2"}),
      {msgId = "m3", msgType = "custom", attach = {kind = "reward", gold = 50}},
    },
  }
end

local function rep(s, n) return string.rep(s, n) end
local function list(n, f) local t = {} for i = 1, n do t[i] = f(i) end return t end

-- name, mutate(params), expected field, a fragment of the message
local cases = {
  {"roomid is required", function(p) p.roomid = nil end, "roomid", "missing"},
  {"roomid must be > 0", function(p) p.roomid = 0 end, "roomid", "> 0"},
  {"roomid must not be negative", function(p) p.roomid = -5 end, "roomid", "> 0"},
  {"roomid must be an integer", function(p) p.roomid = 1.5 end, "roomid", "integer"},
  {"roomid as a string must be decimal", function(p) p.roomid = "12a" end, "roomid", "integer"},
  {"roomid must fit 64 bits", function(p) p.roomid = "99999999999999999999" end, "roomid", "64-bit"},
  {"msgList is required", function(p) p.msgList = nil end, "msgList", "missing"},
  {"msgList must hold at least 1 message", function(p) p.msgList = {} end, "msgList", "1 to 10"},
  {"msgList holds at most 10 messages",
   function(p) p.msgList = list(11, function(i) return commsease.text("x" .. i) end) end,
   "msgList", "1 to 10"},
  {"msgList must be a list", function(p) p.msgList = {a = commsease.text("x")} end, "msgList", "list"},
  {"msgList entries must be tables", function(p) p.msgList[2] = "hi" end, "msgList[2]", "message table"},
  {"msgId must be a string", function(p) p.msgList[1].msgId = 7 end, "msgList[1].msgId", "string"},
  {"msgId must not be empty", function(p) p.msgList[3].msgId = "" end, "msgList[3].msgId", "empty"},
  {"msgIds must be unique within msgList", function(p) p.msgList[3].msgId = "m1" end,
   "msgList[3].msgId", "unique"},
  {"msgType is required", function(p) p.msgList[1].msgType = nil end, "msgList[1].msgType", "missing"},
  {"msgType must be a known code", function(p) p.msgList[1].msgType = 5 end,
   "msgList[1].msgType", "allowed"},
  {"msgType must be a known name", function(p) p.msgList[1].msgType = "sticker" end,
   "msgList[1].msgType", "allowed"},
  {"attach is required for a type with a documented attach (image)",
   function(p) p.msgList[2].attach = nil end, "msgList[2].attach", "missing"},
  {"attach must not be empty", function(p) p.msgList[1].attach = "" end, "msgList[1].attach", "empty"},
  {"attach holds at most 4096 characters", function(p) p.msgList[1].attach = rep("a", 4097) end,
   "msgList[1].attach", "4096"},
  {"attach length counts UTF-16 units (an emoji is 2)",
   function(p) p.msgList[1].attach = rep(helpers.utf8(0x1F600), 2049) end, "msgList[1].attach", "4098"},
  {"attach must be valid UTF-8", function(p) p.msgList[1].attach = "caf" .. helpers.bytes(0xe9) end,
   "msgList[1].attach", "UTF-8"},
  {"attach of a text message must be a string", function(p) p.msgList[1].attach = {1} end,
   "msgList[1].attach", "string"},
  {"attach of a JSON type must be valid JSON", function(p) p.msgList[3].attach = "{oops" end,
   "msgList[3].attach", "JSON"},
  {"image attach needs url", function(p) p.msgList[2].attach.url = nil end,
   "msgList[2].attach.url", "missing"},
  {"image attach needs md5", function(p) p.msgList[2].attach.md5 = nil end,
   "msgList[2].attach.md5", "missing"},
  {"image w must be an integer", function(p) p.msgList[2].attach.w = 6.5 end,
   "msgList[2].attach.w", "integer"},
  {"image size must be a number", function(p) p.msgList[2].attach.size = "big" end,
   "msgList[2].attach.size", "integer"},
  {"image attach given as JSON text is checked too",
   function(p) p.msgList[2].attach = '{"url":"u","md5":"m","ext":"jpg","w":1,"h":1}' end,
   "msgList[2].attach.size", "missing"},
  {"audio attach needs dur",
   function(p) p.msgList[2] = commsease.audio{md5 = "m", url = "u", ext = "aac", size = 1} end,
   "msgList[2].attach.dur", "missing"},
  {"video attach needs w",
   function(p) p.msgList[2] = commsease.video{dur = 1, md5 = "m", url = "u", h = 1, ext = "mp4", size = 1} end,
   "msgList[2].attach.w", "missing"},
  {"location lng must be a number",
   function(p) p.msgList[2] = commsease.location{title = "t", lng = "east", lat = 1.5} end,
   "msgList[2].attach.lng", "number"},
  {"file attach needs name",
   function(p) p.msgList[2] = commsease.file{md5 = "m", url = "u", ext = "txt", size = 1} end,
   "msgList[2].attach.name", "missing"},
  {"ext must be JSON text", function(p) p.msgList[1].ext = "not json" end, "msgList[1].ext", "JSON"},
  {"a table holds no number JSON cannot write (NaN), and the path names it",
   function(p) p.msgList[3].attach = {order = {id = 0 / 0}} end,
   "msgList[3].attach.order.id", "msgList[3].attach.order.id is NaN"},
  {"ext holds at most 4096 characters",
   function(p) p.msgList[1].ext = '"' .. rep("e", 4095) .. '"' end, "msgList[1].ext", "4096"},
  {"subType must be > 0", function(p) p.msgList[1].subType = 0 end, "msgList[1].subType", "> 0"},
  {"subType must be an integer", function(p) p.msgList[1].subType = "x" end,
   "msgList[1].subType", "integer"},
  {"resendFlag must be 0 or 1", function(p) p.msgList[1].resendFlag = 2 end,
   "msgList[1].resendFlag", "0 or 1"},
  {"a message has no unknown fields", function(p) p.msgList[1].mgsType = 0 end,
   "msgList[1].mgsType", "not a field"},
  {"fromAccid is required", function(p) p.fromAccid = nil end, "fromAccid", "missing"},
  {"fromAccid holds at most 32 characters", function(p) p.fromAccid = rep("a", 33) end,
   "fromAccid", "32"},
  {"fromAccid uses accid characters only", function(p) p.fromAccid = "npc merchant" end,
   "fromAccid", "letters, digits"},
  {"toAccids is required", function(p) p.toAccids = nil end, "toAccids", "missing"},
  {"toAccids holds at least 1 accid", function(p) p.toAccids = {} end, "toAccids", "1 to 100"},
  {"toAccids holds at most 100 accids",
   function(p) p.toAccids = list(101, function(i) return "p" .. i end) end, "toAccids", "1 to 100"},
  {"toAccids entries are strings", function(p) p.toAccids[2] = 1002 end, "toAccids[2]", "string"},
  {"toAccids entries are accids",
   function(p) p.toAccids = list(60, function(i) return "p" .. i end); p.toAccids[57] = "bad/id" end,
   "toAccids[57]", "accid"},
  {"toAccids entries hold at most 32 characters", function(p) p.toAccids[1] = rep("x", 33) end,
   "toAccids[1]", "32"},
  {"route is 0 or 1", function(p) p.route = 2 end, "route", "0 or 1"},
  {"route is not a string", function(p) p.route = "yes" end, "route", "0, 1 or a boolean"},
  {"useYidun is an integer", function(p) p.useYidun = 0.5 end, "useYidun", "integer"},
  {"yidunAntiCheating is JSON", function(p) p.yidunAntiCheating = "{" end, "yidunAntiCheating", "JSON"},
  {"yidunAntiCheating holds at most 1024 characters",
   function(p) p.yidunAntiCheating = {k = rep("v", 1100)} end, "yidunAntiCheating", "1024"},
  {"yidunAntiSpamExt holds at most 1024 characters",
   function(p) p.yidunAntiSpamExt = '"' .. rep("v", 1023) .. '"' end, "yidunAntiSpamExt", "1024"},
  {"bid must be valid UTF-8", function(p) p.bid = helpers.bytes(0xff) end, "bid", "UTF-8"},
  {"antispam is a boolean", function(p) p.antispam = 1 end, "antispam", "boolean"},
  {"antispamCustom needs antispam=true",
   function(p) p.antispamCustom = {type = 1, data = "x"} end, "antispamCustom", "antispam=true"},
  {"antispamCustom.type is 1, 2 or 3",
   function(p) p.antispam = true; p.antispamCustom = '{"type":4,"data":"x"}' end,
   "antispamCustom.type", "1 (text)"},
  {"antispamCustom holds at most 5000 characters",
   function(p) p.antispam = true; p.antispamCustom = {type = 1, data = rep("d", 5000)} end,
   "antispamCustom", "5000"},
  {"env holds at most 32 characters", function(p) p.env = rep("e", 33) end, "env", "32"},
  {"params have no unknown fields", function(p) p.rout = 0 end, "rout", "not a field"},
}

describe("validation before I/O", function()
  for _, case in ipairs(cases) do
    it(case[1], function()
      local before = emu:stats().requests
      local p = base()
      case[2](p)
      local res, err = client:send(p)
      assert.is_nil(res)
      assert.equal("invalid", err.kind)
      assert.equal(case[3], err.field)
      assert.truthy(err.message:find(case[4], 1, true),
                    ("message %q lacks %q"):format(err.message, case[4]))
      assert.is_false(err.retryable)
      assert.matches("^commsease: invalid: ", tostring(err))
      -- prepare() refuses the same way
      local req, perr = client:prepare(p)
      assert.is_nil(req)
      assert.equal(case[3], perr.field)
      assert.equal(before, emu:stats().requests)
    end)
  end

  it("accepts the limits themselves (10 messages, 100 accids, 4096 UTF-16 units, 32-char env)", function()
    local p = base()
    p.msgList = list(10, function(i) return commsease.text(rep(helpers.utf8(0x1F600), 2048), {msgId = "e" .. i}) end)
    p.toAccids = list(100, function(i) return "member_" .. i end)
    p.fromAccid = rep("a", 32)
    p.env = rep("e", 32)
    local res, err = client:send(p)
    assert.is_nil(err)
    assert.equal(10, #res.msgIds)
    for _, id in ipairs(res.msgIds) do assert.is_table(res.success[id]) end
  end)

  it("takes toAccids in list order even when the table was filled out of order", function()
    local p = base()
    local to = {}
    for i = 60, 1, -1 do to[i] = "member_" .. i end -- filled backwards: not an array part
    p.toAccids = to
    local req = assert(client:prepare(p))
    local sent = require("cjson").decode(helpers.form_decode and helpers.form_decode(req.body).toAccids
                                         or req.body:match("toAccids=([^&]*)"):gsub("%%(%x%x)",
                                           function(h) return string.char(tonumber(h, 16)) end))
    assert.equal(60, #sent)
    for i = 1, 60 do assert.equal("member_" .. i, sent[i]) end
  end)

  it("refuses a toAccids table with a key that is not a list index", function()
    local p = base()
    p.toAccids = {"p1", "p2", extra = "p3"}
    local _, err = client:send(p)
    assert.equal("invalid", err.kind)
    assert.equal("toAccids", err.field)
    assert.matches("list", err.message)
    p.toAccids = {"p1", nil, "p3"}
    _, err = client:send(p)
    assert.equal("toAccids", err.field)
    -- a key beside 1..n that a count of the list's keys sees and #list does not
    -- (LuaJIT keeps [0] in its array part; "2" is a string, not the index 2)
    local holed = {"p1", "p2", "p3"}
    holed[1], holed.x = nil, "px" -- #holed may be 3, and it has 3 keys
    for _, to in ipairs{{[0] = "p0", "p1", "p2"}, {"p1", ["2"] = "p2"}, {"p1", "p2", [2.5] = "p3"},
                        {"p1", "p2", [4] = "p4"}, holed} do
      p.toAccids = to
      _, err = client:prepare(p)
      assert.is_table(err)
      assert.equal("toAccids", err.field)
      assert.matches("list", err.message)
    end
  end)

  it("refuses a msgList with a key beside 1..n, or a hole that a key count hides", function()
    local p = base()
    local m = commsease.text("hi")
    -- where table.nkeys counts the keys, {[2], [3], x} has as many keys as #list may say
    local holed = {m, m, m}
    holed[1], holed.x = nil, m
    for _, ml in ipairs{holed, {[2] = m, [3] = m, x = m}, {m, m, x = m}, {[0] = m, m},
                        {m, nil, m}, {m, [2.5] = m}, {m, ["2"] = m}} do
      p.msgList = ml
      local req, err = client:prepare(p)
      assert.is_nil(req)
      assert.equal("msgList", err.field)
      assert.matches("list", err.message)
    end
  end)

  -- the walk refuses a holed msgList before it reads a message; where table.nkeys
  -- counts the keys, a hole the count hides must still be named first, not a bad
  -- message before it (found by spec/fuzz/prepare_diff.lua)
  it("names a hole in msgList before a bad message that comes before the hole", function()
    local p = base()
    local m, bad = commsease.text("hi"), {msgId = "b", msgType = 0, attach = ""}
    local holed = {bad, m, m}
    holed[2], holed.x = nil, m -- #holed may be 3, and it has 3 keys
    for _, ml in ipairs{{[0] = m, bad, nil, m}, holed, {bad, nil, m, [0] = m}} do
      p.msgList = ml
      local req, err = client:prepare(p)
      assert.is_nil(req)
      assert.equal("msgList", err.field)
      assert.equal("msgList must be a list (keys 1..n, no holes)", err.message)
    end
  end)

  -- On OpenResty's LuaJIT the usual list is counted with table.nkeys and read with
  -- lua_tolstring, which turns a number into its text: every such entry must still
  -- be refused, and the first bad entry named, wherever it sits and whatever is
  -- wrong with it.
  it("names the first bad toAccids entry, numbers among strings included", function()
    local p = base()
    local long = rep("x", 33)
    for _, c in ipairs{
      {{"p1", 12}, "toAccids[2]", "must be a string"},
      {{12, "bad!"}, "toAccids[1]", "must be a string"},
      {{"bad!", 12}, "toAccids[1]", "may not hold"},
      {{"p1", "p2", -5}, "toAccids[3]", "must be a string"},
      {{"p1", 1.5}, "toAccids[2]", "must be a string"},
      {{"p1", 0 / 0}, "toAccids[2]", "must be a string"},
      {{"p1", 1 / 0}, "toAccids[2]", "must be a string"},
      {{"p1", -1 / 0}, "toAccids[2]", "must be a string"},
      {{"p1", 2 ^ 60}, "toAccids[2]", "must be a string"},
      {{"p1", "a,b"}, "toAccids[2]", "may not hold"},
      {{"p1", ","}, "toAccids[2]", "may not hold"},
      {{"p1", ""}, "toAccids[2]", "empty"},
      {{"", "p2"}, "toAccids[1]", "empty"},
      {{"p1", long}, "toAccids[2]", "33 characters"},
      {{"p1", {}}, "toAccids[2]", "not a table"},
      {{"p1", true}, "toAccids[2]", "not a boolean"},
      {{"p1", "p2\0"}, "toAccids[2]", "may not hold"},
    } do
      p.toAccids = c[1]
      local req, err = client:prepare(p)
      assert.is_nil(req)
      assert.equal("invalid", err.kind)
      assert.equal(c[2], err.field)
      assert.matches(c[3], err.message, 1, true)
    end
    -- strings that look like numbers are accids like any other, in their order
    p.toAccids = {"12", "-5", "nan", "inf", ".5", "N1", "I2", "0", "p@x"}
    local req = assert(client:prepare(p))
    local sent = req.body:match("toAccids=([^&]*)"):gsub("%%(%x%x)",
      function(h) return string.char(tonumber(h, 16)) end)
    assert.equal('["12","-5","nan","inf",".5","N1","I2","0","p@x"]', sent)
    -- the most a call takes, all of the longest
    p.toAccids = list(100, function(i) return rep(string.char(96 + i % 26 + 1), 32) end)
    req = assert(client:prepare(p))
    sent = req.body:match("toAccids=([^&]*)")
    assert.equal(100 * (32 + 6) + 99 * 3 + 6, #sent)
  end)

  it("reads params raw: fields behind __index are not seen", function()
    local p = setmetatable({}, {__index = base()})
    local _, err = client:send(p)
    assert.equal("roomid", err.field)
    assert.has_error(function()
      commsease.new(setmetatable({}, {__index = {appkey = "k", secret = "s"}}))
    end)
  end)

  it("never raises for bad data, whatever its shape", function()
    local weird = {42, "x", true, {roomid = {}}, {msgList = "x"}, {toAccids = "p1"},
                   {roomid = 1, fromAccid = "a", toAccids = {"b"}, msgList = {{attach = function() end}}},
                   {roomid = 1, fromAccid = "a", toAccids = {"b"},
                    msgList = {{msgType = 100, attach = {f = function() end}}}}}
    for _, p in ipairs(weird) do
      local ok, res, err = pcall(client.send, client, p)
      assert.is_true(ok, tostring(res))
      assert.is_nil(res)
      assert.equal("invalid", err.kind)
    end
  end)
end)

describe("commsease.rules", function()
  it("is the table the checks use, and the README's limits table matches it", function()
    local r = commsease.rules
    local by = {}
    for _, p in ipairs(r.params) do by[p.name] = p end
    for _, p in ipairs(r.message) do by[p.name] = p end
    local expect = {
      ["msgList messages"] = by.msgList.max_items, ["toAccids accids"] = by.toAccids.max_items,
      ["attach characters"] = by.attach.max_chars, ["ext characters"] = by.ext.max_chars,
      ["yidunAntiCheating characters"] = by.yidunAntiCheating.max_chars,
      ["yidunAntiSpamExt characters"] = by.yidunAntiSpamExt.max_chars,
      ["antispamCustom characters"] = by.antispamCustom.max_chars,
      ["env characters"] = by.env.max_chars, ["accid characters"] = r.accid_max_chars,
    }
    assert.equal(10, expect["msgList messages"])
    assert.equal(100, expect["toAccids accids"])
    local f = assert(io.open("README.md"))
    local readme = f:read("*a")
    f:close()
    for name, limit in pairs(expect) do
      local got = readme:match("\n|%s*" .. name:gsub("%p", "%%%0") .. "%s*|%s*(%d+)%s*|")
      assert.equal(tostring(limit), got, "README limit for " .. name)
    end
  end)
end)
