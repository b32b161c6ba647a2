-- client:send_one (chatroom/sendMsgToSomeone.action), client:call (any
-- nimserver endpoint, signed the same way), and the 431 path: a resend
-- answered 431 means an earlier attempt was processed, so the module sends
-- once more with a new RequestId and resendFlag = 1 and learns each message's
-- outcome; every inbox still holds every message once.
local commsease = require "commsease"
local helpers = require "helpers"

local SINGLE = "/nimserver/chatroom/sendMsgToSomeone.action"
local RESEND = "parameter resendFlag should be used for RESEND!"

local function header(h, name)
  for k, v in pairs(h) do if k:lower() == name:lower() then return v end end
end

describe("client:send_one", function()
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

  it("sends one message's fields at the top level and returns the one message object", function()
    local res, err = client:send_one{roomid = 36, fromAccid = "alice", toAccids = {"bob", "carol"},
                                     msgId = "one-1", msgType = "custom", attach = {kind = "gift"},
                                     ext = {k = 1}, subType = 3}
    assert.is_nil(err)
    assert.equal("one-1", res.msgid_client)
    assert.equal(36, res.roomId)
    assert.equal(100, res.type)
    assert.equal("alice", res.fromAccount)
    assert.equal('{"kind":"gift"}', res.attach)
    assert.is_true(math.type == nil or math.type(res.time) == "integer" or res.time == math.floor(res.time))
    local reqs = emu:requests()
    assert.equal(1, #reqs)
    local f = reqs[1].form
    assert.equal(SINGLE, reqs[1].path)
    assert.is_nil(f.msgList)
    assert.equal("one-1", f.msgId)
    assert.equal("100", f.msgType)
    assert.equal('{"kind":"gift"}', f.attach)
    assert.equal('{"k":1}', f.ext)
    assert.equal("3", f.subType)
    assert.equal('["bob","carol"]', f.toAccids)
    assert.equal("36", f.roomid)
    assert.truthy(header(reqs[1].headers, "RequestId"))
    assert.equal(1, #emu:inbox("bob"))
    assert.equal(1, #emu:inbox("carol"))
  end)

  it("makes a msgId when none is given", function()
    local res = assert(client:send_one{roomid = 1, fromAccid = "a", toAccids = {"b"}, msgType = 0,
                                       attach = "hi"})
    assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", res.msgid_client)
    assert.equal(res.msgid_client, emu:inbox("b")[1].msgid_client)
  end)

  it("keeps a roomid beyond 2^53 exact both ways", function()
    local res = assert(client:send_one{roomid = "9007199254740993", fromAccid = "a", toAccids = {"b"},
                                       msgType = 0, attach = "hi"})
    if math.type and math.type(res.roomId) == "integer" then
      assert.equal(9007199254740993, res.roomId)
    else
      assert.equal("9007199254740993", tostring(res.roomId))
    end
  end)

  it("gives the service's resend semantics: a repeat is refused, a resend succeeds", function()
    local p = {roomid = 1, fromAccid = "a", toAccids = {"b"}, msgId = "rep-1", msgType = 0, attach = "x"}
    assert(client:send_one(p))
    local res, err = client:send_one(p)
    assert.is_nil(res)
    assert.equal("api", err.kind)
    assert.equal(414, err.code)
    assert.equal(RESEND, err.message)
    p.resendFlag = 1
    res = assert(client:send_one(p))
    assert.equal("rep-1", res.msgid_client)
    assert.equal(1, #emu:inbox("b"))
  end)

  local bad = {
    {"an image without attach", {msgType = "image", attach = helpers.NULL}, "attach"},
    {"an unknown msgType", {msgType = 5}, "msgType"},
    {"an image attach without md5", {msgType = "image", attach = {url = "u", ext = "png", w = 1, h = 1, size = 1}},
     "attach.md5"},
    {"101 recipients", {toAccids = (function() local t = {} for i = 1, 101 do t[i] = "u" .. i end return t end)()},
     "toAccids"},
    {"a bad accid", {toAccids = {"ok", "not ok"}}, "toAccids[2]"},
    {"an ext over 4096 characters", {ext = string.rep("x", 4097)}, "ext"},
    {"a msgList", {msgList = {commsease.text("x")}}, "msgList"},
    {"an unknown field (a typo)", {atach = "x"}, "atach"},
  }
  for _, case in ipairs(bad) do
    it("refuses " .. case[1] .. " by the same rules, naming the top-level field, sending nothing", function()
      local p = {roomid = 1, fromAccid = "a", toAccids = {"b"}, msgType = 0, attach = "x"}
      for k, v in pairs(case[2]) do
        if v == helpers.NULL then p[k] = nil else p[k] = v end
      end
      local res, err = client:send_one(p)
      assert.is_nil(res)
      assert.equal("invalid", err.kind)
      assert.equal(case[3], err.field)
      assert.is_nil(err.message:find("msgList[1]", 1, true))
      assert.is_false(err.sent)
      assert.same({}, emu:requests())
    end)
  end

  it("refuses params that are not a table", function()
    local res, err = client:send_one("x")
    assert.is_nil(res)
    assert.equal("invalid", err.kind)
  end)
end)

describe("client:call", function()
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

  it("signs and posts any path, form values as strings, numbers, booleans or JSON", function()
    local res, err = client:call("chatroom/sendMsgToSomeone.action", {
      roomid = 42, fromAccid = "alice", toAccids = {"bob"}, msgId = "call-1", msgType = 0,
      attach = "via call", route = 0, antispam = false})
    assert.is_nil(err)
    assert.equal(200, res.code)
    if math.type then assert.equal("integer", math.type(res.code)) end
    assert.equal("call-1", res.desc.msgid_client)
    local r = emu:requests()[1]
    assert.equal(SINGLE, r.path)
    assert.equal('["bob"]', r.form.toAccids)
    assert.equal("42", r.form.roomid)
    assert.equal("false", r.form.antispam)
    -- keys in byte order: the same table gives the same body
    assert.equal("antispam=false&attach=via%20call&fromAccid=alice&msgId=call-1&msgType=0&roomid=42"
                 .. "&route=0&toAccids=%5B%22bob%22%5D", r.body)
    assert.equal(1, #emu:inbox("bob"))
  end)

  it("takes the path with or without its leading slash", function()
    local res = assert(client:call("/chatroom/batchSendMsgToSomeone.action", helpers.good_form()))
    assert.equal(200, res.code)
    assert.equal(1, #res.success)
  end)

  it("returns an answer's code other than 200 as an api error, as send does", function()
    local res, err = client:call("chatroom/sendMsgToSomeone.action", {roomid = 42})
    assert.is_nil(res)
    assert.equal("api", err.kind)
    assert.equal(414, err.code)
    assert.is_true(err.sent)
    assert.matches("^%x+$", err.request_id)
  end)

  it("returns a non-200 HTTP status as an http error", function()
    local res, err = client:call("user/create.action", {accid = "x"})
    assert.is_nil(res)
    assert.equal("http", err.kind)
    assert.equal(404, err.code)
  end)

  it("refuses form values it cannot send exactly", function()
    for _, v in ipairs({function() end, 2^60 + 0.0, 0 / 0, math.huge}) do
      local res, err = client:call("x/y.action", {v = v})
      assert.is_nil(res)
      assert.equal("invalid", err.kind)
      assert.equal("v", err.field)
    end
    local _, err = client:call("x/y.action", {[1] = "positional"})
    assert.equal("invalid", err.kind)
    assert.same({}, emu:requests())
  end)

  it("raises on a path that is not a nimserver path", function()
    for _, p in ipairs({"", "/", "http://evil.example/x", "a/../b", "a//b", "a b", "a/", 42}) do
      assert.is_false((pcall(client.call, client, p, {})), tostring(p))
    end
    assert.is_false((pcall(client.call, client, "a/b.action", "form")))
  end)

  it("fails over like send: a dead endpoint first, then the emulator", function()
    local c = helpers.client_for(emu, {endpoints = {"http://127.0.0.1:9/nimserver", emu.base}, retries = 1})
    local res = assert(c:call("chatroom/sendMsgToSomeone.action", {roomid = 1, fromAccid = "a",
      toAccids = {"b"}, msgId = "fo-1", msgType = 0, attach = "x"}))
    assert.equal(200, res.code)
    c:close()
  end)

  it("is paced by the client's rate_limit like every call", function()
    local c = helpers.client_for(emu, {rate_limit = 2})
    local t0 = helpers.now()
    for _ = 1, 3 do c:call("x/y.action", {}) end
    assert.is_true(helpers.now() - t0 >= 0.9, "3 calls at 2 per second take a second")
    c:close()
  end)
end)

describe("the 431 path", function()
  local emu
  before_each(function() emu = helpers.start_emulator({"--rate-limit", "0", "--request-id-window", "60"}) end)
  after_each(function() emu:stop() end)

  local function rids()
    local out = {}
    for i, r in ipairs(emu:requests()) do out[i] = header(r.headers, "RequestId") end
    return out
  end

  it("client:send: a 502 after delivery, the failover answered 431, a resend with a new RequestId", function()
    local c = helpers.client_for(emu, {retries = 1})
    emu:faults({{action = "status", status = 502, after_deliver = true}})
    local res, err = c:send{roomid = 5, fromAccid = "a", toAccids = {"b", "c"},
                            msgList = {commsease.text("one"), commsease.text("two", {msgId = "t2"})}}
    assert.is_nil(err)
    assert.equal(2, #res.msgIds)
    for _, id in ipairs(res.msgIds) do assert.truthy(res.success[id], id) end
    assert.same({}, res.fail)
    local ids = rids()
    assert.equal(3, #ids)
    assert.equal(ids[1], ids[2])        -- the failover keeps the RequestId: 431
    assert.are_not.equal(ids[2], ids[3]) -- the resend has a new one
    local last = helpers.json.decode(emu:requests()[3].form.msgList)
    for i, m in ipairs(last) do
      assert.equal(1, m.resendFlag)
      assert.equal(res.msgIds[i], m.msgId) -- generated msgIds kept
    end
    assert.equal(1, emu:stats().codes["431"])
    assert.equal(2, #emu:inbox("b"))
    assert.equal(1, c:stats().repeats)
    c:close()
  end)

  it("client:send_one: the same", function()
    local c = helpers.client_for(emu, {retries = 1})
    emu:faults({{action = "status", status = 502, after_deliver = true}})
    local res = assert(c:send_one{roomid = 5, fromAccid = "a", toAccids = {"b"}, msgType = 0, attach = "x"})
    local reqs = emu:requests()
    assert.equal(3, #reqs)
    assert.equal("1", reqs[3].form.resendFlag)
    assert.equal(res.msgid_client, reqs[3].form.msgId)
    assert.equal(1, #emu:inbox("b"))
    c:close()
  end)

  it("client:send_all: the same, generated msgIds kept", function()
    local c = helpers.client_for(emu, {retries = 1})
    emu:faults({{action = "status", status = 502, after_deliver = true, match = {accid = "only-me"}}})
    local out = c:send_all({
      {roomid = 5, fromAccid = "a", toAccids = {"only-me"}, msgList = {commsease.text("x")}},
      {roomid = 5, fromAccid = "a", toAccids = {"other"}, msgList = {commsease.text("y")}},
    })
    for i = 1, 2 do
      local r = assert(out[i].res, tostring(out[i].err))
      for _, id in ipairs(r.msgIds) do assert.truthy(r.success[id]) end
    end
    assert.equal(1, #emu:inbox("only-me"))
    assert.equal(1, emu:stats().codes["431"])
    c:close()
  end)

  it("client:fanout: a connection dropped after delivery, the resend answered 431, then learnt", function()
    local c = helpers.client_for(emu)
    emu:faults({{action = "close", after_deliver = true}})
    local report = assert(c:fanout({roomid = 5, fromAccid = "a", toAccids = {"b", "c"},
                                    msgList = {commsease.text("x", {msgId = "fx"})}},
                                   {backoff = 0.01}))
    assert.equal(1, report.ok)
    assert.same({}, report.failures)
    local ids = rids()
    assert.equal(3, #ids)
    assert.equal(ids[1], ids[2])
    assert.are_not.equal(ids[2], ids[3])
    assert.equal(1, emu:stats().codes["431"])
    assert.equal(1, #emu:inbox("b"))
    assert.equal(1, c:stats().repeats)
    c:close()
  end)

  it("client:call has no 431 path: the 431 is its answer", function()
    local c = helpers.client_for(emu, {retries = 1})
    emu:faults({{action = "status", status = 502, after_deliver = true}})
    local res, err = c:call("chatroom/batchSendMsgToSomeone.action", helpers.good_form())
    assert.is_nil(res)
    assert.equal(431, err.code)
    assert.equal(2, #emu:requests())
    c:close()
  end)
end)
