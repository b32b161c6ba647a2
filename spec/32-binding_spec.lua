-- The binding's reading discipline and lifecycle (issue 9): lists with holes
-- refused, validation before pacing, on_progress errors kept by send_all,
-- Lua closed inside a running fan-out, the one option reader, endpoints shown
-- without credentials, client:stats().
local commsease = require "commsease"
local helpers = require "helpers"

local function entry(i, room)
  return {roomid = room or 5, fromAccid = "a", toAccids = {"r" .. i},
          msgList = {commsease.text("m" .. i, {msgId = "b-" .. i})}}
end

local function list(n)
  local t = {}
  for i = 1, n do t[i] = entry(i) end
  return t
end

local function raises(pattern, f, ...)
  local ok, msg = pcall(f, ...)
  assert.is_false(ok, "expected an error matching " .. pattern)
  assert.matches(pattern, tostring(msg))
  return msg
end

describe("lists with holes", function()
  local emu, client
  setup(function()
    emu = helpers.start_emulator({"--rate-limit", "0"})
    client = helpers.client_for(emu, {rate_limit = 0})
  end)
  teardown(function() client:close(); emu:stop() end)
  before_each(function() emu:reset() end)

  it("send_all refuses a list with a hole, naming it, and sends nothing", function()
    local l = {}
    l[1], l[3] = entry(1), entry(3)
    raises("list%[2%] is missing", client.send_all, client, l)
    raises("list%[4%] is missing", client.send_all, client, {entry(1), entry(2), entry(3), nil, entry(5)})
    raises("list .*holds the key 'n'", client.send_all, client, {entry(1), n = 1})
    assert.equal(0, emu:stats().requests)
    -- every entry of a proper list is sent and reported
    local out = client:send_all(list(3))
    assert.equal(3, #out)
    for i = 1, 3 do assert.is_table(out[i].res) end
  end)

  it("commsease.new refuses endpoints with a hole", function()
    local eps = {}
    eps[1], eps[3] = emu.base, emu.base
    raises("endpoints%[2%] is missing", commsease.new,
           {appkey = emu.appkey, secret = emu.secret, endpoints = eps})
    raises("endpoints .*holds the key 'backup'", commsease.new,
           {appkey = emu.appkey, secret = emu.secret, endpoints = {emu.base, backup = emu.base}})
  end)
end)

describe("send_all validation", function()
  it("checks every entry before taking a rate token: invalid entries cost no time", function()
    local emu = helpers.start_emulator({"--rate-limit", "0"})
    finally(function() emu:stop() end)
    local c = helpers.client_for(emu, {rate_limit = 20})
    local l = {}
    for i = 1, 100 do l[i] = {roomid = 0, fromAccid = "a", toAccids = {"x"}, msgList = {}} end
    l[101] = entry(101)
    local t0 = helpers.now()
    local out = c:send_all(l)
    local took = helpers.now() - t0
    -- paced, 101 entries at 20/s would take about 5 s
    assert.is_true(took < 1, "100 invalid entries and 1 valid took " .. took .. " s")
    for i = 1, 100 do assert.equal("invalid", out[i].err.kind) end
    assert.is_table(out[101].res)
    assert.equal(1, emu:stats().requests)
    c:close()
  end)
end)

describe("send_all and on_progress", function()
  it("keeps an error raised in on_progress in results.progress_error and goes on", function()
    local emu = helpers.start_emulator({"--rate-limit", "0"})
    finally(function() emu:stop() end)
    local c = helpers.client_for(emu, {rate_limit = 0})
    local calls = 0
    local out = c:send_all(list(5), {on_progress = function(done, total)
      calls = calls + 1
      assert(total == 5)
      if done == 2 then error("progress bar broke") end
    end})
    assert.equal(2, calls)               -- no more progress calls after the error
    assert.matches("progress bar broke", tostring(out.progress_error))
    assert.equal(5, #out)
    for i = 1, 5 do assert.is_table(out[i].res, tostring(out[i].err)) end
    local quiet = c:send_all(list(2), {on_progress = function() end})
    assert.is_nil(quiet.progress_error)
    c:close()
  end)
end)

describe("closing Lua inside a running fan-out", function()
  local emu
  setup(function() emu = helpers.start_emulator({"--rate-limit", "0"}) end)
  teardown(function() emu:stop() end)

  -- runs a child Lua that calls os.exit(3, true) from on_progress, warnings on
  local function child(method, env)
    local script = os.tmpname()
    local errf = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write((([[
      package.cpath = %q .. "/?.so;" .. package.cpath
      if warn then warn("@on") end
      local commsease = require "commsease"
      local c <close> = commsease.new{appkey = %q, secret = %q, endpoint = %q, rate_limit = 0}
      local function progress() os.exit(3, true) end
      if %q == "send_all" then
        local l = {}
        for i = 1, 4 do
          l[i] = {roomid = 1, fromAccid = "a", toAccids = {"x" .. i}, msgList = {commsease.text("m")}}
        end
        c:send_all(l, {concurrency = 2, on_progress = progress})
      else
        local to = {}
        for i = 1, 400 do to[i] = "p" .. i end
        c:fanout({roomid = 1, fromAccid = "a", toAccids = to, msgList = {commsease.text("m")}},
                 {concurrency = 2, on_progress = progress})
      end
      os.exit(0)
    ]]):format(helpers.build_dir(), emu.appkey, emu.secret, emu.base, method)
      :gsub("<close> ", helpers.LUA == "Lua 5.4" and "%0" or ""))) -- no <close> below 5.4
    f:close()
    local _, ok, how, code = helpers.run((env or "") .. " " .. helpers.lua_bin() .. " " .. script .. " 2> " .. errf)
    local ef = io.open(errf)
    local stderr = ef:read("a")
    ef:close()
    os.remove(script)
    os.remove(errf)
    return ok, how, code, stderr
  end

  for _, method in ipairs{"send_all", "fanout"} do
    it(method .. ": __gc and __close never raise; the process ends with its own status", function()
      local _, how, code, stderr = child(method)
      assert.equal("exit", how)
      assert.equal(3, code, stderr)
      assert.not_matches("__gc", stderr)
      assert.not_matches("__close", stderr)
      assert.not_matches("cannot close", stderr)
      assert.equal("", stderr)
    end)
  end

  it("frees every handle and the secret then (no leak under LeakSanitizer)", function()
    local asan = io.popen("cc -print-file-name=libasan.so"):read("l")
    if not helpers.build_dir():match("asan") or not asan or not asan:match("/") then
      pending("only with the ASan build (make test-asan)")
      return
    end
    local _, how, code, stderr = child("fanout", "LD_PRELOAD=" .. asan ..
      " ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 LSAN_OPTIONS=exitcode=42")
    assert.equal("exit", how)
    assert.equal(3, code, stderr)
    assert.not_matches("LeakSanitizer", stderr)
  end)
end)

describe("the option reader", function()
  local c
  setup(function() c = commsease.new{appkey = "k", secret = "s", endpoint = "http://127.0.0.1:9/nimserver"} end)
  teardown(function() c:close() end)
  local params = {roomid = 1, fromAccid = "a", toAccids = {"b"}, msgList = {commsease.text("x")}}

  it("refuses unknown keys, naming the option and the argument", function()
    raises("unknown option 'concurency' %(argument #2%)", c.send_all, c, {}, {concurency = 2})
    raises("unknown option 'concurency' %(argument #2%)", c.fanout, c, params, {concurency = 2})
    raises("unknown option 'concurency' %(argument #2%)", c.plan, c, params, {concurency = 2})
    raises("unknown option 'tiemout' %(argument #1%)", commsease.new,
           {appkey = "k", secret = "s", tiemout = 5})
    raises("unknown option '1'", commsease.new, {appkey = "k", secret = "s", "positional"})
    -- what send_all does not use is unknown to it
    raises("unknown option 'backoff'", c.send_all, c, {}, {backoff = 1})
    raises("unknown option 'per_receiver_rate'", c.send_all, c, {}, {per_receiver_rate = 5})
  end)

  it("refuses wrong types: a string for a number", function()
    raises("'concurrency' must be an integer, not a string", c.send_all, c, {}, {concurrency = "8"})
    raises("'concurrency' must be an integer, not a string", c.fanout, c, params, {concurrency = "8"})
    raises("'concurrency' must be an integer, not a string", c.plan, c, params, {concurrency = "8"})
    raises("'concurrency' must be an integer", c.send_all, c, {}, {concurrency = 2.5})
    raises("'deadline' must be a number, not a string", c.fanout, c, params, {deadline = "5"})
    raises("'retries' must be an integer, not a string", commsease.new,
           {appkey = "k", secret = "s", retries = "2"})
    raises("'on_progress' must be a function", c.send_all, c, {}, {on_progress = 5})
  end)

  it("has one range per option, wherever it is taken (retries: 0 to 10)", function()
    local ok = {appkey = "k", secret = "s", endpoint = "http://127.0.0.1:9/nimserver", retries = 10}
    commsease.new(ok):close()
    ok.retries = 11
    raises("'retries' must be an integer from 0 to 10", commsease.new, ok)
    raises("'retries' must be an integer from 0 to 10", c.send_all, c, {}, {retries = 11})
    raises("'retries' must be an integer from 0 to 10", c.fanout, c, params, {retries = 11})
    raises("'retries' must be an integer from 0 to 10", c.plan, c, params, {retries = 11})
    assert.is_table(c:send_all({}, {retries = 10}))
    assert.is_truthy(c:plan(params, {retries = 10}))
    raises("'concurrency' must be an integer from 1 to 64", c.plan, c, params, {concurrency = 65})
    raises("'per_receiver_rate' must be 0 %(off%) or from 0.1", c.fanout, c, params,
           {per_receiver_rate = 0.05})
    raises("'deadline' must be in %(0, 604800%]", c.fanout, c, params, {deadline = 0})
  end)

  it("reads raw: options behind __index are not seen", function()
    local sneaky = setmetatable({}, {__index = {concurrency = 0, retries = 99}})
    assert.is_table(c:send_all({}, sneaky))
    assert.is_truthy(c:plan(params, sneaky))
    local o = setmetatable({secret = "s", endpoint = "http://127.0.0.1:9/nimserver"},
                           {__index = {appkey = "k"}})
    raises("'appkey' is required", commsease.new, o)
  end)

  it("refuses an options value that is not a table", function()
    raises("argument #2", c.send_all, c, {}, 5)
    raises("argument #2", c.fanout, c, params, "fast")
    raises("argument #1", commsease.new, "k")
  end)
end)

describe("endpoints in error values", function()
  local SECRET = "pw-N0t-For-Logs"

  local function no_password(v, seen)
    seen = seen or {}
    if type(v) == "string" then
      assert.is_nil(v:find(SECRET, 1, true), "the password leaked in: " .. v)
    elseif type(v) == "table" and not seen[v] then
      seen[v] = true
      for k, x in pairs(v) do no_password(k, seen); no_password(x, seen) end
      no_password(tostring(v), seen)
    end
  end

  it("drop the user:password@ of the endpoint", function()
    local emu = helpers.start_emulator({"--rate-limit", "0"})
    finally(function() emu:stop() end)
    local c = commsease.new{appkey = emu.appkey, secret = emu.secret, rate_limit = 0, retries = 0,
                            endpoint = ("http://ops:%s@127.0.0.1:%d/nimserver"):format(SECRET, emu.port)}
    local p = {roomid = 1, fromAccid = "a", toAccids = {"b"}, msgList = {commsease.text("x")}}
    emu:faults{{action = "code", code = 13004, desc = "muted", count = 3}}
    local _, err = c:send(p)
    assert.equal("api", err.kind)
    assert.equal(("http://127.0.0.1:%d/nimserver"):format(emu.port), err.endpoint)
    no_password(err)
    local out = c:send_all({p})
    assert.equal(err.endpoint, out[1].err.endpoint)
    no_password(out)
    local report = c:fanout(p)
    assert.equal(err.endpoint, report.results[1].err.endpoint)
    no_password(report)
    c:close()
    local dead = commsease.new{appkey = "k", secret = "s", retries = 0,
                               endpoints = {("http://ops:%s@127.0.0.1:9/nimserver"):format(SECRET)}}
    local _, terr = dead:send(p)
    assert.equal("transport", terr.kind)
    assert.equal("http://127.0.0.1:9/nimserver", terr.endpoint)
    no_password(terr)
    dead:close()
    local ok, msg = pcall(commsease.new, {appkey = "k", secret = "s",
                                          endpoint = ("ftp://ops:%s@host/nimserver"):format(SECRET)})
    assert.is_false(ok)
    assert.matches("ftp://host/nimserver", msg, 1, true)
    no_password(msg)
  end)
end)

describe("client:stats", function()
  it("is a plain table with the rate budget's state", function()
    local c = commsease.new{appkey = "k", secret = "s", endpoint = "http://127.0.0.1:9/nimserver"}
    local s = c:stats()
    assert.equal("local", s.rate_store)
    assert.equal(0, s.rate_store_fallbacks)
    assert.is_nil(getmetatable(s))
    assert.not_equal(s, c:stats())        -- built afresh each time
    c:close()
  end)
end)

-- the module looks for OpenResty's table.nkeys only where it is loaded or
-- preloaded (LuaJIT's own): a require that searched package.path would run any
-- table/nkeys.lua of the current directory, and on 5.3+ table.concat is not raw
describe("opening the module", function()
  it("runs no table/nkeys.lua that package.path would find", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(helpers.run("mkdir -p " .. helpers.shell_quote(dir .. "/table")))
    local f = assert(io.open(dir .. "/table/nkeys.lua", "w"))
    f:write('local o = io.open("ran", "w") o:write("ran") o:close() return print\n')
    f:close()
    local build = helpers.build_dir():sub(1, 1) == "/" and helpers.build_dir()
                  or assert(os.getenv("PWD")) .. "/" .. helpers.build_dir()
    local out, ok = helpers.run("cd " .. helpers.shell_quote(dir) .. " && " .. helpers.lua_bin() ..
      " -e " .. helpers.shell_quote("package.path = './?.lua;' .. package.path; package.cpath = '" ..
      build .. "/?.so;' .. package.cpath; require 'commsease'; print('opened')") .. " 2>&1")
    local ran = io.open(dir .. "/ran")
    if ran then ran:close() end
    helpers.run("rm -rf " .. helpers.shell_quote(dir))
    assert.is_true(ok, out)
    assert.matches("opened", out)
    assert.is_nil(ran, "table/nkeys.lua ran when the module was opened")
  end)
end)
