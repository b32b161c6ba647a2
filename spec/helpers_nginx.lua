--[[ spec/helpers_nginx.lua -- starts Debian's nginx with its Lua module for the specs.

nginx.jit_build_dir()  -> os.getenv("COMMSEASE_JIT_BUILD") or "build-jit": the module built
    for LuaJIT (make build-jit/commsease.so BUILD=build-jit LUA_CFLAGS=...)
nginx.start(o) -> ng; an nginx master (daemon off) on 127.0.0.1, a free port, in a fresh
    temporary prefix, with lua_package_path = src/lua and lua_package_cpath = jit_build_dir().
    o (all optional):
      workers  -- worker_processes (default 2)
      http     -- extra text at http level (lua_shared_dict, init_by_lua_block, ...)
      server   -- extra text inside the server block (locations)
                  ("$PORT2" in http or server is a second free port, ng.port2)
      conf     -- a whole nginx.conf to use instead; "$PORT", "$PREFIX", "$ROOT" (the
                  repository) and "$CPATH" in it are replaced
      env      -- { NAME = value } added to nginx's environment (pass them on with `env NAME;`)
      runner   -- default true: adds `location = /_run`, which runs the Lua chunk POSTed
                  as the body (test-only: never in a real config) as a function of the
                  query's decoded JSON argument `a`, and answers the JSON of what it
                  returns (or 500 with the error)
    ng.port, ng.root ("http://127.0.0.1:PORT"), ng.prefix, ng.pid (the master's),
    ng:stop() (SIGQUIT, then SIGTERM and SIGKILL; idempotent; removes the prefix),
    ng:log() -> the error log so far,
    ng:get(path) / ng:post(path, body) -> status, decoded JSON (nil if not JSON), raw
    ng:run(code, arg, timeout) -> the decoded answer of /_run (raises with the error log's
        tail when the chunk failed)
    ng:send_raw(path, body) -> a LuaSocket connected with that POST written, unread
        (read it with helpers.read_response); lets a spec hold one request open
]]
local socket = require("socket")
local cjson = require("cjson.safe")
local helpers = require("helpers")

local nginx = {}
nginx.BIN = os.getenv("COMMSEASE_NGINX") or "/usr/sbin/nginx"
nginx.MODULES = "/usr/lib/nginx/modules"

function nginx.jit_build_dir() return os.getenv("COMMSEASE_JIT_BUILD") or "build-jit" end

local shq = helpers.shell_quote

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local function readfile(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function proc_alive(pid)
  local st = readfile("/proc/" .. pid .. "/stat")
  local state = st and st:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

local RUNNER = [[
    location = /_run {
      client_max_body_size 1m;
      client_body_buffer_size 1m;
      content_by_lua_block {
        local cjson = require "cjson.safe"
        ngx.req.read_body()
        local code = ngx.req.get_body_data() or ""
        local arg = ngx.var.arg_a and cjson.decode(ngx.unescape_uri(ngx.var.arg_a)) or nil
        local fn, lerr = loadstring(code, "=run")
        if not fn then ngx.status = 500; ngx.say(lerr); return end
        local ok, out = xpcall(fn, debug.traceback, arg)
        if not ok then
          ngx.status = 500
          ngx.log(ngx.ERR, "run failed: ", out)
          ngx.say(out)
          return
        end
        local text, jerr = cjson.encode(out == nil and cjson.null or out)
        if not text then ngx.status = 500; ngx.say("cannot encode the result: ", jerr); return end
        ngx.header["Content-Type"] = "application/json"
        ngx.say(text)
      }
    }
]]

local Ng = {}
Ng.__index = Ng

local function root_dir()
  -- the repository: the specs run from its top
  local p = io.popen("pwd")
  local d = p:read("l")
  p:close()
  return d
end

function nginx.start(o)
  o = o or {}
  local prefix = os.tmpname()
  os.remove(prefix)
  assert(os.execute("mkdir -p " .. shq(prefix .. "/logs")))
  local root = root_dir()
  local cpath = root .. "/" .. nginx.jit_build_dir() .. "/?.so"
  local so = root .. "/" .. nginx.jit_build_dir() .. "/commsease.so"
  if not readfile(so) then
    error("no " .. so .. ": build it with make " .. nginx.jit_build_dir()
          .. "/commsease.so BUILD=" .. nginx.jit_build_dir()
          .. " LUA_CFLAGS=\"-I/usr/include/luajit-2.1 -I/usr/include/lua5.1\"")
  end
  for attempt = 1, 5 do
    local port, port2 = free_port(), free_port()
    local conf
    if o.conf then
      conf = o.conf:gsub("%$PORT", tostring(port)):gsub("%$PREFIX", prefix)
                   :gsub("%$ROOT", root):gsub("%$CPATH", cpath)
    else
      conf = table.concat({
        "load_module " .. nginx.MODULES .. "/ndk_http_module.so;",
        "load_module " .. nginx.MODULES .. "/ngx_http_lua_module.so;",
        "worker_processes " .. (o.workers or 2) .. ";",
        "daemon off;",
        "master_process on;",
        "pid logs/nginx.pid;",
        "error_log logs/error.log info;",
        "events { worker_connections 1024; }",
        "http {",
        "  access_log off;",
        "  client_body_temp_path logs/body; proxy_temp_path logs/proxy;",
        "  fastcgi_temp_path logs/fastcgi; uwsgi_temp_path logs/uwsgi; scgi_temp_path logs/scgi;",
        "  lua_package_path \"" .. root .. "/src/lua/?.lua;" .. root .. "/spec/?.lua;;\";",
        "  lua_package_cpath \"" .. cpath .. ";;\";",
        "  lua_socket_log_errors off;",
        (o.http or ""):gsub("%$PORT2", tostring(port2)),
        "  server {",
        "    listen 127.0.0.1:" .. port .. ";",
        "    location = /ping { return 200 \"pong\\n\"; }",
        o.runner ~= false and RUNNER or "",
        (o.server or ""):gsub("%$PORT2", tostring(port2)),
        "  }",
        "}", ""}, "\n")
    end
    local cf = assert(io.open(prefix .. "/nginx.conf", "wb"))
    cf:write(conf)
    cf:close()
    -- nginx must not inherit an ASan preload meant for the specs' own process
    local envs = {}
    for k, v in pairs(o.env or {}) do envs[#envs + 1] = shq(k .. "=" .. v) end
    table.sort(envs)
    local cmd = "exec env -u LD_PRELOAD " .. table.concat(envs, " ")
        .. " sh -c 'echo $$; exec \"$0\" \"$@\" 2>>" .. prefix .. "/logs/stderr.log' "
        .. shq(nginx.BIN) .. " -p " .. shq(prefix .. "/") .. " -c " .. shq(prefix .. "/nginx.conf")
    local p = assert(io.popen(cmd, "r"))
    local pid = tonumber(p:read("l"))
    local ng = setmetatable({pid = pid, proc = p, port = port, port2 = port2, prefix = prefix,
                             root = "http://127.0.0.1:" .. port}, Ng)
    local up = helpers.wait_until(function()
      if not proc_alive(pid) then return "dead" end
      local s = socket.tcp()
      s:settimeout(0.2)
      local ok = s:connect("127.0.0.1", port)
      s:close()
      return ok and "up"
    end, 10)
    if up == "up" then
      -- every worker has run init: the master's children exist
      helpers.wait_until(function()
        -- read from /proc, not pgrep: under make test-asan the specs' LD_PRELOAD
        -- of libasan reaches every child, and pgrep deadlocks under it
        local n = 0
        for _ in (readfile("/proc/" .. pid .. "/task/" .. pid .. "/children") or ""):gmatch("%d+") do
          n = n + 1
        end
        return n >= (o.workers or 1)
      end, 5)
      return ng
    end
    local log = ng:log()
    ng:stop()
    if not log:find("Address already in use", 1, true) or attempt == 5 then
      error("nginx did not start:\n" .. log)
    end
  end
end

function Ng:log()
  return (readfile(self.prefix .. "/logs/error.log") or "")
      .. (readfile(self.prefix .. "/logs/stderr.log") or "")
end

function Ng:stop()
  if self.stopped then return end
  self.stopped = true
  os.execute("kill -QUIT " .. self.pid .. " 2>/dev/null")
  local deadline = helpers.now() + 5
  while proc_alive(self.pid) and helpers.now() < deadline do socket.sleep(0.02) end
  if proc_alive(self.pid) then
    os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
    deadline = helpers.now() + 3
    while proc_alive(self.pid) and helpers.now() < deadline do socket.sleep(0.02) end
  end
  if proc_alive(self.pid) then os.execute("kill -KILL " .. self.pid .. " 2>/dev/null") end
  self.proc:close()
  os.execute("rm -rf " .. shq(self.prefix))
end

function Ng:get(path) return helpers.json_get(self.root .. path) end
function Ng:post(path, body) return helpers.json_post(self.root .. path, body) end

function Ng:run(code, arg, timeout)
  local q = ""
  if arg ~= nil then q = "?a=" .. helpers.urlencode(assert(cjson.encode(arg))) end
  local st, body = helpers.http("POST", self.root .. "/_run" .. q, {["Content-Type"] = "text/plain"},
                                code, timeout or 60)
  if st ~= 200 then
    local log = self:log()
    error(("/_run answered %s: %s\n-- error log tail:\n%s"):format(tostring(st), tostring(body),
          log:sub(-3000)), 2)
  end
  local v = cjson.decode(body)
  if v == cjson.null then return nil end
  return v
end

function Ng:send_raw(path, body)
  local s = assert(helpers.connect(self.port, 10))
  assert(s:send(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n"
                 .. "Connection: close\r\n\r\n%s"):format(path, #body, body)))
  return s
end

nginx.json = cjson
return nginx
