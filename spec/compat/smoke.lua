-- spec/compat/smoke.lua BUILD_DIR EMULATOR -- the module under Lua 5.1 and LuaJIT
-- (OpenResty's Lua), built from the same sources through lcms_compat.h.  No
-- busted there (the specs use 5.4 syntax): plain asserts, one line per check,
-- and the plain closing line.  Run by `make test-compat`.
local build, emulator = arg[1], arg[2]
package.cpath = build .. "/?.so;" .. package.cpath
local cs = require "commsease"
local cjson = require "cjson"
local passed, failed = 0, 0
local function check(name, ok, detail)
  if ok then passed = passed + 1 else failed = failed + 1 end
  print((ok and "ok   " or "FAIL ") .. name .. (ok and "" or ("  " .. tostring(detail))))
end
local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

check("CheckSum vector", cs.checksum("secret", "12345", "1508481877")
      == "2f45bdd8cc89d97631345e9fcba98184de732ae2")

local c = cs.new{appkey = "demo-appkey", secret = "demo-secret", endpoint = "http://127.0.0.1:9/nimserver"}
local req, err = c:prepare{roomid = 765788, fromAccid = "npc", toAccids = {"p1", "P2"},
  msgList = {cs.text("hi / there", {msgId = "a-1"}),
             cs.image({url = "https://x/y.jpg", md5 = "m", ext = "jpg", w = 64, h = 48, size = 2048},
                      {msgId = "i-1"})}}
check("prepare", req ~= nil, err)
if req then
  local form = {}
  for k, v in req.body:gmatch("([^&=]+)=([^&]*)") do form[k] = unescape(v) end
  local msgs = cjson.decode(form.msgList)
  check("msgList on the wire", msgs[1].msgId == "a-1" and msgs[1].attach == "hi / there"
        and msgs[2].msgType == 1 and cjson.decode(msgs[2].attach).w == 64, form.msgList)
  check("toAccids on the wire", form.toAccids == '["p1","P2"]', form.toAccids)
  check("signature", req.headers.CheckSum == cs.checksum("demo-secret", req.headers.Nonce,
                                                        req.headers.CurTime))
end
local _, e = c:prepare{roomid = 0}
check("invalid error", e and e.kind == "invalid" and e.field == "roomid", e)
check("error tostring", tostring(e):find("^commsease: invalid: ") ~= nil, tostring(e))
local _, e2 = c:prepare{roomid = 1, fromAccid = "a", toAccids = {"b"},
                        msgList = {cs.text(string.rep("x", 4097))}}
check("length rule", e2 and e2.field == "msgList[1].attach", e2)
local res = cs.parse(200, '{"code":200,"success":[{"m1":{"time":"1668566975724","roomId":"72",'
  .. '"type":2}}],"fail":[{"m2":"dup"}]}')
check("parse numeric strings", res and res.success.m1.time == 1668566975724
      and res.success.m1.roomId == 72 and res.fail.m2 == "dup", res)
local calls = cs.chunk{roomid = 1, fromAccid = "a", toAccids = {"a", "b", "A"},
                       msgList = {cs.text("x", {msgId = "m"})}}
check("chunk", calls and #calls == 1 and #calls[1].toAccids == 2
      and calls[1].msgList[1].msgId == "m:1", calls)

-- a real send through the emulator
local p = io.popen("exec sh -c 'echo $$; exec \"$0\" --port 0 --rate-limit 0' " .. emulator)
local pid = p:read("*l")
local line = p:read("*l") or ""
local base = line:match("listening on (%S+)")
check("emulator started", base ~= nil, line)
if base then
  local c2 = cs.new{appkey = "demo-appkey", secret = "demo-secret", endpoint = base}
  local r, se = c2:send{roomid = 5, fromAccid = "npc", toAccids = {"p1"},
                        msgList = {cs.text("hello", {msgId = "s-1"})}}
  check("send", r and r.success["s-1"] and r.success["s-1"].roomId == 5, se)
  local out = c2:send_all({{roomid = 5, fromAccid = "npc", toAccids = {"p2"},
                            msgList = {cs.text("x", {msgId = "s-2"})}}, {roomid = 0}})
  check("send_all", out[1].res and out[2].err and out[2].err.kind == "invalid", out[1].err)
  c2:close()
  c2:close()
end
os.execute("kill " .. pid)
p:close()
c:close()
print(string.format("compat %s: %d passed, %d failed", _VERSION .. (jit and (" " .. jit.version) or ""),
                    passed, failed))
os.exit(failed == 0 and 0 or 1)
