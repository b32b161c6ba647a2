-- commsease.new, the client object's life cycle, and misuse that raises.
local commsease = require "commsease"
local helpers = require "helpers"

local function good_opts(over)
  local o = {appkey = "demo-appkey", secret = "demo-secret", endpoint = "http://127.0.0.1:9/nimserver"}
  for k, v in pairs(over or {}) do o[k] = v end
  return o
end

describe("commsease.new", function()
  it("returns a client that prints as commsease.client (0x...)", function()
    local c = commsease.new(good_opts())
    assert.matches("^commsease%.client %(0x%x+%)$", tostring(c))
    c:close()
  end)

  local bad = {
    {"no appkey", {appkey = false}, "appkey"},
    {"no secret", {secret = false}, "secret"},
    {"an empty appkey", {appkey = ""}, "appkey"},
    {"a numeric secret", {secret = 42}, "secret"},
    {"CR/LF in the appkey", {appkey = "key\r\nX-Evil: 1"}, "control character"},
    {"LF in the secret", {secret = "abc\ndef"}, "control character"},
    {"a non-http endpoint", {endpoint = "ftp://example.com/nimserver"}, "http"},
    {"an endpoint with a space", {endpoint = "http://a b/"}, "space"},
    {"both endpoint and endpoints", {endpoints = {"http://127.0.0.1:1/x"}}, "not both"},
    {"an empty endpoints list", {endpoint = false, endpoints = {}}, "endpoints"},
    {"a negative timeout", {timeout = -1}, "timeout"},
    {"a string timeout", {timeout = "5"}, "timeout"},
    {"retries out of range", {retries = 99}, "retries"},
    {"an unknown option (a typo)", {tiemout = 5}, "unknown option 'tiemout'"},
  }
  for _, case in ipairs(bad) do
    it("raises on " .. case[1], function()
      local o = good_opts()
      for k, v in pairs(case[2]) do if v == false then o[k] = nil else o[k] = v end end
      local ok, msg = pcall(commsease.new, o)
      assert.is_false(ok)
      assert.matches(case[3], msg, 1, true)
      assert.not_matches("demo%-secret", msg)
    end)
  end

  it("raises when the options are not a table", function()
    assert.has_error(function() commsease.new("demo-appkey") end)
    assert.has_error(function() commsease.new() end)
  end)
end)

describe("client life cycle", function()
  it("close() is idempotent and later calls raise a clear error", function()
    local c = commsease.new(good_opts())
    assert.is_false(c:is_closed())
    c:close()
    c:close()
    assert.is_true(c:is_closed())
    assert.matches("closed", tostring(c))
    local ok, msg = pcall(c.send, c, {})
    assert.is_false(ok)
    assert.matches("client is closed", msg)
    assert.has_error(function() c:prepare({}) end)
    assert.has_error(function() c:send_all({}) end)
  end)

  it("a <close> variable closes the client at the end of its scope", function()
    -- 5.4: a real <close> variable; older Lua: __close called as 5.4 would
    local kept = helpers.with_close(commsease.new(good_opts()), function(c)
      assert(not c:is_closed())
      return c
    end)
    assert.is_true(kept:is_closed())
    kept:close() -- and a close after __close is still fine
  end)

  it("is collected by the GC, after close or without it, with no double free", function()
    local weak = setmetatable({}, {__mode = "v"})
    do
      local a = commsease.new(good_opts())
      local b = commsease.new(good_opts())
      a:close()
      weak[1], weak[2] = a, b
    end
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak[1])
    assert.is_nil(weak[2])
  end)

  it("methods raise on a value that is not a client", function()
    local c = commsease.new(good_opts())
    assert.has_error(function() c.send({}, {}) end)
    assert.has_error(function() c.close(io.stdout) end)
    c:close()
  end)

  it("two clients keep their own settings", function()
    local emu = helpers.start_emulator({"--rate-limit", "0"})
    finally(function() emu:stop() end)
    local good = helpers.client_for(emu)
    local wrong = commsease.new{appkey = emu.appkey, secret = "not-the-secret", endpoint = emu.base}
    local p = {roomid = 1, fromAccid = "a", toAccids = {"b"}, msgList = {commsease.text("x")}}
    local res = good:send(p)
    local _, err = wrong:send(p)
    assert.is_table(res)
    assert.equal("api", err.kind)
    assert.equal(414, err.code)
    assert.is_table(good:send(p))
  end)
end)

describe("the secret", function()
  local SECRET = "S3cr3t-XYZZY-never-print"
  local emu
  setup(function() emu = helpers.start_emulator({"--secret", SECRET, "--rate-limit", "0"}) end)
  teardown(function() emu:stop() end)

  local function no_secret(v, seen)
    seen = seen or {}
    if type(v) == "string" then
      assert.is_nil(v:find(SECRET, 1, true), "secret leaked in: " .. v:gsub(SECRET, "<SECRET>"))
    elseif type(v) == "table" and not seen[v] then
      seen[v] = true
      for k, x in pairs(v) do no_secret(k, seen); no_secret(x, seen) end
      no_secret(tostring(v), seen)
    end
  end

  it("appears in no error, no tostring and no prepared request", function()
    local c = commsease.new{appkey = emu.appkey, secret = SECRET, endpoint = emu.base, retries = 0}
    no_secret(tostring(c))
    local good = {roomid = 1, fromAccid = "a", toAccids = {"b"}, msgList = {commsease.text("x")}}
    no_secret((c:prepare(good)))
    no_secret(select(2, c:send{roomid = 0}))                          -- invalid
    emu:faults{{action = "status", status = 503}}
    no_secret(select(2, c:send(good)))                                -- http
    emu:faults{{action = "code", code = 414, desc = "bad"}}
    no_secret(select(2, c:send(good)))                                -- api
    emu:faults{{action = "garbage"}}
    no_secret(select(2, c:send(good)))                                -- response
    local dead = commsease.new{appkey = emu.appkey, secret = SECRET,
                               endpoint = "http://127.0.0.1:9/nimserver", retries = 0}
    no_secret(select(2, dead:send(good)))                             -- transport
    local ok, raised = pcall(commsease.new, {appkey = "k", secret = SECRET .. "\n"})
    assert.is_false(ok)
    no_secret(raised)
    no_secret(c:send(good))                                           -- a result
  end)
end)
