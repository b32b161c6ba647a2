-- commsease.resty.http inside nginx: the cosocket HTTP/1.1 client against the
-- emulator and against hostile servers (raw answers written by nginx itself on a
-- downstream raw socket: chunked, truncated, oversize, close-delimited, slow, silent).
local helpers = require "helpers"
local nginx = require "helpers_nginx"

-- answers written byte for byte; the case is the last part of the URI
local HOSTILE = [[
    location /_raw/ {
      content_by_lua_block {
        ngx.req.read_body()
        local case = ngx.var.uri:match("^/_raw/(.*)$")
        local sock = assert(ngx.req.socket(true))
        local json = '{"code":200,"success":[],"fail":[]}'
        -- keep: leave out "Connection: close", so the client must see by itself that the
        -- connection cannot be reused (this server closes every connection after one answer)
        local function head(extra, keep)
          return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" .. (extra or "")
            .. (keep and "" or "Connection: close\r\n") .. "\r\n"
        end
        local big = string.rep("x", 1024 * 1024 + 100)
        if case == "chunked" then
          sock:send(head("Transfer-Encoding: chunked\r\n") .. "5;ext=1\r\n" .. json:sub(1, 5) .. "\r\n"
                    .. string.format("%x", #json - 5) .. "\r\n" .. json:sub(6) .. "\r\n0\r\nX-Trailer: t\r\n\r\n")
        elseif case == "chunked-truncated" then
          sock:send(head("Transfer-Encoding: chunked\r\n") .. "40\r\n" .. json:sub(1, 10))
        elseif case == "chunked-bad" then
          sock:send(head("Transfer-Encoding: chunked\r\n") .. "zz\r\n" .. json .. "\r\n0\r\n\r\n")
        elseif case == "chunked-oversize" then
          sock:send(head("Transfer-Encoding: chunked\r\n", true))
          for _ = 1, 20 do sock:send(string.format("%x\r\n", 65536) .. big:sub(1, 65536) .. "\r\n") end
          sock:send("0\r\n\r\n")
        elseif case == "truncated" then
          sock:send(head("Content-Length: " .. (#json + 40) .. "\r\n") .. json)
        elseif case == "oversize" then
          sock:send(head("Content-Length: " .. #big .. "\r\n", true) .. big)
        elseif case == "exact-cap" then
          sock:send(head("Content-Length: " .. 1024 * 1024 .. "\r\n") .. big:sub(1, 1024 * 1024))
        elseif case == "close-delimited" then
          sock:send("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" .. json)
        elseif case == "close-oversize" then
          sock:send("HTTP/1.1 200 OK\r\n\r\n" .. big)
        elseif case == "slow" then
          sock:send(head("Content-Length: " .. #json .. "\r\n"))
          for i = 1, #json do sock:send(json:sub(i, i)); ngx.sleep(0.05) end
        elseif case == "slow-head" then
          for c in ("HTTP/1.1 200 OK\r\n"):gmatch(".") do sock:send(c); ngx.sleep(0.05) end
        elseif case == "silent" then
          ngx.sleep(5)
        elseif case == "drop" then
          -- nothing: the connection closes
        elseif case == "redirect" then
          sock:send("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n")
        elseif case == "continue" then
          sock:send("HTTP/1.1 100 Continue\r\n\r\n" .. head("Content-Length: " .. #json .. "\r\n") .. json)
        elseif case == "garbage-status" then
          sock:send("SMTP ready\r\n\r\n")
        elseif case == "long-line" then
          sock:send("HTTP/1.1 200 OK\r\nX-Long: " .. string.rep("a", 100000) .. "\r\n\r\n")
        elseif case == "two-lengths" then
          sock:send(head("Content-Length: 3\r\nContent-Length: 4\r\n") .. "abcd")
        elseif case == "http10" then
          sock:send("HTTP/1.0 200 OK\r\nContent-Length: " .. #json .. "\r\n\r\n" .. json)
        elseif case == "echo" then
          local h = ngx.req.get_headers()
          local body = ngx.req.get_body_data() or ""
          local out = require("cjson").encode({headers = h, body = body, method = ngx.req.get_method(),
                                               uri = ngx.var.request_uri})
          sock:send(head("Content-Length: " .. #out .. "\r\n") .. out)
        end
      }
    }
]]

describe("commsease.resty.http", function()
  local emu, ng
  setup(function()
    emu = helpers.start_emulator({"--rate-limit", "0"})
    ng = nginx.start{workers = 1, server = HOSTILE}
  end)
  teardown(function()
    if ng then ng:stop() end
    if emu then emu:stop() end
  end)
  before_each(function() emu:reset() end)

  -- runs one request to url inside nginx; returns status, body, headers or nil, terr and the time
  local function fetch(url, o, job)
    return ng:run([[
      local a = ...
      local http = require "commsease.resty.http"
      local job = a.job or {}
      job.url = a.url
      job.method = job.method or "POST"
      job.body = job.body or "x=1"
      job.timeout = job.timeout or 3
      job.headers = job.headers or {["Content-Type"] = "text/plain"}
      ngx.update_time()
      local t0 = ngx.now()
      local st, body, h = http.request(job, a.o)
      ngx.update_time()
      return {status = st, body = type(body) == "string" and body or nil, len = type(body) == "string" and #body or nil,
              terr = type(body) == "table" and body or nil, headers = h, took = ngx.now() - t0}
    ]], {url = url, o = o, job = job})
  end
  local function raw(case) return ng.root .. "/_raw/" .. case end

  it("posts a signed call to the emulator and reuses the kept-alive connection", function()
    local c0 = emu:stats().connections
    local out = ng:run([[
      local a = ...
      local http = require "commsease.resty.http"
      local commsease = require "commsease"
      local c = commsease.new{appkey = "demo-appkey", secret = "demo-secret", endpoint = a.base}
      local codes, reused = {}, {}
      for i = 1, 5 do
        local req = assert(c:prepare{roomid = 1, fromAccid = "a", toAccids = {"b"},
                                     msgList = {commsease.text("hi " .. i, {msgId = "h" .. i})}})
        req.timeout = 3
        local st, body = http.request(req)
        local res = assert(commsease.parse(st, body))
        codes[i] = res.code
        assert(res.success["h" .. i])
      end
      return codes
    ]], {base = emu.base})
    assert.same({200, 200, 200, 200, 200}, out)
    local stats = emu:stats()
    assert.equal(5, stats.requests)
    -- one connection for the five calls (the second stats query is the other one)
    assert.equal(2, stats.connections - c0)
    for i = 1, 5 do assert.equal("hi " .. i, emu:inbox("b")[i].attach) end
  end)

  it("sends the method, path, Host, Content-Length, headers and body as given", function()
    local out = fetch(raw("echo") .. "?q=1", nil, {body = "a=1&b=2", headers = {AppKey = "k", ["X-Two"] = "v w"}})
    assert.equal(200, out.status)
    local echo = nginx.json.decode(out.body)
    assert.equal("POST", echo.method)
    assert.equal("/_raw/echo?q=1", echo.uri)
    assert.equal("a=1&b=2", echo.body)
    assert.equal("k", echo.headers.appkey)
    assert.equal("v w", echo.headers["x-two"])
    assert.equal("7", echo.headers["content-length"])
    assert.equal("127.0.0.1:" .. ng.port, echo.headers.host)
  end)

  it("refuses a header that would split the request, before sending anything", function()
    local out = fetch(raw("echo"), nil, {headers = {["X-Evil"] = "a\r\nInjected: 1"}})
    assert.is_nil(out.status)
    assert.is_false(out.terr.sent)
  end)

  it("reads chunked answers, extensions and trailers included", function()
    local out = fetch(raw("chunked"))
    assert.equal(200, out.status)
    assert.equal('{"code":200,"success":[],"fail":[]}', out.body)
  end)

  it("reads close-delimited answers and HTTP/1.0 answers", function()
    local out = fetch(raw("close-delimited"))
    assert.equal(200, out.status)
    assert.equal('{"code":200,"success":[],"fail":[]}', out.body)
    out = fetch(raw("http10"))
    assert.equal(200, out.status)
    assert.equal('{"code":200,"success":[],"fail":[]}', out.body)
  end)

  it("skips a 100 Continue and does not follow redirects", function()
    local out = fetch(raw("continue"))
    assert.equal(200, out.status)
    assert.equal('{"code":200,"success":[],"fail":[]}', out.body)
    out = fetch(raw("redirect"))
    assert.equal(302, out.status)
    assert.equal("", out.body)
    assert.equal("http://127.0.0.1:1/elsewhere", out.headers.location)
  end)

  it("cuts answers over 1 MiB at 1 MiB + 1 byte, whatever their framing, and keeps one of exactly 1 MiB", function()
    for _, case in ipairs{"oversize", "chunked-oversize", "close-oversize"} do
      local out = fetch(raw(case))
      assert.equal(200, out.status, case)
      assert.equal(1024 * 1024 + 1, out.len, case)
    end
    assert.equal(1024 * 1024, fetch(raw("exact-cap")).len)
    -- and commsease.parse then reports the answer as over the cap
    local out = ng:run([[
      local a = ...
      local st, body = require("commsease.resty.http").request({url = a.url, body = "", timeout = 3})
      local res, err = require("commsease").parse(st, body)
      return {res = res ~= nil, kind = err and err.kind, message = err and err.message}
    ]], {url = raw("oversize")})
    assert.is_false(out.res)
    assert.equal("response", out.kind)
    assert.matches("1 MiB", out.message)
  end)

  it("says sent = true for every failure after the request was written", function()
    for _, case in ipairs{"truncated", "chunked-truncated", "chunked-bad", "drop", "garbage-status",
                          "long-line", "two-lengths"} do
      local out = fetch(raw(case))
      assert.is_nil(out.status, case)
      assert.is_true(out.terr.sent, case)
      assert.is_string(out.terr.message, case)
    end
  end)

  it("holds a whole attempt to its timeout, even against a peer that drips bytes", function()
    for _, case in ipairs{"slow", "slow-head", "silent"} do
      local out = fetch(raw(case), nil, {timeout = 0.4})
      assert.is_nil(out.status, case)
      assert.is_true(out.terr.sent, case)
      assert.is_true(out.took >= 0.35 and out.took < 1.0, case .. " took " .. out.took)
    end
  end)

  it("says sent = false when the connection or the TLS handshake failed", function()
    -- a port nobody listens on
    local s = require("socket").bind("127.0.0.1", 0)
    local _, port = s:getsockname()
    s:close()
    local out = fetch("http://127.0.0.1:" .. port .. "/nimserver/x")
    assert.is_nil(out.status)
    assert.is_false(out.terr.sent)
    assert.matches("connect", out.terr.message)
    -- TLS to a plain HTTP server: the handshake fails, nothing of the request left
    out = fetch("https://127.0.0.1:" .. emu.port .. "/nimserver/x")
    assert.is_nil(out.status)
    assert.is_false(out.terr.sent)
    assert.matches("TLS", out.terr.message)
    assert.equal(0, emu:stats().requests)
    -- not a URL
    out = fetch("ftp://127.0.0.1/")
    assert.is_false(out.terr.sent)
    -- a host name without nginx's resolver directive: nothing could leave
    out = fetch("http://localhost:" .. emu.port .. "/nimserver/x")
    assert.is_false(out.terr.sent)
    assert.matches("resolver", out.terr.message)
  end)

  -- err.code of a transport failure is libcurl's number for it (CURLcode), as the blocking
  -- client's: the same raw answers through commsease.new's client:call give the same code
  it("gives every failure libcurl's code for it, the one the blocking client gives", function()
    local commsease = require "commsease"
    local function blocking(case, timeout)
      local c = commsease.new{appkey = "k", secret = "s", endpoint = ng.root .. "/_raw", retries = 0,
                              rate_limit = 0, timeout = timeout or 3}
      local res, err = c:call(case, {x = 1})
      c:close()
      assert.is_nil(res, case)
      assert.equal("transport", err.kind, case)
      return err.code
    end
    local cases = {
      {"drop", 52}, {"truncated", 18}, {"chunked-truncated", 18}, {"chunked-bad", 56},
      {"garbage-status", 1}, {"silent", 28, 0.4},
    }
    for _, case in ipairs(cases) do
      local name, code, timeout = case[1], case[2], case[3]
      local out = fetch(raw(name), nil, {timeout = timeout})
      assert.is_nil(out.status, name)
      assert.equal(code, out.terr.code, name .. ": " .. tostring(out.terr.message))
      assert.equal(code, blocking(name, timeout), name .. " (the blocking client)")
    end
    -- before anything was sent: a refused port, TLS to a plain server
    local s = require("socket").bind("127.0.0.1", 0)
    local _, port = s:getsockname()
    s:close()
    for _, case in ipairs{{"http://127.0.0.1:" .. port, 7}, {"https://127.0.0.1:" .. emu.port, 35}} do
      local base, code = case[1], case[2]
      local out = fetch(base .. "/nimserver/x")
      assert.is_false(out.terr.sent, base)
      assert.equal(code, out.terr.code, base .. ": " .. tostring(out.terr.message))
      local c = commsease.new{appkey = "k", secret = "s", endpoint = base .. "/nimserver", retries = 0}
      local _, err = c:call("x", {})
      c:close()
      assert.equal(code, err.code, base .. " (the blocking client)")
    end
    -- what only this client meets: an answer head it will not read (8), a URL it cannot
    -- use (1: another scheme; 3: malformed), a header that would split the request (43), a
    -- host name without nginx's resolver (6), an attempt out of time before a byte came (28)
    for _, case in ipairs{{raw("long-line"), 8}, {raw("two-lengths"), 8}, {"ftp://127.0.0.1/", 1},
                          {"http://127.0.0.1:0/", 3}, {"http:///x", 3},
                          {"http://localhost:" .. emu.port .. "/nimserver/x", 6}} do
      local out = fetch(case[1])
      assert.equal(case[2], out.terr.code, case[1] .. ": " .. tostring(out.terr.message))
    end
    local out = fetch(raw("echo"), nil, {headers = {["X-Evil"] = "a\r\nInjected: 1"}})
    assert.equal(43, out.terr.code)
    out = fetch(raw("slow-head"), nil, {timeout = 0.3})
    assert.equal(28, out.terr.code)
    -- the names of the numbers
    out = ng:run([[return require("commsease.resty.http").CODES]])
    assert.same({unsupported = 1, url = 3, resolve = 6, connect = 7, weird = 8, partial = 18, timeout = 28,
                 tls = 35, argument = 43, nothing = 52, send = 55, recv = 56, verify = 60}, out)
  end)

  it("never puts back a connection with an unread answer in the pool", function()
    -- the raw server's connections die after one answer: one handed back to the pool
    -- would give the next request a dead or mid-answer connection
    local out = ng:run([[
      local a = ...
      local http = require "commsease.resty.http"
      local seen = {}
      for _, case in ipairs{"oversize", "echo", "chunked-oversize", "echo", "close-delimited", "echo"} do
        local st, body = http.request({url = a.root .. "/_raw/" .. case, body = "", timeout = 3})
        seen[#seen + 1] = st or body.message
      end
      return seen
    ]], {root = ng.root})
    assert.same({200, 200, 200, 200, 200, 200}, out)
  end)
end)

describe("commsease.resty.http over TLS", function()
  local ng, dir
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    -- a CA and a certificate for the name commsease.test, signed by it
    local cmds = {
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem",
      "openssl req -newkey rsa:2048 -nodes -subj /CN=commsease.test -keyout srv.key -out srv.csr",
      "printf 'subjectAltName=DNS:commsease.test\\n' > ext.cnf",
      "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out srv.pem",
    }
    for _, c in ipairs(cmds) do
      assert(os.execute("cd " .. dir .. " && " .. c .. " >/dev/null 2>&1"), c)
    end
  end)
  teardown(function()
    if ng then ng:stop() end
    os.execute("rm -rf " .. dir)
  end)

  -- a TLS server block in the same nginx answers every request with a small JSON
  local function start(trusted)
    if ng then ng:stop() end
    ng = nginx.start{workers = 1,
      http = (trusted and ("  lua_ssl_trusted_certificate " .. dir .. "/ca.pem;\n  lua_ssl_verify_depth 3;\n") or "")
        .. "  server {\n    listen 127.0.0.1:$PORT2 ssl;\n    ssl_certificate " .. dir .. "/srv.pem;\n"
        .. "    ssl_certificate_key " .. dir .. "/srv.key;\n"
        .. "    location / { return 200 '{\"code\":200,\"success\":[],\"fail\":[]}'; }\n  }\n"}
  end

  local function fetch(o)
    return ng:run([[
      local a = ...
      local st, body = require("commsease.resty.http").request(
        {url = a.url, body = "x", timeout = 3}, a.o)
      return {status = st, terr = type(body) == "table" and body or nil}
    ]], {url = "https://127.0.0.1:" .. ng.port2 .. "/nimserver", o = o})
  end

  it("verifies the peer by default and fails before sending when it cannot", function()
    start(false)
    local out = fetch({server_name = "commsease.test"})
    assert.is_nil(out.status)
    assert.is_false(out.terr.sent)
    assert.matches("TLS handshake", out.terr.message)
    assert.equal(60, out.terr.code, out.terr.message) -- CURLE_PEER_FAILED_VERIFICATION, as libcurl
    -- verification off: the same server answers
    out = fetch({server_name = "commsease.test", ssl_verify = false})
    assert.equal(200, out.status)
  end)

  it("trusts lua_ssl_trusted_certificate and checks the name (SNI) it is given", function()
    start(true)
    local out = fetch({server_name = "commsease.test"})
    assert.equal(200, out.status)
    out = fetch({server_name = "other.test"})
    assert.is_nil(out.status)
    assert.is_false(out.terr.sent)
    assert.equal(60, out.terr.code, out.terr.message) -- a name mismatch, as libcurl says it
    -- no name: the URL's host (an IP literal) is not the certificate's name
    out = fetch({})
    assert.is_nil(out.status)
    assert.is_false(out.terr.sent)
    assert.equal(60, out.terr.code, out.terr.message)
  end)
end)
