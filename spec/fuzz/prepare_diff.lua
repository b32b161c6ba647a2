-- spec/fuzz/prepare_diff.lua -- a differential fuzzer of client:prepare: the same
-- random params tables through the module built for Lua 5.4 (build/, where
-- toAccids and msgList are walked with lua_next) and for LuaJIT (build-jit/, where
-- OpenResty's table.nkeys counts toAccids and msgList, which are then read by index).
-- Both must agree on every case: success or failure, err.kind, err.field and
-- err.message, and the body and msgIds (a generated UUID masked; the signature
-- headers are not compared). No metamethod of the params may run on either.
--
--   lua5.4 spec/fuzz/prepare_diff.lua [cases [seed]]       # default 200000 cases, seed 1
--   make fuzz-prepare FUZZ_CASES=500000 FUZZ_SEED=7
--   lua5.4 spec/fuzz/prepare_diff.lua --show 1234 [seed]    # case 1234 as Lua source
--
-- Cases come from a PRNG written here (Lua 5.4's and LuaJIT's math.random differ), so
-- case i is the same table on both runtimes; each runtime runs as a worker
-- (--worker BUILD CASES SEED) that writes one line a case, and this driver compares
-- the two files. Ends non-zero on any difference, printing the first few cases.
-- Tables meant for the JSON writer have at most one key, so that both runtimes'
-- key orders give the same text; a table has at most one key that names no field,
-- so that the one named is the same under either order.

local LUA = os.getenv("LUA") or "lua5.4"
local LUAJIT = os.getenv("LUAJIT") or "luajit"
local BUILD = os.getenv("COMMSEASE_BUILD") or "build"
local JIT_BUILD = os.getenv("COMMSEASE_JIT_BUILD") or "build-jit"
local SELF = arg and arg[0] or "spec/fuzz/prepare_diff.lua"

local toint = rawget(math, "tointeger") -- Lua 5.3+: integers are a subtype
local jit = rawget(_G, "jit")

-- Park-Miller minimal standard (16807 x mod 2^31 - 1): exact in doubles and in
-- 64-bit integers alike, so both runtimes draw the same numbers
local state = 1
local function seed_case(seed, i)
  state = (seed * 1000003 + i * 7919) % 2147483646 + 1
  for _ = 1, 3 do state = state * 16807 % 2147483647 end
end
local function rnd(n) -- 1..n
  state = state * 16807 % 2147483647
  return state % n + 1
end
local function chance(p) return rnd(1000) <= p * 1000 end
local function pick(t) return t[rnd(#t)] end
local function int(v) return toint and toint(v) or v end -- an integer where there are any

local ACCID = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-@"
local function accid_chars(n)
  local t = {}
  for i = 1, n do
    local k = rnd(#ACCID)
    t[i] = ACCID:sub(k, k)
  end
  return table.concat(t)
end

-- text of n pieces: ASCII, good UTF-8 of 2 to 4 bytes, and now and then a byte
-- sequence that Table 3-7 refuses, a NUL, a control byte, a quote or a backslash
local GOOD = {"a", "Z", " ", "0", "~", "%", "&", "=", "+", "\194\169", "\223\191", "\224\160\128",
              "\239\191\191", "\237\159\191", "\238\128\128", "\240\144\128\128", "\244\143\191\191",
              "\243\191\191\191", "\228\184\173", "\240\159\152\128"}
local BAD = {"\192\128", "\193\191", "\224\128\128", "\224\159\191", "\237\160\128", "\237\191\191",
             "\240\128\128\128", "\240\143\191\191", "\244\144\128\128", "\245\128\128\128", "\255",
             "\128", "\191", "\194", "\224\160", "\240\144\128", "\195\40", "\226\130\40",
             "\248\136\128\128\128", "\252\132\128\128\128\128"}
local ODD = {"\0", "\1", "\31", "\127", "\"", "\\", "\n", "\t"}
local function text(n, bad_p)
  local t = {}
  for i = 1, n do
    local r = rnd(1000)
    if r <= bad_p * 1000 then t[i] = pick(BAD)
    elseif r <= 960 then t[i] = pick(GOOD)
    else t[i] = pick(ODD) end
  end
  return table.concat(t)
end
-- a text whose UTF-16 length is about the limit: ASCII, then a character of 1 or 2 units
local function near_limit(limit)
  local n = limit - 3 + rnd(5) -- limit-2 .. limit+2
  local tail = pick{"", "\228\184\173", "\240\159\152\128", "\240\159\152\128a", "\255"}
  return string.rep("x", n - (#tail > 0 and 1 or 0)) .. tail
end

-- numbers of every kind (integers and floats on 5.3+; doubles on LuaJIT)
local function any_number()
  return pick{int(0), int(1), int(-1), int(7), int(100), 0.0, -0.0, 1.5, -2.25, 0 / 0, -(0 / 0), 1 / 0,
              -1 / 0, 2 ^ 53, 2 ^ 53 + 2, 2 ^ 60, 2 ^ 63, -2 ^ 63, 1e100, 1e-7, 12345678901234.0,
              int(2 ^ 31), int(-(2 ^ 31)), toint and toint(2 ^ 62) or 2 ^ 62, 3.0, 100.0}
end
-- a number that means the same to both runtimes where an integer is read (below 2^53)
local function small_number()
  return pick{int(0), int(1), int(-1), int(2), int(3), int(4), int(6), int(10), int(100), 1.0, 0.0, 1.5,
              -3.0, 100.0, 2 ^ 53, 2 ^ 60, 0 / 0, 1 / 0, int(5), int(99), int(2 ^ 40)}
end

-- metatables that must never run: each notes that it ran
local ran = {}
local function trap(name)
  return function(...)
    ran[#ran + 1] = name
    return ...
  end
end
local function hostile_mt(fallback)
  return {__index = function(_, k)
            ran[#ran + 1] = "__index"
            return fallback and fallback[k]
          end,
          __newindex = trap("__newindex"), __len = function() ran[#ran + 1] = "__len"; return 3 end,
          __pairs = function(t) ran[#ran + 1] = "__pairs"; return next, t, nil end,
          __ipairs = trap("__ipairs"), __tostring = function() ran[#ran + 1] = "__tostring"; return "x" end,
          __concat = function() ran[#ran + 1] = "__concat"; return "p1" end,
          __eq = trap("__eq"), __call = trap("__call")}
end

-- any value but a string; numbers where an integer is read keep below 2^53 unless
-- big is set (5.4's integers past 2^53 are exact, LuaJIT's doubles are not)
local function other_value(big)
  local r = rnd(9)
  if r == 1 then return true
  elseif r == 2 then return false
  elseif r == 3 then return {}
  elseif r == 4 then return setmetatable({}, hostile_mt())
  elseif r == 5 then return print -- a C function
  elseif r == 6 then return function() end
  elseif r == 7 then return io.stdout -- a userdata
  elseif r == 8 then return coroutine.create(function() end)
  end
  return big and any_number() or small_number()
end

local function accid_value()
  local r = rnd(100)
  if r <= 55 then return accid_chars(rnd(8)) end
  if r <= 60 then return accid_chars(31 + rnd(3)) end -- 32, 33, 34: the limit
  if r <= 66 then -- what a number looks like as text, or a string made like one
    return pick{"12", "-5", "nan", "inf", "-inf", ".5", "1e5", "0x10", "+1", "1.5", "N1", "I2", "0",
                "-nan", "1e+100", "9007199254740992", "-0"}
  end
  if r <= 74 then -- a byte no accid holds: the separator first of all
    local s = accid_chars(rnd(6))
    local at = rnd(#s + 1)
    return s:sub(1, at - 1) .. pick{",", ",", ",,", "\0", " ", "!", "%", "\"", "\\", "\255", "\194\169",
                                    "/", "+", "#", "&", "=", "\n"} .. s:sub(at)
  end
  if r <= 77 then return "" end
  if r <= 79 then return string.rep("a", pick{64, 100, 1000, 5000}) end
  if r <= 80 then return pick{",", ",,", "a,", ",a", "a,b"} end
  return other_value(true)
end

local function list_of(n, f)
  local t = {}
  for i = 1, n do t[i] = f(i) end
  return t
end

-- a key beside 1..n, or a hole, now and then; a metatable that must not run
local function mess_up(t, n, value)
  local r = rnd(100)
  if r <= 8 and n > 0 then
    t[rnd(n)] = nil
  elseif r <= 11 then
    t[0] = value()
  elseif r <= 13 then
    t["2"] = value()
  elseif r <= 15 then
    t[2.5] = value()
  elseif r <= 17 then
    t[n + 2] = value()
  elseif r <= 18 then
    t[-1] = value()
  elseif r <= 19 then
    t.x = value()
  elseif r <= 20 then
    t[true] = value()
  elseif r <= 22 and n > 1 then -- a hole plus a key, so that a count of keys equals #t
    t[rnd(n)] = nil
    t[pick{0, "x", n + 5}] = value()
  elseif r <= 23 and n > 0 then
    t[n] = nil
  end
  if chance(0.06) then setmetatable(t, hostile_mt(chance(0.5) and {"p1", "p2", "p3"} or nil)) end
  return t
end

local function to_accids(bad_p)
  local r = rnd(100)
  if r <= 2 * bad_p then return pick{"p1", 5, true} end
  local n
  if r <= 4 * bad_p then n = 0
  elseif r <= 12 then n = 98 + rnd(5) -- 99..103
  elseif r <= 12 + 2 * bad_p then n = 100 + rnd(60)
  else n = rnd(12) end
  local clean = not chance(bad_p * 0.55) -- all good strings: the counted path writes them
  local t = list_of(n, function()
    if clean then return chance(0.1) and accid_chars(32) or accid_chars(rnd(10)) end
    if chance(0.85) then return accid_chars(rnd(10)) end
    return accid_value()
  end)
  if not clean or chance(0.2 * bad_p) then mess_up(t, n, accid_value) end
  return t
end

local TYPES = {int(0), int(1), int(2), int(3), int(4), int(6), int(10), int(100), "text", "image", "audio",
               "video", "location", "file", "tip", "custom"}
local function json_text()
  local r = rnd(14)
  if r == 1 then return '{"a":1}'
  elseif r == 2 then return "[1,2,3]"
  elseif r == 3 then return '"' .. text(rnd(20), 0) :gsub('[%c"\\]', "") .. '"'
  elseif r == 4 then return "null"
  elseif r == 5 then return '{"k":"' .. text(rnd(30), 0.3) .. '"}' -- maybe bad UTF-8, NUL, quotes
  elseif r == 6 then return "{" -- not JSON
  elseif r == 7 then return '{"a":1,}'
  elseif r == 8 then return ""
  elseif r == 9 then return '  {"b":[true,false,null,1.5e3,-0]}  '
  elseif r == 10 then return '{"k":"' .. near_limit(4096) .. '"}'
  elseif r == 11 then return '{"u":"\\u00e9\\ud83d\\ude00"}'
  elseif r == 12 then return "\239\187\191{}" -- a BOM
  elseif r == 13 then return '{"k":"\237\160\128"}' -- a surrogate in UTF-8
  end
  return "12"
end
local function one_key_table()
  local r = rnd(6)
  if r == 1 then return {} end
  if r == 2 then return {k = text(rnd(12), 0.1)} end
  if r == 3 then return {n = small_number()} end
  if r == 4 then return {list_of(rnd(3), function() return int(rnd(9)) end)} end
  if r == 5 then return {k = print} end -- no JSON value
  return {t = {u = true}}
end
local IMAGE = '{"url":"https://cdn.example/x.jpg","md5":"0123","ext":"jpg","w":64,"h":64,"size":2048}'
local function attach_for(ty)
  local r = rnd(100)
  if r <= 4 then return nil end
  if r <= 8 then return other_value() end
  if r <= 12 then return one_key_table() end
  if ty == "image" or ty == int(1) then
    if r <= 60 then return IMAGE end
    if r <= 70 then return (IMAGE:gsub('"w":64', '"w":"64"')) end
    if r <= 75 then return {url = "u"} end -- a single key: missing fields named in rule order
  end
  if ty == "location" or ty == int(4) then
    if r <= 60 then return '{"title":"t","lng":1.5,"lat":-2}' end
  end
  if r <= 30 then return json_text() end
  if r <= 36 then return near_limit(4096) end
  if r <= 40 then return "" end
  return text(rnd(40), chance(0.2) and 0.05 or 0)
end

local GOOD_ATTACH = {
  [int(1)] = IMAGE, image = IMAGE,
  [int(2)] = '{"dur":1,"md5":"m","url":"u","ext":"aac","size":1}',
  [int(3)] = '{"dur":1,"md5":"m","url":"u","w":1,"h":1,"ext":"mp4","size":1}',
  [int(4)] = '{"title":"t","lng":1.5,"lat":-2}',
  [int(6)] = '{"name":"n","md5":"m","url":"u","ext":"txt","size":1}',
}
GOOD_ATTACH.audio, GOOD_ATTACH.video = GOOD_ATTACH[int(2)], GOOD_ATTACH[int(3)]
GOOD_ATTACH.location, GOOD_ATTACH.file = GOOD_ATTACH[int(4)], GOOD_ATTACH[int(6)]

-- a message the rules accept: text of any good UTF-8 (a NUL or a quote included)
local function good_message(i)
  local ty = pick(TYPES)
  local m = {msgId = "m" .. i .. "-" .. rnd(1000), msgType = ty}
  if GOOD_ATTACH[ty] then
    m.attach = GOOD_ATTACH[ty]
  elseif ty == "custom" or ty == int(100) then
    m.attach = chance(0.5) and '{"a":1}' or one_key_table()
    if type(m.attach) == "table" and m.attach.k == print then m.attach = {} end
  elseif chance(0.95) then
    m.attach = chance(0.03) and near_limit(4096) or text(rnd(40), 0)
  end
  if chance(0.2) then m.ext = chance(0.5) and '{"e":"' .. rnd(99) .. '"}' or {e = text(rnd(9), 0)} end
  if chance(0.1) then m.subType = int(rnd(5)) end
  if chance(0.1) then m.resendFlag = pick{int(0), int(1), true, false} end
  return m
end

-- one field of a message made wrong, or odd but maybe right
local odd_key = setmetatable({}, {__mode = "k"})
local function spoil(m, i, used_ids)
  local r = rnd(8)
  if r == 1 then
    local id = rnd(100)
    if id <= 35 then m.msgId = used_ids[1] or "m1" -- a duplicate, maybe
    elseif id <= 45 then m.msgId = ""
    elseif id <= 60 then m.msgId = other_value()
    elseif id <= 75 then m.msgId = text(rnd(10), 0.3)
    elseif id <= 90 then m.msgId = string.rep("i", pick{127, 128, 129, 200, 5000})
    else m.msgId = nil end -- a UUID, masked when bodies compare
  elseif r == 2 then
    local t = rnd(100)
    if t <= 40 then m.msgType = pick(TYPES) -- the attach may not fit it any more
    elseif t <= 70 then m.msgType = small_number()
    elseif t <= 85 then m.msgType = pick{"sticker", "TEXT", "", "text\0", "custom "}
    elseif t <= 95 then m.msgType = other_value()
    else m.msgType = nil end
    if chance(0.5) then m.attach = attach_for(m.msgType) end
  elseif r == 3 then
    m.attach = attach_for(m.msgType)
  elseif r == 4 then
    local e = rnd(10)
    m.ext = e <= 6 and json_text() or e <= 8 and one_key_table() or other_value()
  elseif r == 5 then
    m.subType = chance(0.3) and int(rnd(5)) or small_number()
  elseif r == 6 then
    m.resendFlag = pick{int(0), int(1), true, false, int(2), "1", 1.0, 0.5, -0.0, 1 / 0}
  elseif r == 7 and not odd_key[m] then -- one at most: lua_next's order names it
    odd_key[m] = true
    if chance(0.8) then m[pick{"msgid", "attch", "x", "MsgType"}] = int(1) else m[int(1)] = "one" end
  else
    setmetatable(m, hostile_mt({msgType = int(0), attach = "from __index", msgId = "z" .. i}))
    if chance(0.5) then m.msgType = nil end
  end
end

local function message(i, used_ids, bad_p)
  if chance(bad_p / 10) then return pick{"hi", int(5), true, {}} end
  local m = good_message(i)
  while chance(bad_p) do spoil(m, i, used_ids) end
  if type(m.msgId) == "string" then used_ids[#used_ids + 1] = m.msgId end
  return m
end

local function msg_list(bad_p)
  local r = rnd(100)
  if r <= 2 * bad_p then return pick{"m", int(3), true} end
  local n
  if r <= 5 * bad_p then n = 0
  elseif r <= 10 * bad_p then n = 10 + rnd(3) -- 11..13
  elseif chance(0.1) then n = 10
  else n = rnd(4) end
  local used = {}
  local t = list_of(n, function(i) return message(i, used, bad_p) end)
  if chance(bad_p) then mess_up(t, n, function() return message(n + 1, used, bad_p) end) end
  return t
end

-- each case looks hard at one thing: toAccids (the other fields right), msgList,
-- or anything
local function params()
  local p = {}
  local focus = rnd(100)
  local acc_bad = focus <= 50 and 1 or focus <= 85 and 0.1 or 1
  local msg_bad = focus <= 50 and 0 or focus <= 85 and 0.35 or 0.6
  local other_bad = focus <= 85 and 0.01 or 0.1
  p.roomid = not chance(other_bad) and int(42) or pick{"12", "12a", int(0), int(-5), 1.5, 2 ^ 60, nil}
  p.fromAccid = not chance(other_bad) and accid_chars(rnd(12)) or accid_value()
  if not chance(other_bad / 2) then p.toAccids = to_accids(acc_bad) end
  if not chance(other_bad / 2) then p.msgList = msg_list(msg_bad) end
  if chance(0.05) then p.route = pick{int(0), int(1), true, false, int(2), "1"} end
  if chance(0.03) then p.useYidun = pick{int(0), int(1), "0", 1.5} end
  if chance(0.03) then p.env = pick{"prod", "", string.rep("e", 33), text(5, 0.3)} end
  if chance(0.03) then p.bid = text(rnd(8), 0.1) end
  if chance(0.02) then p.yidunAntiCheating = json_text() end
  if chance(0.02) then p.antispam = pick{true, false, int(1)} end
  if chance(0.02) then p.antispamCustom = pick{'{"type":1,"data":"x"}', '{"type":4,"data":"x"}', "[]"} end
  if chance(other_bad * 2) then
    p[pick{"roomId", "to_accids", "msglist"}] = int(1)
  elseif chance(other_bad / 2) then
    p[int(1)] = "x"
  end
  if chance(other_bad * 3) then
    setmetatable(p, hostile_mt({roomid = int(42), fromAccid = "f", toAccids = {"p1"},
                                msgList = {{msgId = "z", msgType = int(0), attach = "hi"}}}))
  end
  return p
end

local function make_case(seed, i)
  seed_case(seed, i)
  return params()
end

-- what a runtime makes of a case, as one line of printable ASCII
local function esc(s)
  return (tostring(s):gsub("\\", "\\\\"):gsub("[^%w%p ]", function(c)
    return string.format("\\%03d", c:byte())
  end))
end
local UUID = "%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x"
local function outcome(client, commsease, p, full)
  ran = {}
  local ok, req, err = pcall(client.prepare, client, p)
  local line
  if not ok then
    line = "RAISE " .. esc(req)
  elseif req then
    local body = req.body:gsub(UUID, "<uuid>")
    local ids = {}
    for k, v in ipairs(req.msgIds) do ids[k] = (v:gsub("^" .. UUID .. "$", "<uuid>")) end
    line = "OK " .. (full and esc(body) or commsease.checksum(body, "", "")) .. " " .. #body .. " " ..
           esc(table.concat(ids, ","))
  else
    line = "ERR " .. esc(err.kind) .. "|" .. esc(err.field) .. "|" .. esc(err.message)
  end
  if #ran > 0 then line = line .. " METAMETHOD-RAN:" .. table.concat(ran, ",") end
  return line
end

local function load_module(build)
  package.cpath = build .. "/?.so;" .. package.cpath
  local commsease = require "commsease"
  local client = commsease.new{appkey = "fuzzkey", secret = "fuzzsecret",
                               endpoint = "http://127.0.0.1:9/nimserver"}
  return commsease, client
end

-- a params table as Lua source (keys sorted; metatables and odd values noted)
local function dump(v, indent)
  indent = indent or ""
  local tv = type(v)
  if tv == "string" then return '"' .. esc(v):gsub('"', '\\"') .. '"' end
  if tv == "number" then
    if v ~= v then return "0/0" end
    if v == 1 / 0 then return "1/0" end
    if v == -1 / 0 then return "-1/0" end
    if toint and math.type(v) == "integer" then return tostring(v) end
    return string.format("%.17g", v) .. (toint and math.type(v) == "float" and "--[[float]]" or "")
  end
  if tv == "boolean" then return tostring(v) end
  if tv ~= "table" then return "nil --[[a " .. tv .. "]]" end
  local keys = {}
  for k in next, v do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) ~= type(b) then return type(a) < type(b) end
    if type(a) == "boolean" then return not a and b end
    return a < b
  end)
  local out = {}
  for _, k in ipairs(keys) do
    local ks = type(k) == "string" and k:match("^[%a_][%w_]*$") and k or "[" .. dump(k) .. "]"
    out[#out + 1] = indent .. "  " .. ks .. " = " .. dump(rawget(v, k), indent .. "  ") .. ","
  end
  local mt = getmetatable(v) and " --[[with a hostile metatable]]" or ""
  return "{" .. mt .. "\n" .. table.concat(out, "\n") .. "\n" .. indent .. "}"
end

local function worker(build, cases, seed, out)
  local commsease, client = load_module(build)
  local f = assert(io.open(out, "w"))
  -- which paths the module takes: on OpenResty's LuaJIT one prepare calls
  -- table.nkeys for msgList and for toAccids
  local has_nkeys, nkeys = pcall(require, "table.nkeys")
  local calls = 0
  if has_nkeys then
    debug.sethook(function()
      local fn = debug.getinfo(2, "f").func
      if fn == nkeys then calls = calls + 1 end
    end, "c")
    client:prepare{roomid = int(1), fromAccid = "f", toAccids = {"a", "b"},
                   msgList = {{msgId = "m", msgType = int(0), attach = "hi"}}}
    debug.sethook()
  end
  local paths = calls >= 2 and "counted" or "walk"
  f:write(string.format("# %s %s paths (%d calls of table.nkeys in a prepare)\n",
                        jit and jit.version or _VERSION, paths, calls))
  for i = 1, cases do
    f:write(i, " ", outcome(client, commsease, make_case(seed, i)), "\n")
    if i % 1000 == 0 then collectgarbage("step", 200) end
  end
  f:close()
  client:close()
end

local function show(build, i, seed)
  local commsease, client = load_module(build)
  print((jit and jit.version or _VERSION) .. ": " .. outcome(client, commsease, make_case(seed, i), true))
end

local function sh(cmd)
  local ok, how, code = os.execute(cmd)
  return ok == true or ok == 0, how, code
end

local function driver(cases, seed)
  local dir = os.getenv("FUZZ_OUT") or BUILD
  local a, b = dir .. "/prepare_diff.lua54.txt", dir .. "/prepare_diff.jit.txt"
  local q = function(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
  local function run(lua, build, out)
    local t0 = os.time()
    local cmd = table.concat({lua, q(SELF), "--worker", q(build), cases, seed, q(out)}, " ")
    assert(sh(cmd), "worker failed: " .. cmd)
    return os.time() - t0
  end
  local ta = run(LUA, BUILD, a)
  local tb = run(LUAJIT, JIT_BUILD, b)
  local fa, fb = assert(io.open(a)), assert(io.open(b))
  local ha, hb = fa:read("*l"), fb:read("*l")
  print(ha .. " (" .. ta .. " s)")
  print(hb .. " (" .. tb .. " s)")
  assert(hb:find("counted", 1, true), "LuaJIT has no table.nkeys: the new paths did not run")
  local counts, diffs, mm = {OK = 0, ERR = 0, RAISE = 0}, {}, 0
  local fields = {}
  for i = 1, cases do
    local la, lb = fa:read("*l"), fb:read("*l")
    assert(la and lb, "a worker stopped early at case " .. i)
    local kind = la:match("^%d+ (%u+)")
    counts[kind] = (counts[kind] or 0) + 1
    if kind == "ERR" then
      local field = la:match("^%d+ ERR [^|]*|([^|]*)|"):gsub("%[%d+%]", "[i]")
      fields[field] = (fields[field] or 0) + 1
    end
    if la:find("METAMETHOD-RAN", 1, true) or lb:find("METAMETHOD-RAN", 1, true) then mm = mm + 1 end
    if la ~= lb or la:find("METAMETHOD-RAN", 1, true) or kind == "RAISE" then
      diffs[#diffs + 1] = i
      if #diffs <= 5 then
        print("\n== case " .. i .. " (seed " .. seed .. ")")
        print("  5.4:    " .. la:sub(1, 600))
        print("  LuaJIT: " .. lb:sub(1, 600))
      end
    end
  end
  fa:close()
  fb:close()
  print(string.format("\n%d cases: %d prepared, %d refused (nil, err), %d raised; %d differ; " ..
                      "%d ran a metamethod", cases, counts.OK, counts.ERR, counts.RAISE, #diffs, mm))
  local names = {}
  for k in pairs(fields) do names[#names + 1] = k end
  table.sort(names, function(x, y) return fields[x] > fields[y] end)
  local top = {}
  for k = 1, math.min(#names, 24) do top[k] = names[k] .. " " .. fields[names[k]] end
  print("refused by field: " .. table.concat(top, ", "))
  if #diffs > 0 then
    print("\nreplay one: " .. LUA .. " " .. SELF .. " --show " .. diffs[1] .. " " .. seed)
    os.exit(1)
  end
end

if arg[1] == "--worker" then
  worker(arg[2], tonumber(arg[3]), tonumber(arg[4]), arg[5])
elseif arg[1] == "--show" then
  local i, seed = tonumber(arg[2]), tonumber(arg[3] or 1)
  print(dump(make_case(seed, i)))
  local q = function(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
  sh(LUA .. " " .. q(SELF) .. " --show-one " .. q(BUILD) .. " " .. i .. " " .. seed)
  sh(LUAJIT .. " " .. q(SELF) .. " --show-one " .. q(JIT_BUILD) .. " " .. i .. " " .. seed)
elseif arg[1] == "--show-one" then
  show(arg[2], tonumber(arg[3]), tonumber(arg[4]))
else
  driver(tonumber(arg[1] or os.getenv("FUZZ_CASES") or 200000),
         tonumber(arg[2] or os.getenv("FUZZ_SEED") or 1))
end
