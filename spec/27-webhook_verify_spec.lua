-- commsease.verify_webhook: the emulator's own webhook deliveries verify end to
-- end; a changed body, a changed CheckSum, an old or future CurTime, a missing
-- or repeated header and a body that is not JSON are refused with kind
-- "invalid" and a message naming the check; the secret never shows.
local commsease = require "commsease"
local helpers = require "helpers"
local json = helpers.json

local SECRET = "hook-Secret-7f3a"

local function copy(t)
  local o = {}
  for k, v in pairs(t) do o[k] = v end
  return o
end

local function header(h, name)
  for k, v in pairs(h) do if k:lower() == name:lower() then return v, k end end
end

-- a webhook request signed by hand (md5sum and sha1sum, not our C)
local function signed(body, curtime_ms, secret)
  local md5 = helpers.md5_hex(body)
  local ct = tostring(curtime_ms)
  return {MD5 = md5, CurTime = ct, CheckSum = helpers.sha1_hex((secret or SECRET) .. md5 .. ct),
          AppKey = "hook-app", ["Content-Type"] = "application/json;charset=utf-8"}
end

local function refuses(args, field, pattern)
  local ev, err = commsease.verify_webhook(args)
  assert.is_nil(ev)
  assert.equal("invalid", err.kind)
  assert.equal(field, err.field)
  assert.matches(pattern, err.message)
  assert.is_false(err.sent)
  assert.is_false(err.retryable)
  assert.is_nil(tostring(err):find(SECRET, 1, true))
  assert.is_nil(err.message:find(SECRET, 1, true))
  return err
end

describe("commsease.verify_webhook against the emulator's deliveries", function()
  local sink, emu
  setup(function()
    sink = helpers.start_emulator()
    emu = helpers.start_emulator({"--secret", SECRET, "--appkey", "hook-app", "--rate-limit", "0",
                                  "--webhook", sink.root .. "/_emulator/sink"})
  end)
  teardown(function()
    emu:stop()
    sink:stop()
  end)

  local deliveries
  it("verifies every event the emulator posts and hands back the decoded event", function()
    local client = helpers.client_for(emu)
    local res = assert(client:send{
      roomid = "9007199254740993", fromAccid = "alice", toAccids = {"bob", "carol"},
      msgList = {commsease.text("hello webhook", {msgId = "wv1"}),
                 commsease.custom({kind = "gift", n = 3}, {msgId = "wv2", ext = {k = "v"}})},
    })
    assert.truthy(res.success.wv1)
    client:close()
    deliveries = helpers.wait_until(function()
      local _, j = sink:get("/_emulator/sink")
      return j and #j.requests >= 2 and j.requests
    end, 5)
    assert.truthy(deliveries, "the emulator posted no webhook events")
    local seen = {}
    for _, r in ipairs(deliveries) do
      local ev, err = commsease.verify_webhook{secret = SECRET, headers = r.headers, body = r.body}
      assert.is_nil(err)
      assert.equal("table", type(ev))
      assert.equal("4", ev.eventType)
      assert.equal("9007199254740993", ev.roomId) -- a string in the event: exact
      seen[ev.msgidClient] = ev
    end
    assert.equal("hello webhook", seen.wv1.attach)
    assert.equal("TEXT", seen.wv1.msgType)
    assert.equal("CUSTOM", seen.wv2.msgType)
    assert.same({kind = "gift", n = 3}, json.decode(seen.wv2.attach))
  end)

  it("takes header names in any case (as nginx and Go hand them over)", function()
    local r = assert(deliveries and deliveries[1])
    local lower, upper = {}, {}
    for k, v in pairs(r.headers) do lower[k:lower()] = v; upper[k:upper()] = v end
    assert.truthy(commsease.verify_webhook{secret = SECRET, headers = lower, body = r.body})
    assert.truthy(commsease.verify_webhook{secret = SECRET, headers = upper, body = r.body})
  end)

  it("refuses a delivery whose body was changed", function()
    local r = assert(deliveries and deliveries[1])
    local body = r.body:gsub("hello webhook", "hello w3bhook")
    if body == r.body then body = r.body:gsub('"eventType":"4"', '"eventType":"5"') end
    assert.are_not.equal(r.body, body)
    refuses({secret = SECRET, headers = r.headers, body = body}, "MD5", "does not match the md5 of the body")
  end)

  it("refuses a changed body that comes with a matching MD5 (the CheckSum covers the MD5)", function()
    local r = assert(deliveries and deliveries[1])
    local body = r.body .. " "
    local h = copy(r.headers)
    local _, name = header(h, "MD5")
    h[name] = helpers.md5_hex(body)
    refuses({secret = SECRET, headers = h, body = body}, "CheckSum", "does not match")
  end)

  it("refuses a changed CheckSum, and one made with another secret", function()
    local r = assert(deliveries and deliveries[1])
    local h = copy(r.headers)
    local sum, name = header(h, "CheckSum")
    local last = sum:sub(-1)
    h[name] = sum:sub(1, -2) .. (last == "0" and "1" or "0")
    refuses({secret = SECRET, headers = h, body = r.body}, "CheckSum", "does not match")
    refuses({secret = SECRET .. "x", headers = r.headers, body = r.body}, "CheckSum", "does not match")
  end)

  it("refuses an old CurTime, with max_age in seconds", function()
    local r = assert(deliveries and deliveries[1])
    local ct = tonumber((header(r.headers, "CurTime")))
    local err = refuses({secret = SECRET, headers = r.headers, body = r.body, now = ct / 1000 + 301},
                        "CurTime", "old")
    assert.matches("at most 300 s", err.message)
    -- just inside the default window, and a narrower window refuses what the default takes
    assert.truthy(commsease.verify_webhook{secret = SECRET, headers = r.headers, body = r.body,
                                           now = ct / 1000 + 299})
    refuses({secret = SECRET, headers = r.headers, body = r.body, now = ct / 1000 + 11, max_age = 10},
            "CurTime", "old")
  end)

  for _, name in ipairs({"MD5", "CurTime", "CheckSum"}) do
    it("refuses a delivery without the " .. name .. " header", function()
      local r = assert(deliveries and deliveries[1])
      local h = copy(r.headers)
      local _, k = header(h, name)
      h[k] = nil
      refuses({secret = SECRET, headers = h, body = r.body}, name, "header " .. name .. " is missing")
    end)
  end
end)

