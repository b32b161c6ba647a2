-- examples/quickstart.lua -- the main job: one call that sends a mixed batch
-- (a text, an image and a custom message) to three members of a chat room,
-- then prints what happened to each message.
--
--   make demo                                  (starts the local emulator for you)
--   COMMSEASE_APPKEY=... COMMSEASE_SECRET=... \
--   COMMSEASE_ENDPOINT=https://api.netease.im/nimserver lua5.4 examples/quickstart.lua
--   (lua5.1..5.3 and luajit run it too)
--
-- Environment:
--   COMMSEASE_APPKEY, COMMSEASE_SECRET   credentials (default: the emulator's
--                                        demo-appkey / demo-secret)
--   COMMSEASE_ENDPOINT                   base URL ending in /nimserver; with the
--                                        demo credentials it is required (the
--                                        emulator's address, which make demo sets)
--   COMMSEASE_ROOMID, COMMSEASE_FROM,    room, sender and comma-separated receivers
--   COMMSEASE_TO                         (default 123456, alice, bob,carol,dave)
--   COMMSEASE_BUILD                      directory of commsease.so (default ../build)
--
-- Exit status: 0 every message was delivered, 1 the call failed (the error is
-- printed), 2 the call worked but the service refused some messages.

local here = (arg and arg[0] or ""):match("^(.*)[/\\][^/\\]*$") or "."
package.cpath = (os.getenv("COMMSEASE_BUILD") or (here .. "/../build")) .. "/?.so;" .. package.cpath
local commsease = require "commsease"

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local appkey = env("COMMSEASE_APPKEY", "demo-appkey")
local secret = env("COMMSEASE_SECRET", "demo-secret")
local endpoint = env("COMMSEASE_ENDPOINT")
if not endpoint and appkey == "demo-appkey" then
  io.stderr:write("quickstart: set COMMSEASE_ENDPOINT (the emulator prints its address), ",
                  "or run `make demo`, which starts the emulator and sets it\n")
  os.exit(1)
end

local to = {}
for accid in env("COMMSEASE_TO", "bob,carol,dave"):gmatch("[^,%s]+") do to[#to + 1] = accid end

-- raises on a bad option (misuse); runtime failures come back as nil, err
local client = commsease.new{
  appkey = appkey,
  secret = secret,
  endpoint = endpoint,   -- nil: the module's default, https://api.netease.im/nimserver
  timeout = 5,           -- seconds for the whole call
}

-- msgIds are the caller's: the answer is keyed by them, and a resend of the same
-- msgId needs resendFlag = 1.  One run, one fresh set.
local run = string.format("%d-%04d", os.time(), math.random(0, 9999))

local res, err = client:send{
  roomid = tonumber(env("COMMSEASE_ROOMID", "123456")),
  fromAccid = env("COMMSEASE_FROM", "alice"),
  toAccids = to,
  msgList = {
    commsease.text("Round 3 starts in 60 seconds. Good luck!", { msgId = "text-" .. run }),
    commsease.image({
      name = "arena-map.png",
      md5 = "9e107d9d372bb6826bd81d3542a419d6",
      url = "https://cdn.example.com/maps/arena-map.png",
      ext = "png", w = 1024, h = 768, size = 183942,
      msgId = "image-" .. run,
    }),
    commsease.custom({ kind = "reward", item = "golden-key", count = 1 },
                     { msgId = "custom-" .. run, ext = { campaign = "spring" } }),
  },
  route = 0,             -- do not sync these to the webhook
}
client:close() -- one call here; a long-lived program keeps its client

if not res then
  -- err prints as "commsease: <kind> [code]: message"; its fields say more
  io.stderr:write(tostring(err), "\n")
  if err.field then io.stderr:write("  field:      ", err.field, "\n") end
  io.stderr:write("  retryable:  ", tostring(err.retryable),
                  "   sent: ", tostring(err.sent), "\n")
  if err.request_id then io.stderr:write("  request_id: ", err.request_id, "\n") end
  if err.endpoint then io.stderr:write("  endpoint:   ", err.endpoint, "\n") end
  os.exit(1, true)
end

print(string.format("sent %d messages to %s (request %s)", #res.msgIds, table.concat(to, ", "),
                    res.request_id or "?"))
local failed = 0
for i, id in ipairs(res.msgIds) do
  local ok, why = res.success[id], res.fail[id]
  if ok then
    local t = ok.time and os.date("!%Y-%m-%d %H:%M:%S", math.floor(ok.time / 1000)) or "?"
    print(string.format("  %d. %-24s delivered at %s UTC (time %s)", i, id, t, tostring(ok.time)))
  elseif why then
    failed = failed + 1
    print(string.format("  %d. %-24s FAILED: %s", i, id, why))
  else
    failed = failed + 1
    print(string.format("  %d. %-24s no outcome in the answer", i, id))
  end
end
os.exit(failed == 0 and 0 or 2, true)
