--[[ spec/hostile_server.lua MODE -- a raw-socket HTTP server that misbehaves on purpose,
run as its own process by spec/40-transport_spec.lua (LuaSocket, any Lua).

It prints "listening PORT" first, then "got" each time it has read a whole request (the
headers and the whole body), serves connections one after another as MODE says, and exits
when it is done, after 20 s, or on SIGTERM (the spec stops it once the client returned).

Modes (an "ka_" prefix answers the first request properly with keep-alive, so that the
client's next request goes over a reused connection, and misbehaves on the second):
  ok          answer every request with a valid CommsEase answer (until 20 s)
  bighead     read the request, answer a 200 whose one header line is 200 KB long
  close       read the request, close with no answer
  reset       read the request, reset the connection (RST) with no answer
  stall       read the request, never answer (until the client gives up)
  partial     read the request, promise 1000 bytes of body, send 10, close
  weird       read the request, answer a status line that is not HTTP
  badchunk    read the request, answer a broken chunked body
  bigbody     read the request, answer a 200 with a body of 1 MiB + 4 KiB
  nulbody     read the request, answer a valid CommsEase answer, a NUL, then garbage
  ka_refuse   (after the keep-alive answer) read the second request, stop listening, close:
              libcurl's reconnect to send it again is refused
  ka_blackhole  the same, but the port then listens without ever accepting, its queue full:
              the reconnect times out
  blackhole   listen without accepting, the queue full: a connect times out
  tls_close   read the first bytes (a TLS ClientHello) and close: the handshake fails
  proxy_refuse  act as an HTTP proxy that answers a CONNECT with 403
  tls_kill CERT KEY  run `openssl s_server` with that certificate on the port; once it has
              received the request (TLS done), kill it (SIGTERM): the connection ends with
              no TLS close_notify, an SSL error after the handshake
  tls_plain CERT KEY  the same s_server for two connections, left alone; for clients that
              refuse its certificate
]]
local socket = require "socket"

local mode = assert(arg[1], "usage: hostile_server.lua MODE")
local deadline = socket.gettime() + 20
local OK_BODY = '{"code":200,"success":[],"fail":[]}'

local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()

local function left() return math.max(0.01, deadline - socket.gettime()) end

-- the full request (headers and Content-Length body) or nil when the peer went away
local function read_request(c)
  c:settimeout(left())
  local len = 0
  local line = c:receive("*l")
  if not line then return nil end
  while true do
    local h = c:receive("*l")
    if not h then return nil end
    if h == "" then break end
    local k, v = h:match("^([^:]+):%s*(.-)%s*$")
    if k and k:lower() == "content-length" then len = tonumber(v) end
  end
  if len > 0 and not c:receive(len) then return nil end
  io.stdout:write("got\n")
  io.stdout:flush()
  return line
end

local function answer_ok(c)
  c:send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " .. #OK_BODY ..
         "\r\n\r\n" .. OK_BODY)
end

-- the listener stops accepting and its accept queue is filled, so further SYNs are dropped
-- (listen() again on a listening socket only changes its backlog; LuaSocket allows listen
-- only on a "master" socket, so the server object wears the master class for that call)
local function blackhole()
  local mt = debug.getmetatable(server)
  local probe = socket.tcp()
  debug.setmetatable(server, debug.getmetatable(probe))
  probe:close()
  local ok, err = server:listen(0)
  debug.setmetatable(server, mt)
  assert(ok, err)
  local fillers = {}
  for i = 1, 3 do
    fillers[i] = socket.tcp()
    fillers[i]:settimeout(0.2)
    fillers[i]:connect("127.0.0.1", port)
  end
  return fillers
end

