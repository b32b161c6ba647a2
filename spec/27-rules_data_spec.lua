-- The API's rules as data (issue 9, issue 11): the builders, the batch limits,
-- the API codes and which are retryable come from the one table in
-- src/core/cms_rules.c that the module and the emulator share; attach is
-- optional exactly for the types without a documented attach shape; error
-- texts name their path once.
-- Written for every Lua the module supports (no 5.3+ syntax).
local commsease = require "commsease"
local helpers = require "helpers"
local cjson = require "cjson"

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
local function form_of(body)
  local f = {}
  for k, v in body:gmatch("([^&=]+)=([^&]*)") do f[k] = unescape(v) end
  return f
end
local function count(hay, needle)
  local n, i = 0, 1
  while true do
    local a, b = hay:find(needle, i, true)
    if not a then return n end
    n, i = n + 1, b + 1
  end
end

local rules = commsease.rules
local emu, client
setup(function()
  emu = helpers.start_emulator({"--rate-limit", "0"})
  client = helpers.client_for(emu)
end)
teardown(function()
  client:close()
  emu:stop()
end)
before_each(function() emu:reset() end)

local function params(msgs)
  return {roomid = 42, fromAccid = "npc", toAccids = {"bob"}, msgList = msgs}
end

describe("attach is optional for text, tip and custom, required where it has a shape (issue 11)", function()
  it("the rules say which types require it: exactly those with attach fields", function()
    local n = 0
    for _, t in ipairs(rules.msgtypes) do
      assert.equal(t.attach_fields ~= nil, t.attach_required, t.name)
      n = n + 1
    end
    assert.equal(8, n)
  end)

  for _, name in ipairs({"text", "tip", "custom"}) do
    it("sends a " .. name .. " message without attach, leaving it out of the JSON; the emulator delivers it",
       function()
      local msg = commsease[name](nil, {msgId = name .. "-1"})
      local req, err = client:prepare(params{msg})
      assert.is_nil(err)
      local sent = cjson.decode(form_of(req.body).msgList)[1]
      assert.is_nil(sent.attach)
      assert.falsy(form_of(req.body).msgList:find("attach", 1, true))
      local res, serr = client:send(params{msg})
      assert.is_nil(serr)
      assert.is_table(res.success[name .. "-1"])
      assert.equal(1, #emu:inbox("bob"))
    end)
  end

  for _, t in ipairs(rules.msgtypes) do
    if t.attach_required then
      it("refuses a " .. t.name .. " message without attach, in the module and in the emulator", function()
        local _, err = client:prepare(params{{msgId = "x1", msgType = t.name}})
        assert.equal("msgList[1].attach", err.field)
        assert.truthy(err.message:find("missing", 1, true), err.message)
        local st, j = helpers.signed_post(emu, helpers.good_form{msgList = {{msgId = "x1", msgType = t.code}}})
        assert.equal(200, st)
        assert.equal(414, j.code)
        assert.matches("^msgList%[1%]%.attach: ", j.desc)
      end)
    end
  end

  it("still refuses an empty attach", function()
    local _, err = client:prepare(params{commsease.text("")})
    assert.equal("msgList[1].attach", err.field)
    assert.truthy(err.message:find("empty", 1, true), err.message)
  end)
end)

describe("error texts name their path once (issue 11)", function()
  -- a message that breaks one rule, as the module takes it and as the form carries it
  local cases = {
    {{msgId = "i1", msgType = 1}, "msgList[1].attach"},
    {{msgId = "t1", msgType = 0, attach = ""}, "msgList[1].attach"},
    {{msgId = "t1", msgType = 5, attach = "x"}, "msgList[1].msgType"},
    {{msgId = "t1", msgType = 0, attach = "x", subType = 0}, "msgList[1].subType"},
    {{msgId = "t1", msgType = 0, attach = "x", resendFlag = 2}, "msgList[1].resendFlag"},
    {{msgId = "i1", msgType = 1, attach = '{"url":"u","ext":"jpg","w":1,"h":1,"size":1}'},
     "msgList[1].attach.md5"},
    {{msgId = "", msgType = 0, attach = "x"}, "msgList[1].msgId"},
  }
  for _, c in ipairs(cases) do
    it("names " .. c[2] .. " once, in the module's message and the emulator's desc", function()
      local _, err = client:prepare(params{c[1]})
      assert.equal(c[2], err.field)
      assert.equal(1, count(err.message, c[2]), err.message)
      assert.equal(1, count(tostring(err), c[2]), tostring(err))
      local st, j = helpers.signed_post(emu, helpers.good_form{msgList = {c[1]}})
      assert.equal(200, st)
      assert.equal(414, j.code)
      assert.equal(1, count(j.desc, c[2]), j.desc)
      assert.equal(1, #j.desc:match("^[^:]+") == #c[2] and 1 or 0, j.desc)
    end)
  end
end)

describe("the builders and the batch limits come from the rules", function()
  it("has one builder per message type of the rules, making that type", function()
    for _, t in ipairs(rules.msgtypes) do
      assert.is_function(commsease[t.name], t.name)
      local m = commsease[t.name](t.attach_fields and {} or "x")
      assert.equal(t.code, m.msgType, t.name)
    end
  end)

  it("typed builders lift exactly the message fields the rules mark lifted out of attach", function()
    local lifted = {}
    for _, r in ipairs(rules.message) do if r.lifted then lifted[r.name] = true end end
    assert.same({msgId = true, subType = true, resendFlag = true}, lifted)
    for _, t in ipairs(rules.msgtypes) do
      if t.attach_fields then
        local m = commsease[t.name]{msgId = "a", subType = 2, resendFlag = 1, ext = "png", url = "u"}
        for name in pairs(lifted) do
          assert.is_not_nil(m[name], t.name .. " " .. name)
          assert.is_nil(m.attach[name], t.name .. " " .. name)
        end
        assert.equal("png", m.attach.ext)
        assert.equal("u", m.attach.url)
      end
    end
  end)

  it("chunks into calls of at most the rules' message and recipient limits", function()
    local by = {}
    for _, p in ipairs(rules.params) do by[p.name] = p end
    local M, A = by.msgList.max_items, by.toAccids.max_items
    local msgs, to = {}, {}
    for i = 1, 2 * M + 3 do msgs[i] = commsease.text("m" .. i, {msgId = "m" .. i}) end
    for i = 1, 2 * A + 7 do to[i] = "p" .. i end
    local calls = assert(commsease.chunk{roomid = 1, fromAccid = "a", toAccids = to, msgList = msgs})
    assert.equal(3 * 3, #calls)
    for _, c in ipairs(calls) do
      assert.truthy(#c.msgList <= M and #c.toAccids <= A)
    end
    assert.equal(M, #calls[1].msgList)
    assert.equal(A, #calls[1].toAccids)
  end)
end)

describe("the API codes and which are retryable: one table for the module and the emulator", function()
  it("lists the documented codes", function()
    local seen = {}
    for _, c in ipairs(rules.codes) do
      assert.is_number(c.code)
      assert.is_boolean(c.retryable)
      assert.is_string(c.desc)
      seen[c.code] = c.retryable
    end
    for _, code in ipairs({403, 404, 405, 408, 414, 416, 417, 419, 431, 500, 503, 514, 13001, 13004}) do
      assert.is_not_nil(seen[code], code)
    end
    assert.is_true(seen[416])
    assert.is_false(seen[414])
  end)

  it("parse marks an api error retryable exactly as the table says; unknown codes are not", function()
    for _, c in ipairs(rules.codes) do
      if c.code ~= 200 then
        local res, err = commsease.parse(200, cjson.encode({code = c.code, desc = "d"}))
        assert.is_nil(res)
        assert.equal("api", err.kind)
        assert.equal(c.code, err.code)
        assert.equal(c.retryable, err.retryable, "code " .. c.code)
      end
    end
    local _, err = commsease.parse(200, '{"code":99999,"desc":"new"}')
    assert.is_false(err.retryable)
  end)

  it("the emulator answers an injected code with the table's desc", function()
    for _, c in ipairs(rules.codes) do
      if c.code ~= 200 then
        emu:reset()
        emu:faults({{action = "code", code = c.code}})
        local st, j = helpers.signed_post(emu, helpers.good_form())
        assert.equal(200, st)
        assert.equal(c.code, j.code)
        assert.equal(c.desc, j.desc)
      end
    end
  end)
end)
