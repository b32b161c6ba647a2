-- examples/openresty/ runs as shipped (paths and port rewritten) against the emulator.
local helpers = require "helpers"
local nginx = require "helpers_nginx"
local cjson = require "cjson"

local function readfile(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

describe("examples/openresty", function()
  local emu, ng
  setup(function()
    emu = helpers.start_emulator({"--rate-limit", "0"})
    local conf = readfile("examples/openresty/nginx.conf")
    local n
    conf, n = conf:gsub("/opt/commsease/build%-jit/%?%.so", "$CPATH")
    assert.equal(1, n)
    conf, n = conf:gsub("/opt/commsease", "$ROOT")
    assert.is_true(n >= 2)
    conf, n = conf:gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:$PORT;")
    assert.equal(1, n)
    ng = nginx.start{conf = "daemon off;\n" .. conf,
                     env = {COMMSEASE_APPKEY = emu.appkey, COMMSEASE_SECRET = emu.secret,
                            COMMSEASE_ENDPOINT = emu.base}}
  end)
  teardown(function()
    if ng then ng:stop() end
    if emu then emu:stop() end
  end)

  local function post(path, tbl)
    local st, body = helpers.http("POST", ng.root .. path, {["Content-Type"] = "application/json"},
                                  cjson.encode(tbl), 20)
    return st, body and cjson.decode(body)
  end

  it("POST /notify sends one batch and answers each message's outcome", function()
    emu:faults{{action = "fail_msg", match = {msgId = "spam"}, reason = "anti-spam hit"}}
    local st, out = post("/notify", {roomid = 8, fromAccid = "sys", toAccids = {"ann", "bea"},
                                     msgList = {{msgId = "hello", msgType = 0, attach = "hi"},
                                                {msgId = "spam", msgType = 0, attach = "buy now"}}})
    assert.equal(200, st)
    assert.is_string(out.request_id)
    assert.equal("hello", out.messages[1].msgId)
    assert.is_true(out.messages[1].ok)
    assert.is_number(out.messages[1].time)
    assert.same({msgId = "spam", ok = false, reason = "anti-spam hit"}, out.messages[2])
    assert.equal(1, #emu:inbox("bea"))
    -- bad data: 400, nothing sent, and the error names the field
    local requests = emu:stats().requests
    st, out = post("/notify", {roomid = 8, fromAccid = "sys", toAccids = {"not valid!"},
                               msgList = {{msgType = 0, attach = "x"}}})
    assert.equal(400, st)
    assert.equal("invalid", out.kind)
    assert.equal("toAccids[1]", out.field)
    assert.is_false(out.sent)
    assert.equal(requests, emu:stats().requests)
    -- not JSON at all
    local rst, rbody = helpers.http("POST", ng.root .. "/notify", {["Content-Type"] = "application/json"},
                                    "roomid=1", 10)
    assert.equal(400, rst)
    assert.equal("invalid", cjson.decode(rbody).kind)
    -- the service failing: 502 with what the error says
    emu:faults{{action = "code", code = 13004, desc = "sender muted"}}
    st, out = post("/notify", {roomid = 8, fromAccid = "sys", toAccids = {"ann"},
                               msgList = {{msgType = 0, attach = "x"}}})
    assert.equal(502, st)
    assert.equal("api", out.kind)
    assert.equal(13004, out.code)
    assert.is_nil(out.error:find(emu.secret, 1, true))
  end)

  it("POST /announce answers 202 at once; GET /announce/ID shows progress, then the report", function()
    local to = {}
    for i = 1, 450 do to[i] = "fan" .. i end
    local msgs = {}
    for i = 1, 12 do msgs[i] = {msgId = "an" .. i, msgType = 0, attach = "announcement " .. i} end
    emu:faults{{action = "delay", ms = 300, when = "before", count = 3}}
    local t0 = helpers.now()
    local st, out = post("/announce", {roomid = 9, fromAccid = "sys", toAccids = to, msgList = msgs})
    assert.is_true(helpers.now() - t0 < 0.3, "the 202 came after " .. (helpers.now() - t0) .. " s")
    assert.equal(202, st)
    assert.equal(10, out.calls)
    local id = out.id
    local seen_running = false
    local report = helpers.wait_until(function()
      local s, r = ng:get("/announce/" .. id)
      assert.equal(200, s)
      if r.state == "running" then seen_running = true end
      return r.state ~= "running" and r
    end, 30)
    assert.is_true(seen_running)
    assert.equal("done", report.state)
    assert.equal(10, report.calls)
    assert.equal(10, report.ok)
    assert.equal(0, report.failed)
    assert.equal(450, report.recipients)
    for _, who in ipairs{"fan1", "fan250", "fan450"} do
      local inbox = emu:inbox(who)
      assert.equal(12, #inbox, who)
    end
    -- unknown ids and bad data
    assert.equal(404, (ng:get("/announce/0-0-0")))
    st, out = post("/announce", {roomid = 9, fromAccid = "sys", toAccids = to, msgList = {}})
    assert.equal(400, st)
    assert.equal("invalid", out.kind)
  end)

  it("keeps the secret out of the error log", function()
    assert.is_nil(ng:log():find(emu.secret, 1, true))
  end)
end)
