-- One case per rule of src/core/cms_rules.c: each bad value gets code 414 and a
-- desc that starts with the offending parameter or path.
local helpers = require("helpers")
local json = helpers.json

local function msgs(...) return json.encode({...}) end
local function text_msg(over)
  local m = {msgId = helpers.msgid(), msgType = 0, attach = "hello"}
  for k, v in pairs(over or {}) do m[k] = v end
  return m
end
local function list_of(n, f)
  local t = {}
  for i = 1, n do t[i] = f(i) end
  return t
end
local IMAGE = {md5 = "d41d8cd98f00b204e9800998ecf8427e", url = "https://x/a.jpg", ext = "jpg",
               w = 10, h = 20, size = 300}
local function with(t, k, v)
  local c = {}
  for kk, vv in pairs(t) do c[kk] = vv end
  c[k] = v
  return c
end

-- rule: the name in the rules table; form: keys that replace the good form's;
-- path: what desc must start with.
local cases = {
  {rule = "roomid", what = "missing", form = {roomid = helpers.NULL}, path = "roomid"},
  {rule = "roomid", what = "zero", form = {roomid = "0"}, path = "roomid"},
  {rule = "roomid", what = "negative", form = {roomid = "-5"}, path = "roomid"},
  {rule = "roomid", what = "not a number", form = {roomid = "12a"}, path = "roomid"},
  {rule = "roomid", what = "over 64 bits", form = {roomid = "99999999999999999999"}, path = "roomid"},
  {rule = "msgList", what = "missing", form = {msgList = helpers.NULL}, path = "msgList"},
  {rule = "msgList", what = "not JSON", form = {msgList = "[{\"msgId\":"}, path = "msgList"},
  {rule = "msgList", what = "JSON with trailing garbage", form = {msgList = "[] x"}, path = "msgList"},
  {rule = "msgList", what = "not an array", form = {msgList = "{\"msgId\":\"a\"}"}, path = "msgList"},
  {rule = "msgList", what = "empty", form = {msgList = "[]"}, path = "msgList"},
  {rule = "msgList", what = "11 messages", form = {msgList = list_of(11, function() return text_msg() end)},
   path = "msgList"},
  {rule = "msgList", what = "an entry not an object", form = {msgList = "[1]"}, path = "msgList%[1%]"},
  {rule = "fromAccid", what = "missing", form = {fromAccid = helpers.NULL}, path = "fromAccid"},
  {rule = "fromAccid", what = "empty", form = {fromAccid = ""}, path = "fromAccid"},
  {rule = "fromAccid", what = "a space", form = {fromAccid = "al ice"}, path = "fromAccid"},
  {rule = "fromAccid", what = "33 characters", form = {fromAccid = ("a"):rep(33)}, path = "fromAccid"},
  {rule = "toAccids", what = "missing", form = {toAccids = helpers.NULL}, path = "toAccids"},
  {rule = "toAccids", what = "not JSON", form = {toAccids = "[bob]"}, path = "toAccids"},
  {rule = "toAccids", what = "not an array", form = {toAccids = "\"bob\""}, path = "toAccids"},
  {rule = "toAccids", what = "empty", form = {toAccids = "[]"}, path = "toAccids"},
  {rule = "toAccids", what = "101 accids", form = {toAccids = list_of(101, function(i) return "u" .. i end)},
   path = "toAccids"},
  {rule = "toAccids", what = "a number inside", form = {toAccids = "[\"bob\",5]"}, path = "toAccids%[2%]"},
  {rule = "toAccids", what = "a bad accid at 3", form = {toAccids = {"bob", "carol", "d/e"}},
   path = "toAccids%[3%]"},
  {rule = "toAccids", what = "an accid of 33 characters", form = {toAccids = {("b"):rep(33)}},
   path = "toAccids%[1%]"},
  {rule = "route", what = "2", form = {route = "2"}, path = "route"},
  {rule = "route", what = "yes", form = {route = "yes"}, path = "route"},
  {rule = "useYidun", what = "not an integer", form = {useYidun = "1.5"}, path = "useYidun"},
  {rule = "yidunAntiCheating", what = "not JSON", form = {yidunAntiCheating = "{a:1}"},
   path = "yidunAntiCheating"},
  {rule = "yidunAntiCheating", what = "1025 characters",
   form = {yidunAntiCheating = json.encode(("x"):rep(1023))}, path = "yidunAntiCheating"},
  {rule = "yidunAntiSpamExt", what = "not JSON", form = {yidunAntiSpamExt = "nope"},
   path = "yidunAntiSpamExt"},
  {rule = "yidunAntiSpamExt", what = "1025 characters",
   form = {yidunAntiSpamExt = json.encode(("x"):rep(1023))}, path = "yidunAntiSpamExt"},
  {rule = "bid", what = "invalid UTF-8", form = {bid = "b\255d"}, path = "bid"},
  {rule = "antispam", what = "yes", form = {antispam = "yes"}, path = "antispam"},
  {rule = "antispam", what = "TRUE (case matters)", form = {antispam = "TRUE"}, path = "antispam"},
  {rule = "antispamCustom", what = "without antispam=true",
   form = {antispamCustom = "{\"type\":1,\"data\":\"x\"}"}, path = "antispamCustom"},
  {rule = "antispamCustom", what = "not JSON", form = {antispam = "true", antispamCustom = "{type:1}"},
   path = "antispamCustom"},
  {rule = "antispamCustom", what = "type 4", form = {antispam = "true",
   antispamCustom = "{\"type\":4,\"data\":\"x\"}"}, path = "antispamCustom%.type"},
  {rule = "antispamCustom", what = "data not a string", form = {antispam = "true",
   antispamCustom = "{\"type\":1,\"data\":5}"}, path = "antispamCustom%.data"},
  {rule = "antispamCustom", what = "5001 characters", form = {antispam = "true",
   antispamCustom = json.encode({type = 1, data = ("x"):rep(4990)})}, path = "antispamCustom"},
  {rule = "env", what = "33 characters", form = {env = ("e"):rep(33)}, path = "env"},
  -- the fields of one message
  {rule = "msgId", what = "missing", form = {msgList = msgs(text_msg({msgId = json.null}))},
   path = "msgList%[1%]%.msgId"},
  {rule = "msgId", what = "empty", form = {msgList = msgs(text_msg({msgId = ""}))},
   path = "msgList%[1%]%.msgId"},
  {rule = "msgId", what = "a number", form = {msgList = msgs(text_msg({msgId = 7}))},
   path = "msgList%[1%]%.msgId"},
  {rule = "msgId", what = "repeated in the list",
   form = {msgList = msgs(text_msg({msgId = "same"}), text_msg({msgId = "same"}))},
   path = "msgList%[2%]%.msgId"},
  {rule = "msgType", what = "missing", form = {msgList = msgs(text_msg({msgType = json.null}))},
   path = "msgList%[1%]%.msgType"},
  {rule = "msgType", what = "5 (not a type)", form = {msgList = msgs(text_msg(), text_msg({msgType = 5}))},
   path = "msgList%[2%]%.msgType"},
  {rule = "msgType", what = "a string", form = {msgList = msgs(text_msg(), text_msg({msgType = "0"}))},
   path = "msgList%[2%]%.msgType"},
  {rule = "msgType", what = "a fraction", form = {msgList = msgs(text_msg({msgType = 0.5}))},
   path = "msgList%[1%]%.msgType"},
  {rule = "attach", what = "missing from an image (optional only for text, tip and custom)",
   form = {msgList = msgs({msgId = "i1", msgType = 1})}, path = "msgList%[1%]%.attach"},
  {rule = "attach", what = "empty", form = {msgList = msgs(text_msg({attach = ""}))},
   path = "msgList%[1%]%.attach"},
  {rule = "attach", what = "4097 characters", form = {msgList = msgs(text_msg({attach = ("a"):rep(4097)}))},
   path = "msgList%[1%]%.attach"},
  {rule = "attach", what = "2049 emoji (4098 UTF-16 units)",
   form = {msgList = msgs(text_msg({attach = helpers.utf8(0x1F600):rep(2049)}))}, path = "msgList%[1%]%.attach"},
  {rule = "attach", what = "an object instead of a string",
   form = {msgList = msgs(text_msg({attach = {msg = "hi"}}))}, path = "msgList%[1%]%.attach"},
  {rule = "attach", what = "image attach not JSON",
   form = {msgList = msgs({msgId = "i1", msgType = 1, attach = "pic.jpg"})}, path = "msgList%[1%]%.attach"},
  {rule = "attach", what = "image attach a JSON array",
   form = {msgList = msgs({msgId = "i1", msgType = 1, attach = "[1]"})}, path = "msgList%[1%]%.attach"},
  {rule = "attach", what = "image without md5",
   form = {msgList = msgs({msgId = "i1", msgType = 1, attach = json.encode(with(IMAGE, "md5", nil))})},
   path = "msgList%[1%]%.attach%.md5"},
  {rule = "attach", what = "image w a string",
   form = {msgList = msgs({msgId = "i1", msgType = 1, attach = json.encode(with(IMAGE, "w", "10"))})},
   path = "msgList%[1%]%.attach%.w"},
  {rule = "attach", what = "audio without dur",
   form = {msgList = msgs({msgId = "a1", msgType = 2,
                           attach = json.encode({md5 = "m", url = "u", ext = "aac", size = 1})})},
   path = "msgList%[1%]%.attach%.dur"},
  {rule = "attach", what = "video size a fraction",
   form = {msgList = msgs({msgId = "v1", msgType = 3, attach = json.encode({dur = 1, md5 = "m",
           url = "u", w = 1, h = 1, ext = "mp4", size = 1.5})})}, path = "msgList%[1%]%.attach%.size"},
  {rule = "attach", what = "location lng a string",
   form = {msgList = msgs({msgId = "l1", msgType = 4,
                           attach = json.encode({title = "t", lng = "1.5", lat = 2.5})})},
   path = "msgList%[1%]%.attach%.lng"},
  {rule = "attach", what = "file without name",
   form = {msgList = msgs({msgId = "f1", msgType = 6,
                           attach = json.encode({md5 = "m", url = "u", ext = "pdf", size = 1})})},
   path = "msgList%[1%]%.attach%.name"},
  {rule = "attach", what = "custom attach not JSON",
   form = {msgList = msgs({msgId = "c1", msgType = 100, attach = "{oops"})}, path = "msgList%[1%]%.attach"},
  {rule = "ext", what = "not JSON", form = {msgList = msgs(text_msg({ext = "{bad"}))},
   path = "msgList%[1%]%.ext"},
  {rule = "ext", what = "a JSON object instead of JSON text",
   form = {msgList = msgs(text_msg({ext = {k = 1}}))}, path = "msgList%[1%]%.ext"},
  {rule = "ext", what = "4097 characters",
   form = {msgList = msgs(text_msg({ext = json.encode(("x"):rep(4095))}))}, path = "msgList%[1%]%.ext"},
  {rule = "subType", what = "0", form = {msgList = msgs(text_msg({subType = 0}))},
   path = "msgList%[1%]%.subType"},
  {rule = "subType", what = "a string", form = {msgList = msgs(text_msg({subType = "3"}))},
   path = "msgList%[1%]%.subType"},
  {rule = "resendFlag", what = "2", form = {msgList = msgs(text_msg({resendFlag = 2}))},
   path = "msgList%[1%]%.resendFlag"},
  {rule = "resendFlag", what = "a string", form = {msgList = msgs(text_msg(), text_msg({resendFlag = "1"}))},
   path = "msgList%[2%]%.resendFlag"},
}

