-- The single directed send chatroom/sendMsgToSomeone.action: one message's
-- fields at the top level of the form, the same rules, answer
-- {"code":200,"desc":{...one message object...}}, resend semantics, inboxes,
-- faults and webhook events; and roomIds echoed with every digit.
local helpers = require("helpers")
local json = helpers.json

local PATH = "/nimserver/chatroom/sendMsgToSomeone.action"
local RESEND = "parameter resendFlag should be used for RESEND!"

local function single_form(over)
  local f = {roomid = "42", fromAccid = "alice", toAccids = {"bob"}, msgId = helpers.msgid("s"),
             msgType = "0", attach = "hello"}
  for k, v in pairs(over or {}) do f[k] = v end
  return f
end

local function single(emu, form, o)
  o = o or {}
  o.path = PATH
  return helpers.signed_post(emu, form, o)
end

describe("emulator sendMsgToSomeone.action", function()
  local emu
  setup(function() emu = helpers.start_emulator({"--rate-limit", "0"}) end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)

  it("answers code 200 with the one message object as desc, and delivers it", function()
    local id = helpers.msgid("s")
    local before = math.floor(helpers.now() * 1000)
    local st, j, raw = single(emu, single_form({
      roomid = "36", fromAccid = "Alice", toAccids = {"Bob", "carol", "bob"}, msgId = id,
      msgType = "100", attach = "{\"x\":1}", ext = "{\"e\":2}", subType = "7"}))
    assert.equal(200, st)
    assert.equal(200, j.code)
    assert.is_nil(j.success)
    assert.is_nil(j.fail)
    local m = j.desc
    assert.equal("table", type(m))
    assert.equal(id, m.msgid_client)
    assert.equal("Alice", m.fromAccount)
    assert.equal("Alice", m.fromNick)
    assert.equal("", m.fromAvator)
    assert.equal("REST", m.fromClientType)
    assert.equal(36, m.roomId)
    assert.equal(100, m.type)
    assert.equal("{\"x\":1}", m.attach)
    assert.equal("{\"e\":2}", m.ext)
    assert.is_true(m.time >= before - 1000 and m.time <= before + 60000)
    assert.matches("^{\"code\":200,\"desc\":{", raw)
    local bob = emu:inbox("bob")
    assert.equal(1, #bob) -- listed twice, delivered once
    assert.equal(id, bob[1].msgid_client)
    assert.equal(7, bob[1].subType)
    assert.equal(100, bob[1].type)
    assert.equal(1, #emu:inbox("carol"))
    assert.equal(1, emu:stats().delivered_msgids)
  end)

  it("refuses a repeated msgId without resendFlag, answers a resend with success and delivers once", function()
    local form = single_form()
    local _, j = single(emu, form)
    assert.equal(200, j.code)
    _, j = single(emu, form)
    assert.equal(414, j.code)
    assert.equal(RESEND, j.desc)
    form.resendFlag = "1"
    _, j = single(emu, form)
    assert.equal(200, j.code)
    assert.equal(form.msgId, j.desc.msgid_client)
    assert.equal(1, #emu:inbox("bob"))
  end)

  it("shares the delivered set with the batch endpoint (msgIds are per room)", function()
    local id = helpers.msgid("s")
    local _, j = helpers.signed_post(emu, helpers.good_form({msgList = {{msgId = id, msgType = 0, attach = "a"}}}))
    assert.equal(200, j.code)
    _, j = single(emu, single_form({msgId = id}))
    assert.equal(RESEND, j.desc)
    _, j = single(emu, single_form({msgId = id, roomid = "43"}))
    assert.equal(200, j.code)
  end)

  local rules = {
    {"a missing msgId", {msgId = helpers.NULL}, "msgId", "is missing"},
    {"a missing msgType", {msgType = helpers.NULL}, "msgType", "is missing"},
    {"a msgType that is not an integer", {msgType = "text"}, "msgType", "must be a decimal integer"},
    {"an unknown msgType", {msgType = "5"}, "msgType", "is 5; allowed"},
    {"an attach over 4096 characters", {attach = string.rep("x", 4097)},
     "attach", "is 4097 characters long; at most 4096"},
    {"an ext that is not JSON", {ext = "{nope"}, "ext", "is not valid JSON text"},
    {"a subType of 0", {subType = "0"}, "subType", "is 0"},
    {"a resendFlag of 2", {resendFlag = "2"}, "resendFlag", "is 2"},
    {"an image attach without md5", {msgType = "1",
      attach = json.encode({url = "u", ext = "png", w = 1, h = 2, size = 3})}, "attach.md5", "is missing"},
    {"an image attach that is not JSON", {msgType = "1", attach = "pic"}, "attach", "is not valid JSON"},
    {"no toAccids", {toAccids = helpers.NULL}, "toAccids", "is missing"},
    {"101 toAccids", {toAccids = (function() local t = {} for i = 1, 101 do t[i] = "u" .. i end return t end)()},
     "toAccids", "has 101 entries; 1 to 100 allowed"},
    {"a bad accid", {toAccids = {"bob", "no spaces"}}, "toAccids[2]", nil},
    {"a missing roomid", {roomid = helpers.NULL}, "roomid", "is missing"},
    {"a missing fromAccid", {fromAccid = helpers.NULL}, "fromAccid", "is missing"},
    {"an env over 32 characters", {env = string.rep("e", 33)}, "env", "is 33 characters long"},
    {"antispamCustom without antispam", {antispamCustom = "{\"type\":1,\"data\":\"x\"}"},
     "antispamCustom", "is only allowed with antispam=true"},
  }
  for _, case in ipairs(rules) do
    it("refuses " .. case[1] .. " with 414 naming the top-level field", function()
      local st, j = single(emu, single_form(case[2]))
      assert.equal(200, st)
      assert.equal(414, j.code)
      -- the path first (a top-level name, no msgList[1].), then what was wrong
      local path = j.desc:match("^(.-): ")
      assert.equal(case[3], path)
      if case[4] then assert.matches(case[4], j.desc) end
      assert.equal(0, emu:stats().delivered_msgids)
    end)
  end

  it("ignores a msgList sent to it (the message is at the top level)", function()
    local _, j = single(emu, single_form({msgList = {{msgId = "other", msgType = 0, attach = "x"}}}))
    assert.equal(200, j.code)
    assert.equal(1, #emu:inbox("bob"))
  end)

  it("checks the signature like the batch endpoint", function()
    local _, j = single(emu, single_form(), {checksum = string.rep("0", 40)})
    assert.equal(414, j.code)
    assert.equal("bad CheckSum", j.desc)
  end)

  it("takes faults matched by its msgId", function()
    local form = single_form({msgId = "mute-me-1"})
    emu:faults({{action = "code", code = 13004, desc = "sender muted", match = {msgId = "mute-me"}}})
    local _, j = single(emu, single_form())
    assert.equal(200, j.code) -- does not match
    _, j = single(emu, form)
    assert.equal(13004, j.code)
    emu:faults({{action = "fail_msg", reason = "anti-spam hit"}})
    _, j = single(emu, form)
    assert.equal(414, j.code)
    assert.equal("anti-spam hit", j.desc)
    assert.equal(1, #emu:inbox("bob"))
  end)

  it("answers numbers as strings when asked", function()
    emu:config({numbers_as_strings = true})
    local _, j = single(emu, single_form())
    emu:config({numbers_as_strings = false})
    assert.equal("42", j.desc.roomId)
    assert.equal("0", j.desc.type)
    assert.matches("^%d+$", j.desc.time)
  end)

  it("is recorded and counted like any API call", function()
    single(emu, single_form())
    local reqs = emu:requests()
    assert.equal(PATH, reqs[#reqs].path)
    assert.equal(1, emu:stats().requests)
    assert.equal(1, emu:stats().codes["200"])
  end)

  it("answers other methods with HTTP 405", function()
    local st = helpers.http("GET", emu.root .. PATH)
    assert.equal(405, st)
  end)
end)

describe("emulator roomId echo", function()
  local emu
  setup(function() emu = helpers.start_emulator({"--rate-limit", "0"}) end)
  teardown(function() emu:stop() end)

  -- 2^53 + 1 has no double: a cJSON number would come out as 9.00719925474099e+15
  for _, room in ipairs({"9007199254740993", "9223372036854775807"}) do
    it("writes roomid " .. room .. " with every digit, in batch and single answers and the inbox", function()
      local _, _, raw = helpers.signed_post(emu, helpers.good_form({roomid = room}))
      assert.matches("\"roomId\":" .. room .. "[,}]", raw)
      _, _, raw = single(emu, single_form({roomid = room}))
      assert.matches("\"roomId\":" .. room .. "[,}]", raw)
      local _, _, inbox = emu:get("/_emulator/inbox?accid=bob")
      assert.matches("\"roomId\":" .. room .. "[,}]", inbox)
    end)
  end
end)

describe("emulator single send webhook events", function()
  local sink, emu
  setup(function()
    sink = helpers.start_emulator()
    emu = helpers.start_emulator({"--webhook", sink.root .. "/_emulator/sink"})
  end)
  teardown(function()
    emu:stop()
    sink:stop()
  end)

  it("posts one event for the delivered message", function()
    local _, j = single(emu, single_form({msgId = "hook-single", toAccids = {"bob", "carol"}}))
    assert.equal(200, j.code)
    local reqs = helpers.wait_until(function()
      local _, s = sink:get("/_emulator/sink")
      return s and #s.requests >= 1 and s.requests
    end, 5)
    assert.truthy(reqs)
    local ev = json.decode(reqs[1].body)
    assert.equal("hook-single", ev.msgidClient)
    assert.equal("TEXT", ev.msgType)
    helpers.sleep(0.2)
    local _, s = sink:get("/_emulator/sink")
    assert.equal(1, #s.requests)
  end)
end)