describe("commsease.verify_webhook on requests signed by hand", function()
  local body = '{"eventType":"4","attach":"hi","msgidClient":"x1","roomId":"42"}'
  local now = 1700000000.5
  local ct = 1700000000123

  it("accepts a good request and decodes the event", function()
    local ev = assert(commsease.verify_webhook{secret = SECRET, headers = signed(body, ct), body = body,
                                               now = now})
    assert.same({eventType = "4", attach = "hi", msgidClient = "x1", roomId = "42"}, ev)
  end)

  it("accepts MD5 and CheckSum in upper case", function()
    local h = signed(body, ct)
    h.MD5 = h.MD5:upper()
    h.CheckSum = helpers.sha1_hex(SECRET .. h.MD5 .. h.CurTime):upper()
    assert.truthy(commsease.verify_webhook{secret = SECRET, headers = h, body = body, now = now})
  end)

  it("refuses a CurTime in the future beyond max_age", function()
    refuses({secret = SECRET, headers = signed(body, ct + 301000), body = body, now = now},
            "CurTime", "in the future")
  end)

  it("refuses a CurTime in seconds and says the webhook's is in milliseconds", function()
    refuses({secret = SECRET, headers = signed(body, 1700000000), body = body, now = now},
            "CurTime", "milliseconds")
  end)

  it("refuses malformed headers", function()
    local h = signed(body, ct)
    h.CurTime = "17e11"
    refuses({secret = SECRET, headers = h, body = body, now = now}, "CurTime", "decimal milliseconds")
    h = signed(body, ct)
    h.MD5 = "abc"
    refuses({secret = SECRET, headers = h, body = body, now = now}, "MD5", "32 hex digits")
    h = signed(body, ct)
    h.CheckSum = h.CheckSum .. "00"
    refuses({secret = SECRET, headers = h, body = body, now = now}, "CheckSum", "40 hex digits")
  end)

  it("refuses a header given twice (two spellings, or a list of values)", function()
    local h = signed(body, ct)
    h.checksum = h.CheckSum
    refuses({secret = SECRET, headers = h, body = body, now = now}, "CheckSum", "more than once")
    h = signed(body, ct)
    h.MD5 = {h.MD5, h.MD5}
    refuses({secret = SECRET, headers = h, body = body, now = now}, "MD5", "more than once")
  end)

  it("refuses a well-signed body that is not a JSON object", function()
    for _, b in ipairs({"not json", "[1,2]", "42", "null", '{"a":1} trailing'}) do
      refuses({secret = SECRET, headers = signed(b, ct), body = b, now = now}, "body", "not a JSON object")
    end
  end)

  it("checks the signature before it parses the body", function()
    local b = "not json"
    local h = signed(b, ct, "another-secret")
    refuses({secret = SECRET, headers = h, body = b, now = now}, "CheckSum", "does not match")
  end)

  it("raises on misuse", function()
    local h = signed(body, ct)
    local cases = {
      {nil, "table expected"},
      {{headers = h, body = body}, "secret"},
      {{secret = "", headers = h, body = body}, "secret"},
      {{secret = SECRET, body = body}, "headers"},
      {{secret = SECRET, headers = h}, "body"},
      {{secret = SECRET, headers = h, body = body, max_age = "300"}, "max_age"},
      {{secret = SECRET, headers = h, body = body, max_age = -1}, "max_age"},
      {{secret = SECRET, headers = h, body = body, maxage = 300}, "unknown key 'maxage'"},
    }
    for i, c in ipairs(cases) do
      local ok, msg = pcall(commsease.verify_webhook, c[1])
      assert.is_false(ok, "case " .. i)
      assert.matches(c[2], msg, 1, true)
      assert.is_nil(msg:find(SECRET, 1, true))
    end
  end)
end)

