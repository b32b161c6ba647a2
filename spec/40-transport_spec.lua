-- Transport: `sent` says whether the request left, whatever libcurl's code is called.
-- A hostile raw-socket server (spec/hostile_server.lua, its own process, via spec/hostile.lua) reads the
-- request and then fails in every way it can; connect failures that certainly sent
-- nothing must say so, and fail over.  An emulator behind it as the second endpoint
-- proves what a failover would have delivered.
local commsease = require "commsease"
local helpers = require "helpers"

local hostile = require("hostile").start
local certificate = require("hostile").certificate

local function params(id)
  return {roomid = 765788, fromAccid = "npc", toAccids = {"p1"},
          msgList = {commsease.text("hello", {msgId = id or helpers.msgid("t")})}}
end

-- a request that left: each way a server can fail after reading it
local AFTER = {
  {"bighead", 27, "a 200 KB header line (libcurl: out of memory)"},
  {"close", 52, "the connection closed with no answer"},
  {"reset", 56, "the connection reset with no answer"},
  {"stall", 28, "no answer before the timeout"},
  {"partial", 18, "a body cut short"},
  {"weird", 1, "a status line that is not HTTP"},
  {"badchunk", 56, "a broken chunked body"},
  {"ka_refuse", 7, "a kept-alive connection closed under the request, the reconnect refused"},
  {"ka_blackhole", 28, "a kept-alive connection closed under the request, the reconnect timing out"},
}

