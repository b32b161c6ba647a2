--[[ spec/helpers.lua -- shared by every spec.  Names below are stable.

helpers.build_dir()                 -> os.getenv("COMMSEASE_BUILD") or "build"
helpers.emulator_bin()              -> build_dir() .. "/commsease-emulator"
helpers.start_emulator(args)        -> emu; starts the emulator on 127.0.0.1, a free port.
    emu.port, emu.base ("http://127.0.0.1:PORT/nimserver"), emu.root ("http://127.0.0.1:PORT"),
    emu.url (the API URL), emu.pid, emu.appkey, emu.secret (from args or the defaults),
    emu:stop() -> how, code (SIGTERM, wait up to 5 s, then SIGKILL; idempotent; returns
                  how the emulator ended, as 5.4's io.popen close says it: "exit", 0 or
                  "signal", 9, on every Lua version; emu.rest is then what it printed on
                  stdout after the listening line),
    emu:get(path) / emu:post(path, tbl_or_string) -> status, decoded JSON (nil if not JSON), raw
    emu:reset(), emu:inbox(accid) -> messages array, emu:stats(), emu:requests(),
    emu:faults(list) -> status, json (POSTs {"faults":list}), emu:config(tbl)
helpers.http(method, url, headers, body, timeout) -> status, body, headers
    (status nil and an error message when the connection failed or closed)
helpers.json_get(url) / helpers.json_post(url, tbl_or_string) -> status, decoded, raw
helpers.sign(secret, nonce, curtime) -> lowercase sha1 hex, via sha1sum (independent of our C)
helpers.sha1_hex(s), helpers.md5_hex(s) -> via sha1sum / md5sum
helpers.form_encode(tbl) -> application/x-www-form-urlencoded text, keys sorted; table values
    are JSON-encoded (msgList, toAccids, ...); helpers.urlencode(s)
helpers.msgid(prefix) -> a fresh msgId;  helpers.good_form(over) -> a valid form table
    (roomid 42, fromAccid "alice", toAccids {"bob"}, one text message); keys in `over`
    replace the defaults (helpers.NULL removes one)
helpers.signed_request(emu, form, o) -> method, url, headers, body of a valid signed call.
    form: a table (see form_encode) or a raw body string.  o (all optional): appkey, secret,
    nonce, curtime, checksum, content_type, path, method, headers (extra; a value false
    removes a header), omit (list of header names to leave out)
helpers.signed_post(emu, form, o) -> status, decoded JSON, raw body, headers
helpers.raw_request_text(emu, form, o) -> the same call as HTTP/1.1 text for raw sockets
helpers.connect(port, timeout) -> a connected LuaSocket TCP client
helpers.read_response(sock, timeout) -> status, body (reads one HTTP/1.1 response)
helpers.wait_until(fn, timeout) -> fn's first truthy value, or nil after timeout seconds
helpers.now() -> wall-clock seconds with fractions
helpers.client_for(emu, over) -> a commsease client for this emulator (appkey, secret and
    endpoint filled in; keys in `over` added or replaced; `endpoints` replaces `endpoint`)

Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT run the same specs; what differs between them is here:
helpers.LUA (e.g. "Lua 5.1", "LuaJIT 2.1.0-beta3"), helpers.lua_bin() -> the interpreter
    running the specs ("lua5.1", "luajit", ...), for specs that start another Lua
helpers.run(cmd) -> output, ok, how, code: io.popen(cmd) read to the end; how, code are
    "exit", N or "signal", N on every version (5.1 and LuaJIT's close says neither)
helpers.bytes(...) -> string.char(...): bytes by value ("\xe9" is the text "xe9" on 5.1)
helpers.utf8(cp, ...) -> the UTF-8 text of these code points ("\u{...}" needs 5.3)
helpers.math_type(x) -> math.type(x) on 5.3/5.4; where numbers are doubles, "integer" for a
    number with no fraction, "float" for any other number, nil for a non-number
helpers.load(text, name, env) -> chunk or nil, err (a string chunk on every version)
helpers.with_close(value, fn) -> fn(value) in a scope that closes value at its end: a real
    `local v <close>` on 5.4, elsewhere its __close metamethod called as 5.4 would
    (v, nil after a normal end; v, err and the error raised again after an error)
helpers.unpack = table.unpack or unpack
Below 5.3, file:read, file:lines and io.read also take the formats without "*" ("a", "l"),
as on 5.3+ (the one global change helpers make).
]]
local socket = require("socket")
local http = require("socket.http")
local ltn12 = require("ltn12")
local cjson = require("cjson.safe")

local helpers = {}
helpers.NULL = setmetatable({}, {__tostring = function() return "helpers.NULL" end})
helpers.DEFAULT_APPKEY = "demo-appkey"
helpers.DEFAULT_SECRET = "demo-secret"

function helpers.build_dir() return os.getenv("COMMSEASE_BUILD") or "build" end
function helpers.emulator_bin() return helpers.build_dir() .. "/commsease-emulator" end
function helpers.now() return socket.gettime() end

-- ---- what differs between Lua versions ----
local unpack = table.unpack or unpack -- luacheck: ignore 113 143
helpers.unpack = unpack
helpers.LUA = rawget(_G, "jit") and _G.jit.version or _VERSION

-- Lua 5.1, 5.2 and LuaJIT want read("*a"), read("*l"); 5.3 made the "*" optional and
-- specs write read("a").  Here, as lua-compat-5.3 does, file:read, file:lines and
-- io.read take both spellings (the only global change helpers make: specs feature-test
-- math.type and friends, so nothing else is added)
if not math.type then -- luacheck: ignore 143
  local function star(fmt)
    if type(fmt) == "string" and fmt:sub(1, 1) ~= "*" then return "*" .. fmt end
    return fmt
  end
  local function stars(...)
    local t = {...}
    for i = 1, select("#", ...) do t[i] = star(t[i]) end
    return unpack(t, 1, select("#", ...))
  end
  local methods = debug.getmetatable(io.stdout).__index
  local read, lines, io_read = methods.read, methods.lines, io.read
  methods.read = function(f, ...) return read(f, stars(...)) end
  methods.lines = function(f, ...) return lines(f, stars(...)) end
  io.read = function(...) return io_read(stars(...)) end -- luacheck: ignore 122
end

function helpers.lua_bin()
  local i, bin = -1, nil
  while arg and arg[i] do bin = arg[i]; i = i - 1 end -- the first word of the command line
  return bin or (rawget(_G, "jit") and "luajit" or "lua" .. _VERSION:match("%d+%.%d+"))
end

function helpers.bytes(...) return string.char(...) end

function helpers.utf8(...)
  local out = {}
  for i, cp in ipairs({...}) do
    if cp < 0x80 then
      out[i] = string.char(cp)
    elseif cp < 0x800 then
      out[i] = string.char(0xC0 + math.floor(cp / 0x40), 0x80 + cp % 0x40)
    elseif cp < 0x10000 then
      out[i] = string.char(0xE0 + math.floor(cp / 0x1000), 0x80 + math.floor(cp / 0x40) % 0x40,
                           0x80 + cp % 0x40)
    else
      out[i] = string.char(0xF0 + math.floor(cp / 0x40000), 0x80 + math.floor(cp / 0x1000) % 0x40,
                           0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
    end
  end
  return table.concat(out)
end

function helpers.math_type(x)
  if math.type then return math.type(x) end -- luacheck: ignore 143
  if type(x) ~= "number" then return nil end
  return (x == math.floor(x) and x > -math.huge and x < math.huge) and "integer" or "float"
end

function helpers.load(text, name, env)
  if setfenv then -- luacheck: ignore 113 (5.1, LuaJIT)
    local chunk, err = loadstring(text, name) -- luacheck: ignore 113
    if chunk and env then setfenv(chunk, env) end -- luacheck: ignore 113
    return chunk, err
  end
  return load(text, name, "t", env)
end

local with_close54 = _VERSION == "Lua 5.4" and not rawget(_G, "jit") and assert(helpers.load([[
  local value, fn = ...
  local v <close> = value
  return fn(v)
]], "=with_close"))
function helpers.with_close(value, fn)
  if with_close54 then return with_close54(value, fn) end
  local mt = debug.getmetatable(value) -- the raw one: __metatable may hide it
  local close = assert(type(mt) == "table" and mt.__close, "the value has no __close metamethod")
  local res = {pcall(fn, value)}
  if res[1] then
    close(value, nil)
    return unpack(res, 2, select("#", unpack(res)))
  end
  close(value, res[2])
  error(res[2], 0)
end

function helpers.run(cmd)
  -- the shell reports the status: io.popen's close does not on 5.1 and LuaJIT
  local p = assert(io.popen("(" .. cmd .. "\n); printf '\\n__commsease_status %d\\n' $?"))
  local out = p:read("*a")
  p:close()
  local body, status = out:match("^(.*)\n__commsease_status (%d+)\n$")
  if not body then return out, nil, nil, nil end
  status = tonumber(status)
  if status > 128 then return body, false, "signal", status - 128 end
  return body, status == 0, "exit", status
end

function helpers.client_for(emu, over)
  local o = {appkey = emu.appkey, secret = emu.secret, endpoint = emu.base}
  for k, v in pairs(over or {}) do o[k] = v end
  if o.endpoints then o.endpoint = nil end
  return require("commsease").new(o)
end

local function shq(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
helpers.shell_quote = shq

local function digest(cmd, s)
  -- the data goes through a temporary file, never a command line or the test output
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  f:write(s)
  f:close()
  local p = assert(io.popen(cmd .. " < " .. shq(tmp)))
  local out = p:read("*a")
  p:close()
  os.remove(tmp)
  return (out:match("^(%x+)"))
end
function helpers.sha1_hex(s) return digest("sha1sum", s) end
function helpers.md5_hex(s) return digest("md5sum", s) end
function helpers.sign(secret, nonce, curtime)
  return helpers.sha1_hex(secret .. nonce .. tostring(curtime))
end

function helpers.sleep(s) socket.sleep(s) end

function helpers.wait_until(fn, timeout)
  local deadline = helpers.now() + (timeout or 5)
  repeat
    local v = fn()
    if v then return v end
    socket.sleep(0.02)
  until helpers.now() > deadline
  return nil
end

-- ---- processes ----
local function proc_alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local st = f:read("*a") or "" -- nil when the process went away between open and read
  f:close()
  local state = st:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

local Emu = {}
Emu.__index = Emu

function helpers.start_emulator(args)
  args = args or {}
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = shq(a) end
  -- an inner shell prints its pid and becomes the emulator (so the pid comes first and
  -- is the emulator's); the outer one then prints how it ended, which io.popen's close
  -- does not say on 5.1 and LuaJIT
  local inner = [[echo \$\$; exec \"\$0\" --port 0 \"\$@\"]]
  local cmd = "exec sh -c 'sh -c \"" .. inner .. "\" \"$0\" \"$@\"; echo \"__commsease_status $?\"' "
      .. shq(helpers.emulator_bin()) .. " " .. table.concat(quoted, " ")
  local p = assert(io.popen(cmd, "r"))
  local pid = tonumber(p:read("*l"))
  local line = p:read("*l")
  if not pid or not line then
    p:close()
    error("emulator did not start: " .. cmd)
  end
  local port = tonumber(line:match("^listening on http://127%.0%.0%.1:(%d+)/nimserver$"))
  if not port then
    p:close()
    error("unexpected first line from the emulator: " .. line)
  end
  local emu = setmetatable({pid = pid, proc = p, port = port, line = line,
                            appkey = helpers.DEFAULT_APPKEY, secret = helpers.DEFAULT_SECRET},
                           Emu)
  for i = 1, #args - 1 do
    if args[i] == "--appkey" then emu.appkey = args[i + 1] end
    if args[i] == "--secret" then emu.secret = args[i + 1] end
  end
  emu.root = "http://127.0.0.1:" .. port
  emu.base = emu.root .. "/nimserver"
  emu.url = emu.base .. "/chatroom/batchSendMsgToSomeone.action"
  return emu
end

function Emu:stop()
  if self.stopped then return unpack(self.stopped) end
  os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
  local deadline = helpers.now() + 5
  while proc_alive(self.pid) and helpers.now() < deadline do socket.sleep(0.02) end
  if proc_alive(self.pid) then os.execute("kill -KILL " .. self.pid .. " 2>/dev/null") end
  local rest = self.proc:read("*a") -- whatever it printed after the listening line
  self.proc:close()
  local how, code
  local before, status = rest:match("^(.-)__commsease_status (%d+)\n$")
  if status then
    rest, status = before, tonumber(status)
    how, code = "exit", status
    if status > 128 then how, code = "signal", status - 128 end
  end
  self.rest = rest
  self.stopped = {how, code}
  return how, code
end

function Emu:get(path) return helpers.json_get(self.root .. path) end
function Emu:post(path, body) return helpers.json_post(self.root .. path, body) end
function Emu:reset()
  local st = self:post("/_emulator/reset", "")
  assert(st == 200, "reset failed")
end
function Emu:inbox(accid)
  local st, j = self:get("/_emulator/inbox?accid=" .. helpers.urlencode(accid))
  assert(st == 200 and j, "inbox failed")
  return j.messages, j
end
function Emu:stats()
  local _, j = self:get("/_emulator/stats")
  return j
end
function Emu:requests()
  local _, j = self:get("/_emulator/requests")
  return j and j.requests
end
function Emu:faults(list) return self:post("/_emulator/faults", {faults = list}) end
function Emu:config(tbl) return self:post("/_emulator/config", tbl) end

-- ---- HTTP ----
function helpers.http(method, url, headers, body, timeout)
  local chunks = {}
  local h = {}
  for k, v in pairs(headers or {}) do h[k] = v end
  if body then
    local has_len = false
    for k in pairs(h) do if k:lower() == "content-length" then has_len = true end end
    if not has_len then h["Content-Length"] = tostring(#body) end
  end
  local ok, status, rheaders = http.request{
    url = url, method = method, headers = h,
    source = body and ltn12.source.string(body) or nil,
    sink = ltn12.sink.table(chunks),
    create = function()
      local s = socket.tcp()
      s:settimeout(timeout or 10)
      return s
    end,
  }
  if not ok then return nil, status end
  return status, table.concat(chunks), rheaders
end

function helpers.json_get(url)
  local st, body = helpers.http("GET", url)
  return st, st and cjson.decode(body) or nil, body
end

function helpers.json_post(url, tbl)
  local body = type(tbl) == "table" and assert(cjson.encode(tbl)) or tbl or ""
  local st, rb = helpers.http("POST", url, {["Content-Type"] = "application/json"}, body)
  return st, st and cjson.decode(rb) or nil, rb
end

-- ---- forms ----
function helpers.urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

function helpers.form_encode(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = t[k]
    if v ~= helpers.NULL then
      if type(v) == "table" then v = assert(cjson.encode(v)) end
      parts[#parts + 1] = helpers.urlencode(k) .. "=" .. helpers.urlencode(tostring(v))
    end
  end
  return table.concat(parts, "&")
end

local counter = 0
function helpers.msgid(prefix)
  counter = counter + 1
  return string.format("%s%d-%d", prefix or "m", math.floor(helpers.now() * 1000) % 100000000,
                       counter)
end

function helpers.good_form(over)
  local f = {
    roomid = "42",
    fromAccid = "alice",
    toAccids = {"bob"},
    msgList = {{msgId = helpers.msgid(), msgType = 0, attach = "hello"}},
  }
  for k, v in pairs(over or {}) do f[k] = v end
  return f
end

function helpers.signed_request(emu, form, o)
  o = o or {}
  local appkey = o.appkey or emu.appkey or helpers.DEFAULT_APPKEY
  local secret = o.secret or emu.secret or helpers.DEFAULT_SECRET
  local nonce = o.nonce or string.format("%08x%08x", math.random(0, 0x7fffffff),
                                         math.random(0, 0x7fffffff))
  local curtime = tostring(o.curtime or os.time())
  local body = type(form) == "table" and helpers.form_encode(form) or form or ""
  local headers = {
    AppKey = appkey,
    Nonce = nonce,
    CurTime = curtime,
    CheckSum = o.checksum or helpers.sign(secret, nonce, curtime),
    ["Content-Type"] = o.content_type or "application/x-www-form-urlencoded;charset=utf-8",
  }
  for _, name in ipairs(o.omit or {}) do headers[name] = nil end
  for k, v in pairs(o.headers or {}) do
    if v == false then headers[k] = nil else headers[k] = v end
  end
  local url = o.path and (emu.root .. o.path) or emu.url
  return o.method or "POST", url, headers, body
end

function helpers.signed_post(emu, form, o)
  local method, url, headers, body = helpers.signed_request(emu, form, o)
  local st, rb, rh = helpers.http(method, url, headers, body, o and o.timeout)
  if not st then return nil, nil, rb end
  return st, cjson.decode(rb), rb, rh
end

function helpers.raw_request_text(emu, form, o)
  local method, url, headers, body = helpers.signed_request(emu, form, o)
  local path = url:match("^http://[^/]+(/.*)$")
  local lines = {method .. " " .. path .. " HTTP/1.1", "Host: 127.0.0.1:" .. emu.port}
  for k, v in pairs(headers) do lines[#lines + 1] = k .. ": " .. v end
  lines[#lines + 1] = "Content-Length: " .. #body
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. body
end

-- ---- raw sockets ----
function helpers.connect(port, timeout)
  local s = socket.tcp()
  s:settimeout(timeout or 5)
  local ok, err = s:connect("127.0.0.1", port)
  if not ok then
    s:close()
    return nil, err
  end
  return s
end

function helpers.read_response(s, timeout)
  s:settimeout(timeout or 5)
  local line, err = s:receive("*l")
  if not line then return nil, err end
  local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
  local len, chunked
  while true do
    local h = s:receive("*l")
    if not h or h == "" then break end
    local k, v = h:match("^([^:]+):%s*(.-)%s*$")
    if k and k:lower() == "content-length" then len = tonumber(v) end
    if k and k:lower() == "transfer-encoding" and v:lower():find("chunked") then chunked = true end
  end
  local body = ""
  if len then
    body = len > 0 and (s:receive(len) or "") or ""
  elseif chunked then
    local parts = {}
    while true do
      local szl = s:receive("*l")
      local sz = szl and tonumber(szl:match("^(%x+)"), 16)
      if not sz or sz == 0 then break end
      parts[#parts + 1] = s:receive(sz) or ""
      s:receive("*l")
    end
    body = table.concat(parts)
  end
  return status, body
end

helpers.json = cjson
return helpers