describe("examples/openresty POST /webhook", function()
  local nginx = require "helpers_nginx"
  local emu, ng, hook_emu
  local function readfile(p)
    local f = assert(io.open(p, "rb"))
    local s = f:read("a")
    f:close()
    return s
  end
  setup(function()
    local conf = readfile("examples/openresty/nginx.conf")
    conf = conf:gsub("/opt/commsease/build%-jit/%?%.so", "$CPATH"):gsub("/opt/commsease", "$ROOT")
               :gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:$PORT;")
    ng = nginx.start{conf = "daemon off;\n" .. conf,
                     env = {COMMSEASE_APPKEY = "hook-app", COMMSEASE_SECRET = SECRET,
                            COMMSEASE_ENDPOINT = "http://127.0.0.1:9/nimserver"}}
    -- the emulator plays the service: it posts its webhook events to nginx
    emu = helpers.start_emulator({"--secret", SECRET, "--appkey", "hook-app", "--rate-limit", "0",
                                  "--webhook", ng.root .. "/webhook"})
    hook_emu = helpers.start_emulator({"--secret", "not-" .. SECRET, "--appkey", "hook-app",
                                       "--webhook", ng.root .. "/webhook"})
  end)
  teardown(function()
    if emu then emu:stop() end
    if hook_emu then hook_emu:stop() end
    if ng then ng:stop() end
  end)

  it("accepts the service's signed events and keeps them readable", function()
    local _, j = helpers.signed_post(emu, helpers.good_form({
      msgList = {{msgId = "ng-hook-1", msgType = 0, attach = "to nginx"}}}))
    assert.equal(200, j.code)
    local ev = helpers.wait_until(function()
      local st, e = ng:get("/webhook/ng-hook-1")
      return st == 200 and e
    end, 5)
    assert.truthy(ev, "the event did not arrive")
    assert.equal("to nginx", ev.attach)
    assert.truthy(helpers.wait_until(function() return emu:stats().webhook.sent == 1 end, 5))
  end)

  it("answers 403 to an event signed with another secret, and keeps nothing", function()
    local _, j = helpers.signed_post(hook_emu, helpers.good_form({
      msgList = {{msgId = "ng-forged-1", msgType = 0, attach = "forged"}}}))
    assert.equal(200, j.code)
    assert.truthy(helpers.wait_until(function() return hook_emu:stats().webhook.failed == 1 end, 5))
    assert.equal(404, (ng:get("/webhook/ng-forged-1")))
  end)

  it("answers 403 naming the check to a changed body or an old CurTime", function()
    local body = '{"eventType":"4","msgidClient":"ng-old","attach":"x"}'
    local h = signed(body, math.floor((helpers.now() - 400) * 1000))
    local st, out = helpers.http("POST", ng.root .. "/webhook", h, body)
    assert.equal(403, st)
    assert.matches("CurTime", out)
    h = signed(body, math.floor(helpers.now() * 1000))
    st, out = helpers.http("POST", ng.root .. "/webhook", h, body:gsub("x", "y"))
    assert.equal(403, st)
    assert.matches("MD5", out)
    assert.equal(404, (ng:get("/webhook/ng-old")))
    assert.is_nil(ng:log():find(SECRET, 1, true))
  end)
end)