-- the rule names of both tables, read from the C source the emulator is built from
local function rule_names()
  local f = assert(io.open("src/core/cms_rules.c"))
  local src = f:read("*a")
  f:close()
  local names = {}
  for _, tbl in ipairs({"cms_param_rules", "cms_msg_rules"}) do
    local body = assert(src:match("const cms_rule " .. tbl .. "%[[^%]]*%] = (%b{})"), tbl)
    for name in body:gmatch("RULE%(CMS_[%u_]+, \"([%w_]+)\", CMS_K_") do names[#names + 1] = name end
  end
  return names
end

describe("emulator rules", function()
  local emu
  setup(function() emu = helpers.start_emulator({"--rate-limit", "0"}) end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)

  it("has a case for every rule of cms_rules.c", function()
    local covered = {}
    for _, c in ipairs(cases) do covered[c.rule] = true end
    local names = rule_names()
    assert.is_true(#names >= 18)
    for _, name in ipairs(names) do assert.is_true(covered[name] == true, "no case for " .. name) end
  end)

  for _, c in ipairs(cases) do
    it(c.rule .. ": " .. c.what .. " -> 414 naming " .. c.path:gsub("%%", ""), function()
      local st, j, raw = helpers.signed_post(emu, helpers.good_form(c.form))
      assert.equal(200, st)
      assert.is_table(j, raw)
      assert.equal(414, j.code)
      assert.matches("^" .. c.path .. ": ", j.desc)
      -- nothing was delivered by a rejected call
      assert.same({}, emu:inbox("bob"))
    end)
  end

  it("accepts a call that uses every optional parameter and every msgType", function()
    local list = {
      {msgId = "t0", msgType = 0, attach = "text " .. helpers.utf8(0x1F600), ext = "{\"k\":\"v\"}", subType = 3,
       resendFlag = 0},
      {msgId = "t1", msgType = 1, attach = json.encode(IMAGE)},
      {msgId = "t2", msgType = 2, attach = json.encode({dur = 1000, md5 = "m", url = "u", ext = "aac",
                                                        size = 9})},
      {msgId = "t3", msgType = 3, attach = json.encode({dur = 1, md5 = "m", url = "u", w = 1, h = 2,
                                                        ext = "mp4", size = 3, name = "n"})},
      {msgId = "t4", msgType = 4, attach = json.encode({title = "here", lng = 120.5, lat = 30})},
      {msgId = "t6", msgType = 6, attach = json.encode({name = "f", md5 = "m", url = "u", ext = "pdf",
                                                        size = 3})},
      {msgId = "t10", msgType = 10, attach = "a tip"},
      {msgId = "t100", msgType = 100, attach = "[1,2,3]"},
      {msgId = "t0b", msgType = 0, attach = helpers.utf8(0x1F600):rep(2048)},
      {msgId = "t0c", msgType = 0, attach = ("a"):rep(4096), ext = json.encode(("x"):rep(4094))},
    }
    local form = helpers.good_form({
      roomid = "9223372036854775807", msgList = list, fromAccid = ("A"):rep(32),
      toAccids = list_of(100, function(i) return "user_" .. i .. "@x.y-z" end),
      route = "0", useYidun = "0", yidunAntiCheating = "{\"a\":1}", yidunAntiSpamExt = "{}",
      bid = "biz-1", antispam = "true", antispamCustom = "{\"type\":1,\"data\":\"check me\"}",
      env = ("e"):rep(32),
    })
    local st, j, raw = helpers.signed_post(emu, form)
    assert.equal(200, st)
    assert.equal(200, j.code, raw)
    assert.equal(10, #j.success)
    assert.same({}, j.fail)
    assert.equal(10, #emu:inbox("USER_100@X.Y-Z"))
  end)
end)
