-- How params and messages are read (issue 9): what is checked is exactly what
-- is sent.  Tables are read raw, validation and encoding alike; no metamethod
-- of the caller's data runs; any table graph costs time linear in its size
-- (cycles refused with the field's path, shared references bounded by the
-- field's length limit); a JSON text check covers every byte.
-- Written for every Lua the module supports (no 5.3+ syntax).
local commsease = require "commsease"
local helpers = require "helpers"
local cjson = require "cjson"

local function interpreter()
  local i = 0
  while arg[i - 1] do i = i - 1 end
  return arg[i]
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
local function form_of(body)
  local f = {}
  for k, v in body:gmatch("([^&=]+)=([^&]*)") do f[k] = unescape(v) end
  return f
end

local function base(over)
  local p = {roomid = 42, fromAccid = "npc", toAccids = {"p1", "p2"},
             msgList = {commsease.text("hello", {msgId = "m1"})}}
  for k, v in pairs(over or {}) do p[k] = v end
  return p
end

-- Runs `body` (Lua source that ends by writing one line) in a child
-- interpreter under `timeout`, so that a hang fails the spec instead of
-- stopping the suite.  Returns the line and the seconds it took.
local function in_child(body, budget)
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write("package.cpath = ", ("%q"):format(helpers.build_dir() .. "/?.so;"), " .. package.cpath\n",
          "local commsease = require 'commsease'\n",
          "local client = commsease.new{appkey = 'k', secret = 's', endpoint = 'http://127.0.0.1:9/nimserver'}\n",
          "local function P(over) local p = {roomid = 42, fromAccid = 'npc', toAccids = {'p1'},\n",
          "  msgList = {commsease.text('hi', {msgId = 'm1'})}} for k, v in pairs(over) do p[k] = v end return p end\n",
          "local function show(res, err) if res then io.write('OK\\n') else\n",
          "  io.write(tostring(err.kind), '|', tostring(err.field), '|', tostring(err.message), '\\n') end end\n",
          body, "\n")
  f:close()
  local t0 = helpers.now()
  local p = assert(io.popen("timeout -s KILL " .. budget .. " " .. helpers.shell_quote(interpreter())
                            .. " " .. script .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  os.remove(script)
  return out:match("^[^\n]*"), helpers.now() - t0
end

-- graphs of tables, as Lua source that leaves the graph in `g`
local graphs = {
  self2 = "local g = {}; g[1] = g; g[2] = g",
  self_named = "local g = {a = {}}; g.a.b = g",
  -- a DAG: 2^30 paths through 31 tables
  dag = "local g = {} for _ = 1, 30 do g = {g, g} end",
  -- one table of 2,000 entries referenced 2,000 times
  wide = "local s = {} for i = 1, 2000 do s[i] = i end local g = {} for i = 1, 2000 do g[i] = s end",
}
-- where a JSON-valued table can go, as Lua source of a call on `g`
local places = {
  {"ext of send", "show(client:send(P{msgList = {commsease.text('hi', {ext = g})}}))", "msgList[1].ext"},
  {"custom attach of prepare", "show(client:prepare(P{msgList = {commsease.custom(g)}}))", "msgList[1].attach"},
  {"yidunAntiCheating of prepare", "show(client:prepare(P{yidunAntiCheating = g}))", "yidunAntiCheating"},
  {"antispamCustom of prepare",
   "show(client:prepare(P{antispam = true, antispamCustom = {type = 1, data = 'x', more = g}}))", "antispamCustom",
   "antispamCustom.more[1]"},
  {"ext of chunk", "show(commsease.chunk(P{msgList = {commsease.text('hi', {ext = g})}}))", "msgList[1].ext"},
  {"ext of fanout", "show(client:fanout(P{msgList = {commsease.text('hi', {ext = g})}}))", "msgList[1].ext"},
}

describe("tables of any shape cost time linear in their size (defect 1)", function()
  for _, place in ipairs(places) do
    it("refuses a table that holds itself twice, as " .. place[1] .. ", with the path", function()
      local line, took = in_child(graphs.self2 .. "\n" .. place[2], 12)
      assert.is_truthy(line, "the child printed nothing (hung and was killed?)")
      local kind, field, msg = line:match("^([^|]*)|([^|]*)|(.*)$")
      assert.equal("invalid", kind, line)
      local cycle_path = place[4] or place[3] .. "[1]"
      assert.equal(cycle_path, field, line)
      assert.truthy(msg:find("cycle", 1, true), line)
      assert.truthy(msg:find(cycle_path, 1, true), line)
      assert.truthy(took < 10, "took " .. took .. " s")
    end)
  end

  it("names the path of a cycle through named keys", function()
    local line = in_child(graphs.self_named .. "\n" .. places[1][2], 20)
    assert.truthy(line and line:find("^invalid|msgList%[1%]%.ext%.a%.b|"), line)
  end)

  for _, name in ipairs({"dag", "wide"}) do
    it("refuses a shared-reference graph (" .. name .. ") that would exceed the field's limit, at once", function()
      for _, place in ipairs(places) do
        local line, took = in_child(graphs[name] .. "\n" .. place[2], 12)
        assert.is_truthy(line, place[1] .. ": no answer (hung?)")
        local kind, field, msg = line:match("^([^|]*)|([^|]*)|(.*)$")
        assert.equal("invalid", kind, place[1] .. ": " .. line)
        assert.equal(place[3], field, line)
        assert.truthy(msg:find("characters", 1, true), line)
        assert.truthy(took < 10, place[1] .. " took " .. took .. " s")
      end
    end)
  end

  it("sends shared (acyclic) references that fit, each written out in full", function()
    local c = commsease.new{appkey = "k", secret = "s", endpoint = "http://127.0.0.1:9/nimserver"}
    local s = {a = 1}
    local req, err = c:prepare(base{msgList = {commsease.text("hi", {msgId = "m1", ext = {s, s, {s}}})}})
    assert.is_nil(err)
    local m = cjson.decode(form_of(req.body).msgList)[1]
    assert.equal('[{"a":1},{"a":1},[{"a":1}]]', m.ext)
    c:close()
  end)
end)

describe("a JSON text check covers every byte (defect 5, the request side)", function()
  local client
  setup(function() client = commsease.new{appkey = "k", secret = "s", endpoint = "http://127.0.0.1:9/nimserver"} end)
  teardown(function() client:close() end)
  local IMAGE = '{"url":"u","md5":"m","ext":"jpg","w":1,"h":1,"size":1}'
  -- where JSON text goes: a function of the text -> params, and the field
  local text_places = {
    {function(s) return base{msgList = {commsease.custom(s)}} end, "msgList[1].attach"},
    {function(s) return base{msgList = {commsease.text("hi", {ext = s})}} end, "msgList[1].ext"},
    {function(s) return base{yidunAntiCheating = s} end, "yidunAntiCheating"},
    {function(s) return base{yidunAntiSpamExt = s} end, "yidunAntiSpamExt"},
  }
  local bad = {
    {'{"a":1}\0junk', "a NUL then junk after a value"},
    {'{"a":1}\0', "a NUL at the end"},
    {'[1]\0[2]', "a NUL between two values"},
    {'{"a":"x\0y"}', "a raw NUL inside a string"},
    {'{"a":1} x', "bytes after the value"},
    {'NaN', "NaN"}, {'Infinity', "Infinity"}, {'0x10', "a hex number"}, {'[1,]', "a trailing comma"},
    {'{"a":01}', "a leading zero"}, {'"\1"', "a raw control character"}, {'', "empty text"},
    {'{"a":1', "an object that never closes"}, {'"\\x"', "an unknown escape"},
  }
  for _, place in ipairs(text_places) do
    for _, b in ipairs(bad) do
      it("refuses " .. b[2] .. " as " .. place[2], function()
        local req, err = client:prepare(place[1](b[1]))
        assert.is_nil(req, "sent: " .. (req and req.body or ""))
        assert.equal("invalid", err.kind)
        assert.equal(place[2], err.field)
        assert.truthy(err.message:find("JSON", 1, true), err.message)
      end)
    end
  end
  it("refuses a NUL after the JSON of an image attach and of antispamCustom", function()
    local _, err = client:prepare(base{msgList = {{msgType = 1, attach = IMAGE .. "\0junk"}}})
    assert.equal("msgList[1].attach", err.field)
    _, err = client:prepare(base{antispam = true, antispamCustom = '{"type":1,"data":"x"}\0junk'})
    assert.equal("antispamCustom", err.field)
  end)
  it("still takes JSON text with whitespace around it, byte for byte", function()
    local text = ' \t{"a" : [1, 2.5e-3, "\\u00e9", true, null]}\r\n'
    local req = assert(client:prepare(base{msgList = {commsease.custom(text, {msgId = "c1"})}}))
    assert.equal(text, cjson.decode(form_of(req.body).msgList)[1].attach)
  end)
end)

local IMAGE_FIELDS = {url = "https://cdn.example/x.jpg", md5 = "0123", ext = "jpg", w = 64, h = 48, size = 2048}
local function copy(t) local c = {} for k, v in pairs(t) do c[k] = v end return c end
local function raising() error("a metamethod ran") end

describe("what is checked is what is sent: fields behind __index are not seen (defect 3)", function()
  local client
  setup(function() client = commsease.new{appkey = "k", secret = "s", endpoint = "http://127.0.0.1:9/nimserver"} end)
  teardown(function() client:close() end)

  it("refuses a typed attach whose fields all come from __index (it would go out as {})", function()
    local attach = setmetatable({}, {__index = copy(IMAGE_FIELDS)})
    local req, err = client:prepare(base{msgList = {{msgType = "image", attach = attach}}})
    assert.is_nil(req, req and form_of(req.body).msgList)
    assert.equal("invalid", err.kind)
    assert.equal("msgList[1].attach.md5", err.field)
    assert.truthy(err.message:find("missing", 1, true), err.message)
  end)

  it("refuses a typed attach with one required field behind __index", function()
    local raw = copy(IMAGE_FIELDS)
    raw.url = nil
    local attach = setmetatable(raw, {__index = {url = "https://cdn.example/x.jpg"}})
    local _, err = client:prepare(base{msgList = {{msgType = 1, attach = attach}}})
    assert.equal("msgList[1].attach.url", err.field)
  end)

  it("refuses an antispamCustom whose type and data come from __index", function()
    local custom = setmetatable({}, {__index = {type = 1, data = "x"}})
    local req, err = client:prepare(base{antispam = true, antispamCustom = custom})
    assert.is_nil(req, req and form_of(req.body).antispamCustom)
    assert.equal("antispamCustom.type", err.field)
  end)

  it("does not see antispam = true behind __index of params", function()
    local p = base{antispamCustom = {type = 1, data = "x"}}
    setmetatable(p, {__index = {antispam = true}})
    local _, err = client:prepare(p)
    assert.equal("antispamCustom", err.field)
    assert.truthy(err.message:find("antispam=true", 1, true), err.message)
  end)
end)

describe("bad data never raises, whatever its metatables do (defect 4)", function()
  local client
  setup(function() client = commsease.new{appkey = "k", secret = "s", endpoint = "http://127.0.0.1:9/nimserver"} end)
  teardown(function() client:close() end)

  it("sends an attach whose __index raises, with exactly its raw fields", function()
    local attach = setmetatable(copy(IMAGE_FIELDS), {__index = raising})
    local ok, req, err = pcall(client.prepare, client, base{msgList = {{msgId = "i1", msgType = 1, attach = attach}}})
    assert.is_true(ok, tostring(req))
    assert.is_nil(err)
    local sent = cjson.decode(cjson.decode(form_of(req.body).msgList)[1].attach)
    assert.same(IMAGE_FIELDS, sent)
  end)

  it("gives nil, err for a params table with a raising __index that carries antispamCustom", function()
    local p = setmetatable(base{antispamCustom = {type = 1, data = "x"}}, {__index = raising})
    for _, call in ipairs({function() return client:prepare(p) end, function() return client:send(p) end,
                           function() return commsease.chunk(p) end}) do
      local ok, res, err = pcall(call)
      assert.is_true(ok, tostring(res))
      assert.is_nil(res)
      assert.equal("antispamCustom", err.field)
    end
  end)

  it("gives nil, err from chunk for params and messages whose __index raises", function()
    local ok, res, err = pcall(commsease.chunk, setmetatable({}, {__index = raising}))
    assert.is_true(ok, tostring(res))
    assert.is_nil(res)
    assert.equal("msgList", err.field)
    local msg = setmetatable({msgType = 0, attach = "hi"}, {__index = raising}) -- no msgId: one is made
    local plan
    ok, res, plan = pcall(commsease.chunk, base{msgList = {msg}})
    assert.is_true(ok, tostring(res))
    assert.equal(1, #res, tostring(plan and plan.message))
    assert.equal(1, plan.messages)
  end)
end)

describe("no metamethod of the caller's data runs while it is checked and written", function()
  -- every table of the params carries a metatable whose every event counts
  local events = {"__index", "__newindex", "__len", "__pairs", "__ipairs", "__eq", "__lt", "__le",
                  "__concat", "__call", "__tostring", "__unm", "__add", "__close"}
  local calls = 0
  local poison = {}
  for _, e in ipairs(events) do poison[e] = function() calls = calls + 1 error("metamethod " .. e) end end
  local function poisoned(t, seen)
    seen = seen or {}
    if type(t) ~= "table" or seen[t] then return t end
    seen[t] = true
    for _, v in pairs(t) do poisoned(v, seen) end
    return setmetatable(t, poison)
  end
  local function params()
    return {roomid = 42, fromAccid = "npc", toAccids = {"p1", "p2"}, route = 0, env = "dev",
            yidunAntiCheating = {app = {id = "a"}}, yidunAntiSpamExt = {k = {1, 2}},
            antispam = true, antispamCustom = {type = 1, data = "d"},
            msgList = {{msgId = "t1", msgType = 0, attach = "hi", ext = {a = {b = {1, 2}}}},
                       {msgId = "i1", msgType = 1, attach = copy(IMAGE_FIELDS)},
                       {msgId = "c1", msgType = 100, attach = {kind = "reward", list = {{x = 1}}}}}}
  end
  local emu, client
  setup(function()
    emu = helpers.start_emulator({"--rate-limit", "0"})
    client = helpers.client_for(emu)
  end)
  teardown(function()
    client:close()
    emu:stop()
  end)
  before_each(function() calls = 0 end)

  it("prepare writes the same body with and without the metatables, running none", function()
    local plain = assert(client:prepare(params()))
    local ok, req, err = pcall(client.prepare, client, poisoned(params()))
    assert.is_true(ok, tostring(req))
    assert.is_nil(err)
    assert.equal(0, calls)
    assert.equal(plain.body, req.body)
  end)

  it("send and chunk run none either", function()
    local ok, res, err = pcall(client.send, client, poisoned(params()))
    assert.is_true(ok, tostring(res))
    assert.is_nil(err)
    assert.is_table(res.success.t1)
    local plan
    ok, res, plan = pcall(commsease.chunk, poisoned(params()))
    assert.is_true(ok, tostring(res))
    assert.is_table(res, tostring(plan and plan.message))
    assert.equal(3, plan.messages)
    assert.equal(0, calls)
  end)
end)

describe("a NUL character is no text of the API, in the module and in the emulator", function()
  local client, emu
  setup(function()
    client = commsease.new{appkey = "k", secret = "s", endpoint = "http://127.0.0.1:9/nimserver"}
    emu = helpers.start_emulator({"--rate-limit", "0"})
  end)
  teardown(function()
    client:close()
    emu:stop()
  end)
  local cases = {
    {base{msgList = {commsease.text("a\0b")}}, "msgList[1].attach"},
    {base{msgList = {commsease.text("hi", {msgId = "m\0x"})}}, "msgList[1].msgId"},
    {base{bid = "b\0"}, "bid"},
    {base{env = "dev\0x"}, "env"},
  }
  for _, c in ipairs(cases) do
    it("the module refuses a NUL in " .. c[2], function()
      local req, err = client:prepare(c[1])
      assert.is_nil(req)
      assert.equal(c[2], err.field)
      assert.truthy(err.message:find("NUL", 1, true), err.message)
    end)
  end
  it("a NUL inside a table's string is written escaped, which is no NUL in the text", function()
    local req = assert(client:prepare(base{msgList = {commsease.text("hi", {msgId = "m1", ext = {a = "x\0y"}})}}))
    assert.equal('{"a":"x\\u0000y"}', cjson.decode(form_of(req.body).msgList)[1].ext)
  end)
  it("the emulator refuses a \\u0000 in msgList and toAccids, which cJSON would cut the string at", function()
    local st, j = helpers.signed_post(emu, helpers.good_form{
      msgList = '[{"msgId":"c1","msgType":100,"attach":"{\\"a\\":1}\\u0000junk"}]'})
    assert.equal(200, st)
    assert.equal(414, j.code)
    assert.matches("^msgList: ", j.desc)
    j = select(2, helpers.signed_post(emu, helpers.good_form{toAccids = '["bob\\u0000x"]'}))
    assert.equal(414, j.code)
    assert.matches("^toAccids: ", j.desc)
    assert.same({}, emu:inbox("bob"))
    -- an escaped backslash before u0000 is no NUL
    j = select(2, helpers.signed_post(emu, helpers.good_form{
      msgList = '[{"msgId":"c2","msgType":0,"attach":"a\\\\u0000"}]'}))
    assert.equal(200, j.code, j.desc)
  end)
end)

describe("the emulator checks JSON text with the same grammar, every byte", function()
  local emu
  setup(function() emu = helpers.start_emulator({"--rate-limit", "0"}) end)
  teardown(function() emu:stop() end)
  local bad = {'{"a":0x10}', '{"a":01}', '[1]\0', '{"a":1}\0junk', 'NaN'}
  for _, text in ipairs(bad) do
    it(("refuses %q as yidunAntiCheating and as a custom attach"):format(text), function()
      local _, j = helpers.signed_post(emu, helpers.good_form{yidunAntiCheating = text})
      assert.equal(414, j.code)
      assert.matches("^yidunAntiCheating: ", j.desc)
      _, j = helpers.signed_post(emu, helpers.good_form{
        msgList = cjson.encode({{msgId = "c1", msgType = 100, attach = text}})})
      assert.equal(414, j.code, j.desc)
      assert.matches("^msgList", j.desc)
    end)
  end
end)