local function misbehave(c, how)
  if how == "bighead" then
    c:send("HTTP/1.1 200 OK\r\nX-Big: " .. string.rep("a", 200 * 1024) .. "\r\nContent-Length: " ..
           #OK_BODY .. "\r\n\r\n" .. OK_BODY)
  elseif how == "close" then -- luacheck: ignore 542
  elseif how == "reset" then
    c:setoption("linger", {on = true, timeout = 0})
  elseif how == "stall" then
    c:settimeout(left())
    c:receive("*a") -- until the client closes
  elseif how == "partial" then
    c:send("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"code\":20")
  elseif how == "weird" then
    c:send("SPDY/9 banana\r\n\r\n")
  elseif how == "nulbody" then
    local body = OK_BODY .. "\0garbage"
    c:send("HTTP/1.1 200 OK\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body)
  elseif how == "bigbody" then -- a 200 whose body is over the 1 MiB a client reads
    local n = 1024 * 1024 + 4096
    c:send("HTTP/1.1 200 OK\r\nContent-Length: " .. n .. "\r\n\r\n")
    c:settimeout(left())
    c:send(string.rep("x", n)) -- (the client may hang up once it has read enough)
  elseif how == "badchunk" then
    c:send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{\"code\":200}\r\n0\r\n\r\n")
  else
    error("unknown action " .. how)
  end
  c:close()
end

local function accept()
  server:settimeout(left())
  return server:accept()
end

-- is something listening on the port? (/proc/net/tcp: local address, state 0A = LISTEN)
local function listening(p)
  local f = io.open("/proc/net/tcp")
  if not f then return true end
  local want = string.format(":%04X ", p)
  for l in f:lines() do
    local loc, st = l:match("^%s*%d+: (%x+:%x+ )%x+:%x+ (%x%x)")
    if loc and loc:sub(-6) == want and st == "0A" then
      f:close()
      return true
    end
  end
  f:close()
  return false
end

-- openssl s_server on the port (the listener closed first), its input a FIFO kept open
-- here so that it never reaches EOF, under `timeout` so that it never outlives 60 s;
-- returns the pid of `timeout` (SIGTERM is passed on: s_server dies without a TLS
-- close_notify) and s_server's output (what it received)
local function s_server(cert, key, naccept)
  local fifo = os.tmpname()
  os.remove(fifo)
  assert(os.execute("mkfifo " .. fifo))
  server:close()
  local out = assert(io.popen("exec sh -c 'echo $$; exec timeout -s KILL 60 openssl s_server " ..
                              "-quiet -naccept " .. naccept .. " -accept 127.0.0.1:" .. port .. " -cert " .. cert ..
                              " -key " .. key .. " < " .. fifo .. " 2>/dev/null'"))
  local input = assert(io.open(fifo, "w")) -- unblocks s_server's open of its input
  os.remove(fifo)
  local pid = assert(tonumber(out:read("*l")))
  for _ = 1, 250 do -- until it listens
    if listening(port) then break end
    socket.sleep(0.02)
  end
  return pid, out, input
end

local keep = {}
local tls_pid, tls_out, tls_in
if mode == "blackhole" then keep = blackhole() end -- before the client can connect
if mode == "tls_kill" then tls_pid, tls_out, tls_in = s_server(arg[2], arg[3], 1) end
if mode == "tls_plain" then tls_pid, tls_out, tls_in = s_server(arg[2], arg[3], 2) end
io.stdout:write("listening ", port, "\n")
io.stdout:flush()
if mode == "ok" then
  while socket.gettime() < deadline do
    local c = accept()
    if c then
      while read_request(c) do answer_ok(c) end
      c:close()
    end
  end
elseif mode == "blackhole" then
  socket.sleep(left())
elseif mode == "tls_close" then
  local c = accept()
  if c then
    c:settimeout(left())
    c:receive(5) -- the start of a TLS record
    c:close()
  end
elseif mode == "tls_kill" then
  local line = tls_out:read("*l") -- the request line, decrypted by s_server
  if line then
    io.stdout:write("got\n")
    io.stdout:flush()
  end
  os.execute("kill -TERM " .. tls_pid)
  tls_out:close()
  tls_in:close()
elseif mode == "tls_plain" then
  tls_out:read("*a") -- until s_server has served its two connections and exited
  tls_out:close()
  tls_in:close()
elseif mode == "proxy_refuse" then
  local c = accept()
  if c then
    c:settimeout(left())
    repeat local h = c:receive("*l") until not h or h == ""
    c:send("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    c:close()
  end
elseif mode:match("^ka_") then
  local c = accept()
  if c and read_request(c) then
    answer_ok(c)
    if read_request(c) then
      if mode == "ka_blackhole" then keep = blackhole() else server:close() end
    end
    c:close()
    if mode == "ka_blackhole" then socket.sleep(left()) end
  end
else
  local c = accept()
  if c and read_request(c) then misbehave(c, mode) elseif c then c:close() end
end

for _, s in ipairs(keep) do if s.close then s:close() end end
os.exit(0)
