-- The wire, exactly as API.md says, seen from the emulator's side.
local commsease = require "commsease"
local helpers = require "helpers"
local cjson = require "cjson"

describe("signing", function()
  it("matches API.md's known-answer CheckSum vector", function()
    assert.equal("2f45bdd8cc89d97631345e9fcba98184de732ae2",
                 commsease.checksum("secret", "12345", "1508481877"))
    -- and the independent sha1sum of the same concatenation
    assert.equal(helpers.sign("secret", "12345", "1508481877"),
                 commsease.checksum("secret", "12345", "1508481877"))
  end)
end)

describe("the request on the wire", function()
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

  local function last_request()
    local reqs = emu:requests()
    return reqs[#reqs], #reqs
  end

  it("carries AppKey, a fresh 32-hex Nonce, CurTime, a valid CheckSum and the fixed headers", function()
    local p = {roomid = 765788, fromAccid = "npc", toAccids = {"p1"}, msgList = {commsease.text("hi")}}
    local res = assert(client:send(p))
    local r1 = last_request()
    assert(client:send(p))
    local r2 = last_request()
    for _, r in ipairs{r1, r2} do
      local h = r.headers
      assert.equal("POST", r.method)
      assert.equal("/nimserver/chatroom/batchSendMsgToSomeone.action", r.path)
      assert.equal(emu.appkey, h.AppKey)
      assert.matches("^%x+$", h.Nonce)
      assert.equal(32, #h.Nonce)
      assert.matches("^%d+$", h.CurTime)
      assert.is_true(math.abs(tonumber(h.CurTime) - os.time()) <= 5)
      assert.equal(helpers.sign(emu.secret, h.Nonce, h.CurTime), h.CheckSum)
      assert.equal("application/x-www-form-urlencoded;charset=utf-8", h["Content-Type"])
      assert.matches("^commsease%-lua/%d+%.%d+%.%d+$", h["User-Agent"])
      assert.matches("^%x+$", h.RequestId)
      assert.is_nil(h.Expect)
    end
    assert.are_not.equal(r1.headers.Nonce, r2.headers.Nonce)
    assert.are_not.equal(r1.headers.RequestId, r2.headers.RequestId)
    assert.equal(res.request_id, r1.headers.RequestId)
  end)

  it("sends a form with msgList and toAccids as JSON text and leaves unset options out", function()
    local res = assert(client:send{
      roomid = "765788", fromAccid = "npc_merchant", toAccids = {"p1001", "P1002"},
      msgList = {
        commsease.text("Your auction was won & paid: 100%", {msgId = "a-17"}),
        commsease.image({url = "https://cdn.example/x.jpg", md5 = "abc", ext = "jpg", w = 64,
                         h = 48, size = 2048}, {msgId = "img-1", ext = {v = 2}}),
        {msgId = "c-9", msgType = "custom", attach = {kind = "reward", gold = 50}, subType = 3,
         resendFlag = false},
      },
      route = 0,
    })
    local form = last_request().form
    local keys = {}
    for k in pairs(form) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.same({"fromAccid", "msgList", "roomid", "route", "toAccids"}, keys)
    assert.equal("765788", form.roomid)
    assert.equal("npc_merchant", form.fromAccid)
    assert.equal("0", form.route)
    assert.same({"p1001", "P1002"}, cjson.decode(form.toAccids))
    local msgs = cjson.decode(form.msgList)
    assert.equal(3, #msgs)
    assert.same({msgId = "a-17", msgType = 0, attach = "Your auction was won & paid: 100%"}, msgs[1])
    assert.equal(1, msgs[2].msgType)
    assert.same({url = "https://cdn.example/x.jpg", md5 = "abc", ext = "jpg", w = 64, h = 48,
                 size = 2048}, cjson.decode(msgs[2].attach))
    assert.same({v = 2}, cjson.decode(msgs[2].ext))
    -- "/" stays "/" (lua-cjson alone would write "\/", a character more each)
    assert.truthy(msgs[2].attach:find('"url":"https://cdn.example/x.jpg"', 1, true), msgs[2].attach)
    assert.same({msgId = "c-9", msgType = 100, subType = 3, resendFlag = 0,
                 attach = msgs[3].attach}, msgs[3])
    assert.same({kind = "reward", gold = 50}, cjson.decode(msgs[3].attach))
    assert.same({"a-17", "img-1", "c-9"}, res.msgIds)
  end)

  it("sends booleans as true/false, route=true as 1, and JSON options as JSON text", function()
    assert(client:send{
      roomid = 1, fromAccid = "a", toAccids = {"b"},
      msgList = {commsease.custom('{"x":1}')}, route = true, useYidun = 0,
      antispam = true, antispamCustom = {type = 1, data = "custom words"},
      yidunAntiCheating = '{"k":"v"}', yidunAntiSpamExt = {e = 1}, bid = "biz-1", env = "prod",
    })
    local form = last_request().form
    assert.equal("true", form.antispam)
    assert.equal("1", form.route)
    assert.equal("0", form.useYidun)
    assert.same({type = 1, data = "custom words"}, cjson.decode(form.antispamCustom))
    assert.equal('{"k":"v"}', form.yidunAntiCheating)
    assert.same({e = 1}, cjson.decode(form.yidunAntiSpamExt))
    assert.equal("biz-1", form.bid)
    assert.equal("prod", form.env)
    assert(client:send{roomid = 1, fromAccid = "a", toAccids = {"b"},
                       msgList = {commsease.custom({y = 2})}, antispam = false})
    assert.equal("false", last_request().form.antispam)
  end)

  it("keeps a backslash before a slash when it writes tables as JSON", function()
    assert(client:send{roomid = 1, fromAccid = "a", toAccids = {"b"},
                       msgList = {commsease.custom({path = "C:\\dir/file", url = "a/b"})}})
    local msgs = cjson.decode(last_request().form.msgList)
    assert.same({path = "C:\\dir/file", url = "a/b"}, cjson.decode(msgs[1].attach))
  end)

  it("generates a UUID msgId for messages without one", function()
    local res = assert(client:send{roomid = 1, fromAccid = "a", toAccids = {"b"},
                                   msgList = {commsease.text("x"), commsease.tip("y")}})
    for _, id in ipairs(res.msgIds) do
      assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x+$", id)
    end
    assert.are_not.equal(res.msgIds[1], res.msgIds[2])
  end)

  it("prepare() builds the same signed request without any I/O", function()
    local before = emu:stats().requests
    local req = assert(client:prepare{roomid = 9, fromAccid = "a", toAccids = {"b"},
                                      msgList = {commsease.text("x", {msgId = "p1"})}})
    assert.equal(before, emu:stats().requests)
    assert.equal("POST", req.method)
    assert.equal(emu.url, req.url)
    assert.equal(helpers.sign(emu.secret, req.headers.Nonce, req.headers.CurTime), req.headers.CheckSum)
    assert.same({"p1"}, req.msgIds)
    -- the caller's own HTTP client can send it as is
    local status, body = helpers.http(req.method, req.url, req.headers, req.body)
    assert.equal(200, status)
    local res = assert(commsease.parse(status, body))
    assert.is_table(res.success.p1)
  end)
end)
