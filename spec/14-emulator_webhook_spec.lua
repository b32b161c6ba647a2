-- Webhook events, checked against an emulator running as the sink, with the
-- signature recomputed by md5sum and sha1sum.
local helpers = require("helpers")
local json = helpers.json

local function header(h, name)
  for k, v in pairs(h) do if k:lower() == name:lower() then return v end end
end

describe("emulator webhook", function()
  local sink, emu
  setup(function()
    sink = helpers.start_emulator()
    emu = helpers.start_emulator({"--secret", "hook-secret", "--appkey", "hook-app",
                                  "--webhook", sink.root .. "/_emulator/sink"})
  end)
  teardown(function()
    emu:stop()
    sink:stop()
  end)
  before_each(function()
    sink:reset()
    emu:reset()
  end)

  local function sunk(n)
    return helpers.wait_until(function()
      local _, j = sink:get("/_emulator/sink")
      return j and #j.requests >= n and j.requests
    end, 5)
  end

  it("posts one signed event per delivered message of a route=1 call", function()
    local before = math.floor(helpers.now() * 1000)
    local _, j = helpers.signed_post(emu, helpers.good_form({
      roomid = "77", fromAccid = "Alice", toAccids = {"bob", "carol"},
      msgList = {{msgId = "w1", msgType = 0, attach = "hello", ext = "{\"a\":1}"},
                 {msgId = "w2", msgType = 1, attach = json.encode({md5 = "m", url = "u", ext = "jpg",
                                                                   w = 1, h = 2, size = 3})}}}))
    assert.equal(200, j.code)
    local reqs = assert(sunk(2), "no webhook events")
    helpers.sleep(0.2)
    local _, all = sink:get("/_emulator/sink")
    assert.equal(2, #all.requests) -- one per message, not per recipient
    local events = {}
    for _, r in ipairs(reqs) do
      local h = r.headers
      assert.equal("hook-app", header(h, "AppKey"))
      assert.matches("^application/json;%s*charset=utf%-8$", header(h, "Content-Type"))
      local curtime = header(h, "CurTime")
      assert.matches("^%d+$", curtime)
      assert.is_true(math.abs(tonumber(curtime) - before) < 60000, "CurTime in ms")
      local md5 = helpers.md5_hex(r.body)
      assert.equal(md5, header(h, "MD5"))
      assert.equal(helpers.sha1_hex("hook-secret" .. md5 .. curtime), header(h, "CheckSum"))
      local ev = assert(json.decode(r.body))
      for k, v in pairs(ev) do assert.equal("string", type(v), k) end
      events[ev.msgidClient] = ev
    end
    local e1 = events.w1
    assert.equal("4", e1.eventType)
    assert.equal("hello", e1.attach)
    assert.equal("{\"a\":1}", e1.ext)
    assert.equal("Alice", e1.fromAccount)
    assert.equal("Alice", e1.fromNick)
    assert.equal("", e1.fromAvator)
    assert.equal("REST", e1.fromClientType)
    assert.equal("", e1.fromExt)
    assert.equal("TEXT", e1.msgType)
    assert.equal("0", e1.resendFlag)
    assert.equal("77", e1.roomId)
    assert.matches("^%d+$", e1.msgTimestamp)
    assert.equal("PICTURE", events.w2.msgType)
  end)

  it("posts nothing for route=0 and for a repeated msgId", function()
    local form = helpers.good_form({route = "0", msgList = {{msgId = "r0", msgType = 0, attach = "x"}}})
    helpers.signed_post(emu, form)
    local again = helpers.good_form({msgList = {{msgId = "r1", msgType = 0, attach = "y"}}})
    helpers.signed_post(emu, again)
    again.msgList[1].resendFlag = 1
    helpers.signed_post(emu, again) -- a resend: success, but no second event
    helpers.signed_post(emu, helpers.good_form({msgList = {{msgId = "r2", msgType = 0, attach = "z"}}}))
    -- events go out in order from one queue: once r2 arrived, r0 and a second r1 would have too
    local reqs = assert(sunk(2))
    local ids = {}
    for _, r in ipairs(reqs) do ids[#ids + 1] = json.decode(r.body).msgidClient end
    assert.same({"r1", "r2"}, ids)
  end)

  it("answers without waiting for a webhook that does not answer", function()
    -- a listening socket that never accepts: the webhook request hangs until its 5 s timeout
    local socket = require("socket")
    local srv = assert(socket.bind("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local e = helpers.start_emulator({"--webhook", "http://127.0.0.1:" .. port .. "/hook"})
    local t0 = helpers.now()
    for i = 1, 3 do
      local _, j = helpers.signed_post(e, helpers.good_form({msgList = {{msgId = "h" .. i, msgType = 0,
                                                                        attach = "x"}}}))
      assert.equal(200, j.code)
    end
    assert.is_true(helpers.now() - t0 < 1)
    assert.is_true(e:stats().webhook.queued >= 1)
    -- and it still stops promptly with an event in flight
    local t1 = helpers.now()
    local how, code = e:stop()
    assert.equal("exit", how)
    assert.equal(0, code)
    assert.is_true(helpers.now() - t1 < 3)
    srv:close()
  end)

  it("counts failed deliveries to a closed port", function()
    local socket = require("socket")
    local srv = assert(socket.bind("127.0.0.1", 0))
    local _, port = srv:getsockname()
    srv:close()
    local e = helpers.start_emulator({"--webhook", "http://127.0.0.1:" .. port .. "/hook"})
    helpers.signed_post(e, helpers.good_form())
    assert.truthy(helpers.wait_until(function() return e:stats().webhook.failed == 1 end, 5))
    e:stop()
  end)

  it("the sink records any request and answers 200", function()
    local st = helpers.http("POST", sink.root .. "/_emulator/sink", {["X-Test"] = "1"}, "raw body")
    assert.equal(200, st)
    local reqs = sunk(1)
    assert.equal("raw body", reqs[1].body)
    assert.equal("1", header(reqs[1].headers, "x-test"))
  end)
end)
