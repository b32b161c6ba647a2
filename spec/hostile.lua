--[[ spec/hostile.lua -- starts spec/hostile_server.lua (a misbehaving raw-socket server)
as its own process, for the transport and answer specs.

hostile.start(mode, ...) -> h (the extra arguments go to the server): h.port,
    h.base ("http://127.0.0.1:PORT/nimserver"),
    h.stop() -> how many whole requests the server read (SIGTERM; idempotent)
hostile.lua -> the interpreter that runs it: $COMMSEASE_SPEC_LUA, else the one running
    the specs (arg[-1]: "lua5.4" even under valgrind), else lua5.4
hostile.certificate() -> cert, key, remove: a self-signed certificate for 127.0.0.1
]]
local helpers = require "helpers"

local hostile = {}

local function interpreter()
  local env = os.getenv("COMMSEASE_SPEC_LUA")
  if env and env ~= "" then return env end
  local a = rawget(_G, "arg")
  local lua = type(a) == "table" and a[-1]
  if type(lua) == "string" and lua ~= "" and not lua:find("valgrind", 1, true) then return lua end
  return "lua5.4"
end
hostile.lua = interpreter()

function hostile.start(mode, ...)
  local extra = {}
  for i, a in ipairs{...} do extra[i] = helpers.shell_quote(a) end
  local cmd = "exec sh -c 'echo $$; exec \"$0\" \"$@\"' " .. helpers.shell_quote(hostile.lua) ..
              " spec/hostile_server.lua " .. mode .. " " .. table.concat(extra, " ")
  local p = assert(io.popen(cmd, "r"))
  local pid = tonumber(p:read("*l"))
  local line = p:read("*l") or ""
  local port = tonumber(line:match("^listening (%d+)$"))
  assert(pid and port, "hostile server did not start: " .. line)
  local h = {port = port, base = "http://127.0.0.1:" .. port .. "/nimserver"}
  function h.stop()
    if h.got then return h.got end
    os.execute("kill -TERM " .. pid .. " 2>/dev/null")
    local out = p:read("*a") or ""
    p:close()
    h.got = select(2, out:gsub("got\n", ""))
    return h.got
  end
  return h
end

-- a self-signed certificate for 127.0.0.1 (openssl req): cert, key paths, and a function
-- that removes them
function hostile.certificate()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. dir))
  local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
  assert(os.execute("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes " ..
                    "-keyout " .. key .. " -out " .. cert .. " -subj /CN=127.0.0.1 " ..
                    "-addext subjectAltName=IP:127.0.0.1 -days 2 >/dev/null 2>&1"),
         "openssl req failed")
  return cert, key, function() os.execute("rm -rf " .. dir) end
end

return hostile
