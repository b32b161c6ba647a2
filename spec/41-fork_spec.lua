-- Fork: a client created and used before fork() (nginx init_by_lua, any pre-forking
-- server) must never give two processes the same Nonce or RequestId.  fork() comes from
-- lua-posix where Debian has it (Lua 5.1 to 5.3, LuaJIT) and from the test-only
-- spec/c/spec_fork.c (built into the build directory) on Lua 5.4.
local commsease = require "commsease"
local helpers = require "helpers"

local proc = (function()
  local ok, unistd = pcall(require, "posix.unistd")
  if ok then
    local wait = require("posix.sys.wait").wait
    return {fork = unistd.fork, _exit = unistd._exit,
            wait = function(pid)
              local _, how, code = wait(pid)
              return how == "exited" and code or -1
            end}
  end
  return require "spec_fork"
end)()

local function params()
  return {roomid = 765788, fromAccid = "npc", toAccids = {"p1"},
          msgList = {commsease.text("hello", {msgId = helpers.msgid("f")})}}
end

-- runs fn(out) in a child process (out: a file to write lines to); returns the lines and
-- the child's exit code (0 when fn returned without raising)
local function in_child(fn)
  local path = os.tmpname()
  local pid = proc.fork()
  assert(pid >= 0, "fork failed")
  if pid == 0 then
    local ok = pcall(function()
      local out = assert(io.open(path, "w"))
      fn(out)
      out:close()
    end)
    proc._exit(ok and 0 or 1)
  end
  return function()
    local code = proc.wait(pid)
    local lines = {}
    for l in io.lines(path) do lines[#lines + 1] = l end
    os.remove(path)
    return lines, code
  end
end

local function assert_all_distinct(values, expected)
  local seen = {}
  for _, v in ipairs(values) do
    assert.is_nil(seen[v], "handed out twice: " .. v)
    seen[v] = true
  end
  assert.equal(expected, #values)
end

describe("fork", function()
  it("never gives parent and children the same Nonce or RequestId (prepare, no I/O)", function()
    local c = commsease.new{appkey = "k", secret = "s"}
    finally(function() c:close() end)
    assert(c:prepare(params())) -- the pool is filled before the fork
    local waits = {}
    for i = 1, 4 do
      waits[i] = in_child(function(out)
        for _ = 1, 5 do
          local req = assert(c:prepare(params()))
          out:write(req.headers.Nonce, "\n", req.request_id, "\n")
        end
      end)
    end
    local all = {}
    for _ = 1, 5 do
      local req = assert(c:prepare(params()))
      all[#all + 1] = req.headers.Nonce
      all[#all + 1] = req.request_id
    end
    for i = 1, 4 do
      local lines, code = waits[i]()
      assert.equal(0, code)
      for _, l in ipairs(lines) do all[#all + 1] = l end
    end
    assert_all_distinct(all, 5 * 5 * 2)
  end)

  it("never sends the same Nonce or RequestId from two processes (send, through the emulator)", function()
    local emu = helpers.start_emulator({"--rate-limit", "0"})
    local c = helpers.client_for(emu)
    finally(function() c:close(); emu:stop() end)
    assert(c:send(params())) -- used before the fork
    -- one child at a time: they inherit the parent's kept-alive connection
    for _ = 1, 3 do
      local lines, code = in_child(function(out)
        for _ = 1, 2 do
          local res = assert(c:send(params()))
          out:write(res.request_id, "\n")
        end
      end)()
      assert.equal(0, code)
      assert.equal(2, #lines)
    end
    assert(c:send(params()))
    local nonces, rids = {}, {}
    for _, r in ipairs(emu:requests()) do
      nonces[#nonces + 1] = r.headers.Nonce
      rids[#rids + 1] = r.headers.RequestId
    end
    assert_all_distinct(nonces, 1 + 3 * 2 + 1)
    assert_all_distinct(rids, 1 + 3 * 2 + 1)
  end)

  it("gives every process its own connection: parent and children sending at once get their own answers",
     function()
    local emu = helpers.start_emulator({"--rate-limit", "0"})
    local c = helpers.client_for(emu, {timeout = 10})
    finally(function() c:close(); emu:stop() end)
    assert(c:send(params())) -- a kept-alive connection, inherited by every child
    local conns = emu:stats().connections
    local function sends(out, who)
      for n = 1, 15 do
        local p = params()
        local id = "fork-" .. who .. "-" .. n -- (helpers.msgid's counter is copied by fork)
        p.msgList[1].msgId = id
        local res, err = c:send(p)
        -- an answer read off a shared socket would belong to another process's call
        out:write(res and res.success[id] and "ok" or
                  ("bad " .. tostring(err or res.fail[id] or "answer of another call")), "\n")
      end
    end
    local waits = {}
    for i = 1, 3 do waits[i] = in_child(function(out) sends(out, "child" .. i) end) end
    local mine = {}
    sends({write = function(_, line) if line ~= "\n" then mine[#mine + 1] = line end end}, "parent")
    for _, line in ipairs(mine) do assert.equal("ok", line) end
    for i = 1, 3 do
      local lines, code = waits[i]()
      assert.equal(0, code)
      assert.equal(15, #lines)
      for _, line in ipairs(lines) do assert.equal("ok", line) end
    end
    local st = emu:stats()
    assert.equal(1 + 4 * 15, st.requests) -- each call reached the service once
    -- one new connection per child (and one for this stats query): the parent kept its own
    assert.equal(3 + 1, st.connections - conns)
  end)

  -- A client closed (or collected) in a child that inherited it must drop the parent's
  -- connections, not shut them down: over TLS a shutdown writes a close_notify on the
  -- shared socket, and the server then closes the parent's connection.  nginx terminates
  -- TLS in front of the emulator and logs the connection serial number of every request,
  -- so the spec sees whether the parent's next call went over the same connection.
  describe("closing an inherited client in the child", function()
    local nginx = require "helpers_nginx"
    local cert, key, remove, emu, ng
    setup(function()
      cert, key, remove = require("hostile").certificate()
      emu = helpers.start_emulator({"--rate-limit", "0"})
      ng = nginx.start{workers = 1, runner = false, http = table.concat({
        "  log_format conn '$connection $connection_requests $request_uri';",
        "  server {",
        "    listen 127.0.0.1:$PORT2 ssl;",
        "    ssl_certificate " .. cert .. "; ssl_certificate_key " .. key .. ";",
        "    keepalive_timeout 60s;",
        "    access_log logs/tls.log conn;",
        "    location / { proxy_pass http://127.0.0.1:" .. emu.port .. "; }",
        "  }"}, "\n")}
    end)
    teardown(function()
      if ng then ng:stop() end
      if emu then emu:stop() end
      if remove then remove() end
    end)

    -- the connection serial numbers of the requests nginx served over TLS after the
    -- first `from`, once there are n of them (nginx logs a request after answering it)
    local function served(from, n)
      local conns
      helpers.wait_until(function()
        conns = {}
        local f = io.open(ng.prefix .. "/logs/tls.log")
        if f then
          for line in f:lines() do conns[#conns + 1] = tonumber(line:match("^(%d+) ")) end
          f:close()
        end
        return #conns >= from + n
      end, 5)
      return {helpers.unpack(conns, from + 1)}
    end
    local function tls_client()
      return commsease.new{appkey = emu.appkey, secret = emu.secret, ca_file = cert, timeout = 10,
                           endpoint = "https://127.0.0.1:" .. ng.port2 .. "/nimserver"}
    end
    -- a parent call, a child that does child(holder, out) (holder[1]: the client, its
    -- only reference), a parent call again: the two parent calls must travel over the
    -- one connection, the child's (if any) over connections of its own
    local function around(child, child_calls)
      local holder = {tls_client()}
      finally(function() holder[1]:close() end)
      local before = #served(0, 0)
      assert(holder[1]:send(params())) -- a kept-alive TLS connection, inherited by the child
      local lines, code = in_child(function(out) child(holder, out) end)()
      assert.equal(0, code)
      assert.equal(child_calls, #lines)
      for _, l in ipairs(lines) do assert.equal("ok", l) end
      helpers.sleep(0.3) -- time for nginx to act on whatever the child wrote
      assert(holder[1]:send(params()))
      local conns = served(before, 2 + child_calls)
      assert.equal(2 + child_calls, #conns)
      assert.equal(conns[1], conns[#conns], "the parent's second call went over a new connection")
      for i = 2, #conns - 1 do assert.not_equal(conns[1], conns[i]) end
    end

    it("close() in the child leaves the parent's kept-alive connection working", function()
      around(function(holder) holder[1]:close() end, 0)
    end)

    it("collecting the client in the child leaves the parent's connection alone", function()
      around(function(holder)
        local weak = setmetatable({holder[1]}, {__mode = "v"})
        holder[1] = nil -- the child's only reference: __gc releases the client
        collectgarbage()
        collectgarbage()
        assert(weak[1] == nil, "the client was not collected")
      end, 0)
    end)

    it("send_all's connections are dropped too", function()
      local c = tls_client()
      finally(function() c:close() end)
      local before = #served(0, 0)
      local function batch()
        for _, r in ipairs(c:send_all({params(), params(), params()}, {concurrency = 3})) do
          assert(r.res, tostring(r.err))
        end
      end
      batch()
      local first = served(before, 3)
      local lines, code = in_child(function() c:close() end)()
      assert.equal(0, code)
      assert.equal(0, #lines)
      helpers.sleep(0.3)
      batch()
      local after = served(before + 3, 3)
      local set = {}
      for _, n in ipairs(first) do set[n] = true end
      for _, n in ipairs(after) do assert.is_true(set[n], "a call of the second batch went over a new connection") end
    end)

    it("a client the child uses works there over fresh connections, then closes", function()
      around(function(holder, out)
        local res, err = holder[1]:send(params())
        out:write(res and "ok" or tostring(err), "\n")
        holder[1]:close()
      end, 1)
    end)
  end)
end)
