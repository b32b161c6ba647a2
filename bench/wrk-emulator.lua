-- wrk script: valid signed calls to commsease-emulator, a fresh msgId each.
--   build/commsease-emulator --port 8099 --rate-limit 0 &
--   wrk -t2 -c32 -d5s -s bench/wrk-emulator.lua http://127.0.0.1:8099
-- CurTime is fixed when wrk starts (the emulator accepts +-300 s); the
-- CheckSum is computed once with sha1sum.
local appkey = os.getenv("EMU_APPKEY") or "demo-appkey"
local secret = os.getenv("EMU_SECRET") or "demo-secret"
local nonce = "wrk-nonce-0123456789abcdef"
local curtime = tostring(os.time())
local p = io.popen("printf %s '" .. secret .. nonce .. curtime .. "' | sha1sum")
local checksum = p:read("*a"):match("^(%x+)")
p:close()

local path = "/nimserver/chatroom/batchSendMsgToSomeone.action"
local headers = {
  ["AppKey"] = appkey, ["Nonce"] = nonce, ["CurTime"] = curtime, ["CheckSum"] = checksum,
  ["Content-Type"] = "application/x-www-form-urlencoded;charset=utf-8",
}
-- EMU_MSGS messages (default 1) to EMU_TO recipients (default 2) per call
local nmsgs = tonumber(os.getenv("EMU_MSGS") or "1")
local nto = tonumber(os.getenv("EMU_TO") or "2")
local function enc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
local to = {}
for i = 1, nto do to[i] = '"p' .. i .. '"' end
local prefix = "roomid=42&fromAccid=alice&toAccids=" .. enc("[" .. table.concat(to, ",") .. "]") ..
  "&msgList="
-- each wrk thread gets its own id (setup runs in the main state), and the
-- run its own stamp, so msgIds never repeat across threads or runs
local threads, stamp = {}, tostring(os.time()) .. tostring(math.floor(os.clock() * 1e6))
function setup(thread)
  thread:set("tid", stamp .. "t" .. (#threads + 1))
  threads[#threads + 1] = thread
end
n, bad = 0, 0

-- the msgList, percent-encoded once around the msgIds (which need no encoding)
local open_id, close_msg = enc('{"msgId":"'), enc('","msgType":0,"attach":"hello"}')
function request()
  n = n + 1
  local parts = {prefix, "%5B"}
  for i = 1, nmsgs do
    if i > 1 then parts[#parts + 1] = "%2C" end
    parts[#parts + 1] = open_id .. "w" .. tid .. "-" .. n .. "-" .. i .. close_msg
  end
  parts[#parts + 1] = "%5D"
  return wrk.format("POST", path, headers, table.concat(parts))
end

function response(status, hdrs, body)
  if status ~= 200 or body:sub(1, 11) ~= '{"code":200' or not body:find('"fail":[]', -12, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get("bad") or 0) end
  io.write(string.format("answers other than code 200 with every msgId delivered: %d\n", total))
end
