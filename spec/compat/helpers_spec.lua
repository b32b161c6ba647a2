-- The version-difference helpers of spec/helpers.lua give the same answers on
-- Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT: the rest of the suite leans on them to run
-- unchanged everywhere.
local helpers = require "helpers"

describe("spec helpers on " .. helpers.LUA, function()
  it("bytes() builds bytes by value (\\xe9 is the text xe9 on 5.1)", function()
    local s = "caf" .. helpers.bytes(0xe9)
    assert.equal(4, #s)
    assert.equal(0xe9, s:byte(4))
    assert.equal(string.char(0xff, 0, 0x41), helpers.bytes(0xff, 0, 0x41))
  end)

  it("utf8() encodes code points as UTF-8 (known vectors)", function()
    assert.equal("A", helpers.utf8(0x41))
    assert.equal(string.char(0xC3, 0xA9), helpers.utf8(0xE9))           -- é
    assert.equal(string.char(0xE4, 0xB8, 0xAD), helpers.utf8(0x4E2D))   -- 中
    assert.equal(string.char(0xF0, 0x9F, 0x98, 0x80), helpers.utf8(0x1F600)) -- 😀
    assert.equal(string.char(0xDF, 0xBF, 0xE0, 0xA0, 0x80), helpers.utf8(0x7FF, 0x800))
    assert.equal(string.char(0xEF, 0xBF, 0xBF, 0xF0, 0x90, 0x80, 0x80), helpers.utf8(0xFFFF, 0x10000))
  end)

  it("math_type() tells integers from floats as far as the runtime can", function()
    assert.equal("integer", helpers.math_type(3))
    assert.equal("float", helpers.math_type(3.5))
    assert.is_nil(helpers.math_type("3"))
    assert.equal("float", helpers.math_type(1 / 0))
    if math.type then -- luacheck: ignore 143
      assert.equal("float", helpers.math_type(3.0)) -- 5.3+ keep the subtype
    end
  end)

  it("load() loads a text chunk with an environment", function()
    local chunk = assert(helpers.load("return x + 1", "=t", {x = 41}))
    assert.equal(42, chunk())
    local bad, err = helpers.load("return +", "=t")
    assert.is_nil(bad)
    assert.matches("t:1:", err)
  end)

  it("with_close() calls __close at the end of the scope, and on an error", function()
    local log = {}
    local mt = {__close = function(v, e) log[#log + 1] = {v.name, e} end, __metatable = "private"}
    local a = setmetatable({name = "a"}, mt)
    assert.same({"r1", "r2"}, {helpers.with_close(a, function(v)
      assert.equal(a, v)
      assert.equal(0, #log) -- not closed yet
      return "r1", "r2"
    end)})
    assert.same({{"a"}}, log)
    local b = setmetatable({name = "b"}, mt)
    local ok, err = pcall(helpers.with_close, b, function() error("boom", 0) end)
    assert.is_false(ok)
    assert.equal("boom", err)
    assert.same({"b", "boom"}, log[2])
    assert.has_error(function() helpers.with_close({}, function() end) end)
  end)

  it("run() says how a command ended, as Lua 5.4's close does", function()
    assert.same({"abc", true, "exit", 0}, {helpers.run("printf abc")})
    assert.same({"x\n", false, "exit", 3}, {helpers.run("echo x; exit 3")})
    assert.same({"", false, "signal", 9}, {helpers.run("sh -c 'kill -9 $$'")})
  end)

  it("start_emulator() gives the emulator's own pid, and stop() how it ended", function()
    local e = helpers.start_emulator()
    local f = assert(io.open("/proc/" .. e.pid .. "/comm", "rb"))
    local comm = f:read("*l")
    f:close()
    assert.equal("commsease-emula", comm) -- the kernel's 15-character name
    os.execute("kill -KILL " .. e.pid)
    assert.same({"signal", 9}, {e:stop()})
  end)

  it("lua_bin() is the interpreter running the specs", function()
    local out = helpers.run(helpers.lua_bin() .. [[ -e "print(rawget(_G, 'jit') and jit.version or _VERSION)"]])
    assert.equal(helpers.LUA .. "\n", out)
  end)
end)
