-- pure_lua_client.lua -- what a user writes without the commsease module:
-- LuaSocket + lua-cjson + a pure-Lua SHA1 (bench/sha1.lua), the same request
-- (same form body, same signing headers), the whole answer parsed with cjson
-- and every success entry walked into a msgId -> message map.
--
--   lua5.4 bench/pure_lua_client.lua --url BASE --mode http|raw|prepare [--n N]
--          [--params light|realistic]
--
-- http:    socket.http.request with ltn12 -- what a user would write first.
--          LuaSocket's http module sends "Connection: close", so every request
--          opens a new TCP connection (no keep-alive is possible through it).
-- raw:     a hand-written HTTP/1.1 client on one kept-alive socket.tcp, the
--          best a user can do in pure Lua; it separates the connect cost from
--          the Lua cost.
-- prepare: only build {method, url, headers, body}, the pure-Lua equivalent of
--          client:prepare().
package.path = "bench/?.lua;" .. package.path
local common = require "common"
local cjson = require "cjson"
local sha1 = require "sha1"
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"

local o = common.args(arg, {mode = "http", n = 200, appkey = "benchkey", secret = "benchsecret",
  params = "light"})
assert(o.url, "--url is required")
local URL = o.url .. "/chatroom/batchSendMsgToSomeone.action"
local sformat, random = string.format, math.random

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(ch) return sformat("%%%02X", ch:byte()) end))
end

local function nonce()
  return sformat("%08x%08x%08x%08x", random(0, 0xffffffff), random(0, 0xffffffff),
    random(0, 0xffffffff), random(0, 0xffffffff))
end

-- the pure-Lua prepare(): params -> {method, url, headers, body}
local function prepare(p)
  local body = "roomid=" .. sformat("%d", p.roomid)
    .. "&msgList=" .. urlencode(cjson.encode(p.msgList))
    .. "&fromAccid=" .. urlencode(p.fromAccid)
    .. "&toAccids=" .. urlencode(cjson.encode(p.toAccids))
  local n, t = nonce(), tostring(os.time())
  return {method = "POST", url = URL, body = body, headers = {
    ["AppKey"] = o.appkey, ["Nonce"] = n, ["CurTime"] = t,
    ["CheckSum"] = sha1.hex(o.secret .. n .. t),
    ["Content-Type"] = "application/x-www-form-urlencoded;charset=utf-8",
    ["RequestId"] = nonce(), ["User-Agent"] = "bench-pure-lua/1",
  }}
end

-- answer -> res (msgId -> message map) or nil, err
local function parse(status, body)
  if status ~= 200 then return nil, "HTTP " .. tostring(status) end
  local ok, d = pcall(cjson.decode, body)
  if not ok or type(d) ~= "table" then return nil, "not JSON" end
  if math.tointeger(tonumber(d.code)) ~= 200 then return nil, "code " .. tostring(d.code) end
  local res = {code = 200, success = {}, fail = {}}
  for _, entry in ipairs(type(d.success) == "table" and d.success or {}) do
    for msgId, m in pairs(entry) do
      m.time = math.tointeger(tonumber(m.time))
      m.roomId = math.tointeger(tonumber(m.roomId))
      m.type = math.tointeger(tonumber(m.type))
      res.success[msgId] = m
    end
  end
  for _, entry in ipairs(type(d.fail) == "table" and d.fail or {}) do
    for msgId, why in pairs(entry) do res.fail[msgId] = why end
  end
  return res
end

local function send_http(p)
  local req = prepare(p)
  local hdrs = {}
  for k, v in pairs(req.headers) do hdrs[k] = v end
  hdrs["Content-Length"] = tostring(#req.body)
  local chunks = {}
  local _, status = http.request{url = req.url, method = "POST", headers = hdrs,
    source = ltn12.source.string(req.body), sink = ltn12.sink.table(chunks)}
  return parse(status, table.concat(chunks))
end

-- raw HTTP/1.1 keep-alive on one socket
local host, port, path = URL:match("^http://([^:/]+):(%d+)(/.*)$")
local sock
local function connect()
  sock = assert(socket.tcp())
  sock:settimeout(5)
  assert(sock:connect(host, tonumber(port)))
  -- after connect: LuaSocket refuses the option on an unconnected (master)
  -- socket, and without it Nagle holds the body's last segment for the
  -- server's delayed ACK (40 ms a request with the realistic batch)
  assert(sock:setoption("tcp-nodelay", true))
end

local function send_raw(p)
  local req = prepare(p)
  if not sock then connect() end
  local lines = {"POST " .. path .. " HTTP/1.1", "Host: " .. host .. ":" .. port,
    "Content-Length: " .. #req.body}
  for k, v in pairs(req.headers) do lines[#lines + 1] = k .. ": " .. v end
  lines[#lines + 1] = "\r\n"
  local ok, err = sock:send(table.concat(lines, "\r\n") .. req.body)
  if not ok then sock:close(); sock = nil; return nil, err end
  local status_line = sock:receive("*l")
  if not status_line then sock:close(); sock = nil; return nil, "no answer" end
  local status = tonumber(status_line:match("^HTTP/1%.%d (%d%d%d)"))
  local len, close = 0, false
  while true do
    local l = sock:receive("*l")
    if not l then sock:close(); sock = nil; return nil, "cut off" end
    if l == "" then break end
    local k, v = l:match("^([^:]+):%s*(.*)$")
    if k then
      k = k:lower()
      if k == "content-length" then len = tonumber(v)
      elseif k == "connection" and v:lower() == "close" then close = true end
    end
  end
  local body = len > 0 and sock:receive(len) or ""
  if close or not body then sock:close(); sock = nil end
  return parse(status, body or "")
end

local p = common.params(o.params)
local function full_success(res)
  if not res then return false end
  local k = 0
  for _ in pairs(res.success) do k = k + 1 end
  return k == common.N_MESSAGES
end

local ok = 0
if o.mode == "prepare" then
  prepare(p)
  local w0, c0 = common.wall(), common.cpu()
  for _ = 1, o.n do
    local req = prepare(p)
    if req.body then ok = ok + 1 end
  end
  common.result("pure_lua_prepare", o.n, ok, common.wall() - w0, common.cpu() - c0)
else
  local send = o.mode == "raw" and send_raw or o.mode == "http" and send_http
  if not send then error("unknown --mode " .. tostring(o.mode)) end
  assert(send(p)) -- warm-up outside the clock
  local w0, c0 = common.wall(), common.cpu()
  for _ = 1, o.n do
    if full_success(send(p)) then ok = ok + 1 end
  end
  common.result("pure_lua_" .. o.mode, o.n, ok, common.wall() - w0, common.cpu() - c0)
end
if sock then sock:close() end
