-- examples/prepare.lua -- the I/O-free path: client:prepare() validates, signs
-- and encodes a call without sending it (for OpenResty's cosocket HTTP clients,
-- a job queue, or a test), and commsease.parse() turns an answer you fetched
-- yourself into the same res, err that client:send() returns.
--
--   lua5.4 examples/prepare.lua          (no network, no emulator needed;
--                                         lua5.1..5.3 and luajit run it too)
--
-- The secret is only ever handed to commsease.new (and to commsease.checksum
-- below, to show how the CheckSum is made); it is never printed.

local here = (arg and arg[0] or ""):match("^(.*)[/\\][^/\\]*$") or "."
package.cpath = (os.getenv("COMMSEASE_BUILD") or (here .. "/../build")) .. "/?.so;" .. package.cpath
local commsease = require "commsease"
local cjson = require "cjson"

local secret = os.getenv("COMMSEASE_SECRET") or "demo-secret"
local client = commsease.new{
  appkey = os.getenv("COMMSEASE_APPKEY") or "demo-appkey",
  secret = secret,
  endpoints = { "https://api.netease.im/nimserver", "https://api-sg.netease.im/nimserver" },
}

local req, err = client:prepare{
  roomid = 123456,
  fromAccid = "alice",
  toAccids = { "bob", "carol" },
  msgList = {
    commsease.text("hello from prepare()", { msgId = "m1" }),
    commsease.location({ title = "Harbour gate", lng = 120.1551, lat = 30.2741, msgId = "m2" }),
  },
  route = 0,
}
client:close() -- prepare needs no connection; the request table stands alone
if not req then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end

print("== the request (prepare)")
print(req.method .. " " .. req.url)
local names = {}
for name in pairs(req.headers) do names[#names + 1] = name end
table.sort(names)
for _, name in ipairs(names) do print(string.format("  %-13s %s", name .. ":", req.headers[name])) end
print("  request_id:   " .. req.request_id .. " (also the RequestId header)")
print("  msgIds:       " .. table.concat(req.msgIds, ", "))

-- the CheckSum is SHA1(secret .. Nonce .. CurTime): anyone holding the secret
-- can check it; it does not reveal the secret
local h = req.headers
print("  CheckSum matches commsease.checksum(secret, Nonce, CurTime): " ..
      tostring(commsease.checksum(secret, h.Nonce, h.CurTime) == h.CheckSum))

-- the body is application/x-www-form-urlencoded; msgList and toAccids are JSON text
local function unescape(s)
  return (s:gsub("%+", " "):gsub("%%(%x%x)", function(x) return string.char(tonumber(x, 16)) end))
end
print("\n== the body, decoded (" .. #req.body .. " bytes on the wire)")
for pair in req.body:gmatch("[^&]+") do
  local k, v = pair:match("^([^=]*)=(.*)$")
  k, v = unescape(k), unescape(v)
  if k == "msgList" then
    print("  msgList:")
    for i, m in ipairs(cjson.decode(v)) do
      print(string.format("    [%d] msgId=%s msgType=%d attach=%s%s", i, m.msgId, m.msgType, m.attach,
                          m.ext and (" ext=" .. m.ext) or ""))
    end
  else
    print(string.format("  %s: %s", k, v))
  end
end

-- an answer as the service sends it: numbers may arrive as strings, and
-- success / fail are lists of one-key objects keyed by msgId
print("\n== parse() of a canned answer")
local body = [[{"code":200,
  "success":[{"m1":{"time":"1700000000000","msgid_client":"m1","fromAccount":"alice",
                    "fromClientType":"REST","roomId":"123456","type":"0","attach":"hello from prepare()"}}],
  "fail":[{"m2":"parameter resendFlag should be used for RESEND!"}]}]]
local res = assert(commsease.parse(200, body))
for _, id in ipairs(req.msgIds) do
  if res.success[id] then
    print(string.format("  %s: delivered, time %d (an integer now), roomId %d", id,
                        res.success[id].time, res.success[id].roomId))
  else
    print(string.format("  %s: failed: %s", id, res.fail[id]))
  end
end

print("\n== parse() of refusals")
for _, case in ipairs{
  { 200, [[{"code":414,"desc":"msgContents size exceeded"}]] },
  { 200, [[{"code":416,"desc":"api frequently"}]] },
  { 502, "<html>Bad Gateway</html>" },
  { 200, "not json" },
} do
  local r, e = commsease.parse(case[1], case[2])
  assert(r == nil)
  print(string.format("  %-58s retryable=%s", tostring(e), tostring(e.retryable)))
end
