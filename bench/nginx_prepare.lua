-- nginx_prepare.lua -- prepare() inside nginx (OpenResty's LuaJIT), against
-- what an OpenResty user writes without the module: ngx.encode_args for the
-- form, ngx.sha1_bin for the CheckSum, lua-cjson for msgList and toAccids.
-- run.lua starts nginx with a location that calls run() and reads the RESULT
-- line it answers:
--   GET /prepare?mode=module|pure&n=N&params=light|realistic
-- Both build the same request table ({method, url, headers, body}) for the
-- same params; the pure one validates nothing, which favours it.
-- luacheck: read globals ngx
local cjson = require "cjson"
local common = require "common"

local M = {}
local APPKEY, SECRET = "benchkey", "benchsecret"
local URL = "http://127.0.0.1:9/nimserver/chatroom/batchSendMsgToSomeone.action"
local HEX = {}
for i = 0, 255 do HEX[string.char(i)] = string.format("%02x", i) end
local random, sformat = math.random, string.format

local function nonce()
  return sformat("%08x%08x%08x%08x", random(0, 0x7fffffff), random(0, 0x7fffffff),
    random(0, 0x7fffffff), random(0, 0x7fffffff))
end

local function pure_prepare(p)
  local body = ngx.encode_args{roomid = p.roomid, msgList = cjson.encode(p.msgList),
    fromAccid = p.fromAccid, toAccids = cjson.encode(p.toAccids)}
  local n, t = nonce(), tostring(ngx.time())
  return {method = "POST", url = URL, body = body, headers = {
    ["AppKey"] = APPKEY, ["Nonce"] = n, ["CurTime"] = t,
    ["CheckSum"] = (ngx.sha1_bin(SECRET .. n .. t):gsub(".", HEX)),
    ["Content-Type"] = "application/x-www-form-urlencoded;charset=utf-8",
    ["RequestId"] = nonce(), ["User-Agent"] = "bench-openresty/1",
  }}
end

local client
function M.run()
  local args = ngx.req.get_uri_args()
  local n = tonumber(args.n) or 1000
  local p = common.params(args.params or "light")
  local f, name
  if args.mode == "module" then
    local commsease = require "commsease"
    client = client or commsease.new{appkey = APPKEY, secret = SECRET,
      endpoint = "http://127.0.0.1:9/nimserver", rate_limit = 0}
    f, name = function() return client:prepare(p) end, "nginx_prepare"
  else
    f, name = function() return pure_prepare(p) end, "nginx_pure_prepare"
  end
  assert(f().body) -- warm-up outside the clock
  local ok = 0
  ngx.update_time()
  local w0, c0 = ngx.now(), os.clock()
  for _ = 1, n do
    local req = f()
    if req and req.body then ok = ok + 1 end
  end
  ngx.update_time()
  local wall, cpu = ngx.now() - w0, os.clock() - c0
  ngx.say(string.format("RESULT name=%s n=%d ok=%d wall_s=%.4f reqps=%.1f cpu_us=%.2f", name, n,
    ok, wall, wall > 0 and n / wall or 0, cpu * 1e6 / n))
end

return M