describe("transport: sent", function()
  local emu
  setup(function() emu = helpers.start_emulator({"--rate-limit", "0"}) end)
  teardown(function() emu:stop() end)

  it("gives an answer over 1 MiB as a response error: sent, retryable, nothing fails over",
     function()
    local h = hostile("bigbody")
    local c = helpers.client_for(emu, {endpoints = {h.base, emu.base}, retries = 1})
    finally(function() c:close(); h.stop() end)
    local before = emu:stats().requests
    local res, err = c:send(params())
    assert.is_nil(res)
    assert.equal("response", err.kind)
    assert.matches("1 MiB", err.message)
    assert.is_true(err.sent)
    assert.is_true(err.retryable) -- as every response error (commsease.parse says the same)
    assert.equal(0, emu:stats().requests - before)
    local _, perr = commsease.parse(200, ("x"):rep(1024 * 1024 + 1))
    assert.equal(perr.retryable, err.retryable)
    assert.equal(perr.sent, err.sent)
  end)

  for _, case in ipairs(AFTER) do
    local mode, code, what = case[1], case[2], case[3]
    it("is true after " .. what .. " (code " .. code .. "), and nothing fails over", function()
      local h = hostile(mode)
      -- short timeouts only where they are meant to expire
      local c = helpers.client_for(emu, {endpoints = {h.base, emu.base}, retries = 1,
                                         timeout = mode == "stall" and 1 or 10,
                                         connect_timeout = mode == "ka_blackhole" and 0.5 or 10})
      finally(function() c:close(); h.stop() end)
      local before = emu:stats().requests
      if mode:match("^ka_") then assert(c:send(params())) end -- the connection is kept alive
      local res, err = c:send(params())
      assert.is_nil(res)
      assert.equal("transport", err.kind)
      assert.equal(code, err.code)
      assert.is_true(err.sent, tostring(err))
      assert.is_true(err.retryable)
      assert.equal(h.base, err.endpoint)
      assert.equal(mode:match("^ka_") and 2 or 1, h.stop()) -- the server read it
      assert.equal(0, emu:stats().requests - before)      -- and nothing went elsewhere
      for k, v in pairs(err) do
        assert.is_nil(tostring(v):find(emu.secret, 1, true), "the secret in err." .. k)
      end
      assert.is_nil(tostring(err):find(emu.secret, 1, true))
    end)
  end

  for _, mode in ipairs{"bighead", "ka_refuse"} do
    it("is true in send_all's results too (" .. mode .. ")", function()
      local h = hostile(mode)
      local c = helpers.client_for(emu, {endpoints = {h.base, emu.base}, retries = 1})
      finally(function() c:close(); h.stop() end)
      local before = emu:stats().requests
      if mode:match("^ka_") then
        assert.is_table(c:send_all({params()}, {concurrency = 1})[1].res)
      end
      local r = c:send_all({params()}, {concurrency = 1})[1]
      assert.is_nil(r.res)
      assert.equal("transport", r.err.kind)
      assert.is_true(r.err.sent, tostring(r.err))
      assert.equal(mode:match("^ka_") and 2 or 1, h.stop())
      assert.equal(0, emu:stats().requests - before)
    end)
  end

  it("keeps fanout's resends marked: a 200 KB header line is resent with resendFlag = 1", function()
    local h = hostile("bighead")
    local c = helpers.client_for(emu, {endpoints = {h.base, emu.base}, retries = 1})
    finally(function() c:close(); h.stop() end)
    -- the resend goes to the same endpoint first, which is gone by then (refused: nothing
    -- sent), then to the emulator
    local report = assert(c:fanout(params("fan-big"), {retries = 3, backoff = 0}))
    assert.equal(1, report.ok, report.results[1].err and tostring(report.results[1].err))
    assert.equal(1, h.stop())
    local reqs = emu:requests()
    local msgs = helpers.json.decode(reqs[#reqs].form.msgList)
    assert.equal("fan-big:1", msgs[1].msgId)
    assert.equal(1, msgs[1].resendFlag)
  end)

  -- nothing left: sent = false, retryable, and the next endpoint delivers it once
  local BEFORE = {
    {"refused", 7, "the port refuses the connection"},
    {"blackhole", 28, "the connect times out"},
    {"tls_close", 35, "the TLS handshake fails"},
  }
  for _, case in ipairs(BEFORE) do
    local mode, code, what = case[1], case[2], case[3]
    it("is false when " .. what .. " (code " .. code .. "), and the call fails over", function()
      local h, base
      if mode == "refused" then
        h = hostile("ok")
        h.stop() -- the port is closed now
      else
        h = hostile(mode)
      end
      base = (mode == "tls_close" and "https" or "http") .. "://127.0.0.1:" .. h.port .. "/nimserver"
      -- a short connect timeout only where the connect is meant to time out (a TLS
      -- handshake under valgrind takes longer than half a second)
      local ct = mode == "blackhole" and 0.5 or 10
      local one = helpers.client_for(emu, {endpoint = base, retries = 0, connect_timeout = ct})
      local two = helpers.client_for(emu, {endpoints = {base, emu.base}, retries = 1,
                                           connect_timeout = ct})
      finally(function() one:close(); two:close(); h.stop() end)
      local res, err = one:send(params())
      assert.is_nil(res)
      assert.equal("transport", err.kind)
      assert.equal(code, err.code)
      assert.is_false(err.sent, tostring(err))
      assert.is_true(err.retryable)
      if mode ~= "tls_close" then -- (the TLS server reads one connection only)
        local before = emu:stats().requests
        local id = helpers.msgid("fo")
        res = assert(two:send(params(id)))
        assert.is_table(res.success[id])
        assert.equal(1, emu:stats().requests - before)
      end
      assert.equal(0, h.stop())
    end)
  end

  it("is false when the proxy refuses the tunnel (the code is libcurl's 'receive failure')", function()
    local h = hostile("proxy_refuse")
    local c = commsease.new{appkey = "k", secret = "s", endpoint = "https://api.example.invalid/nimserver",
                            proxy = "http://127.0.0.1:" .. h.port, retries = 0}
    finally(function() c:close(); h.stop() end)
    local _, err = c:send(params())
    assert.equal("transport", err.kind)
    assert.equal(56, err.code)
    assert.is_false(err.sent, tostring(err))
    assert.is_true(err.retryable)
  end)

  it("drops user:password@ from the endpoint in error values", function()
    local h = hostile("close")
    local base = "http://alice:hunter2@127.0.0.1:" .. h.port .. "/nimserver"
    local c = commsease.new{appkey = "k", secret = "s", endpoint = base, retries = 0}
    finally(function() c:close(); h.stop() end)
    local _, err = c:send(params())
    assert.equal("transport", err.kind)
    assert.equal("http://127.0.0.1:" .. h.port .. "/nimserver", err.endpoint)
    for k, v in pairs(err) do
      assert.is_nil(tostring(v):find("hunter2", 1, true), "the password in err." .. k)
    end
    assert.is_nil(tostring(err):find("hunter2", 1, true))
  end)

  describe("over TLS (openssl s_server)", function()
    local cert, key, remove
    setup(function() cert, key, remove = certificate() end)
    teardown(function() remove() end)

    it("is true when the server got the request over TLS and went away unanswered", function()
      local h = hostile("tls_kill", cert, key)
      local c = commsease.new{appkey = "k", secret = "s", retries = 0, ca_file = cert,
                              endpoint = "https://127.0.0.1:" .. h.port .. "/nimserver",
                              connect_timeout = 60, timeout = 60}
      finally(function() c:close(); h.stop() end)
      local _, err = c:send(params())
      assert.equal("transport", err.kind)
      assert.is_true(err.sent, tostring(err))
      assert.is_true(err.retryable)
      assert.equal(1, h.stop()) -- s_server received the request line
    end)

    it("is false when the server's certificate is not trusted (code 60), and the call fails over",
       function()
      local h = hostile("tls_plain", cert, key) -- serves two connections
      local base = "https://127.0.0.1:" .. h.port .. "/nimserver"
      -- (a generous connect timeout: loading the system's CA store under valgrind is slow)
      local one = commsease.new{appkey = "k", secret = "s", retries = 0, endpoint = base,
                                connect_timeout = 60}
      local two = helpers.client_for(emu, {retries = 1, endpoints = {base, emu.base},
                                           connect_timeout = 60})
      finally(function() one:close(); two:close(); h.stop() end)
      local _, err = one:send(params())
      assert.equal("transport", err.kind)
      assert.equal(60, err.code) -- CURLE_PEER_FAILED_VERIFICATION
      assert.is_false(err.sent, tostring(err))
      assert.is_true(err.retryable)
      local before = emu:stats().requests
      local res = assert(two:send(params("tls-fo")))
      assert.is_table(res.success["tls-fo"])
      assert.equal(1, emu:stats().requests - before)
      assert.equal(0, h.stop())
    end)
  end)
end)
