-- Attacks on client:call as a careless caller uses it: forms of many fields
-- (the work must stay near linear: a quadratic sort of 40,000 keys took 18 s,
-- of a million, hours), and wrong values, whose error must name what was
-- given.
local helpers = require "helpers"

describe("attack: client:call's form", function()
  local emu, client
  setup(function()
    emu = helpers.start_emulator({"--rate-limit", "0"})
    client = helpers.client_for(emu, {rate_limit = 0})
  end)
  teardown(function()
    client:close()
    emu:stop()
  end)

  it("a form of 40,000 fields is encoded in well under a second", function()
    local form = {}
    for i = 40000, 1, -1 do form[string.format("k%06d", i)] = "v" end
    local t = os.clock()
    -- a path the emulator does not serve, so that its own form decoder (quadratic in
    -- the number of keys: 40,000 took it over 5 s) is not in the way
    local res, err = client:call("/chatroom/get.action", form)
    local cpu = os.clock() - t
    assert.is_nil(res)
    assert.equal("http", err.kind)
    assert.equal(404, err.code)
    assert.is_true(cpu < 1.5, string.format("call took %.2f s of CPU", cpu))
  end)

  it("keys go in byte order, whatever order the table holds them in", function()
    local form, want = {}, {}
    for i = 1, 3000 do
      local k = string.format("f%d", (i * 7919) % 3001)
      form[k] = "v"
      want[#want + 1] = k
    end
    for _, k in ipairs{"K", "k", "k0", "~", "a_b", "a-b", "a.b", "Z"} do form[k] = "1"; want[#want + 1] = k end
    table.sort(want)
    local res, err = client:call("/chatroom/batchSendMsgToSomeone.action", form)
    assert.is_nil(res)
    assert.equal("api", err.kind)
    local got = emu:requests()
    local body = got[#got].body
    assert.is_nil(got[#got].body_truncated)
    local keys = {}
    for k in body:gmatch("([^&=]+)=") do keys[#keys + 1] = k end
    assert.same(want, keys)
  end)

  it("an unusable key or value is refused naming its type", function()
    local res, err = client:call("/x/y.action", {[1] = "a"})
    assert.is_nil(res)
    assert.equal("invalid", err.kind)
    assert.matches("form has a number key", err.message, 1, true)
    res, err = client:call("/x/y.action", {[true] = "a"})
    assert.is_nil(res)
    assert.matches("form has a boolean key", err.message, 1, true)
    res, err = client:call("/x/y.action", {a = print})
    assert.is_nil(res)
    assert.equal("invalid", err.kind)
    assert.matches("a is a function", err.message, 1, true)
    res, err = client:call("/x/y.action", {a = coroutine.create(function() end)})
    assert.is_nil(res)
    assert.matches("a is a thread", err.message, 1, true)
    res, err = client:call("/x/y.action", {a = io.stdout})
    assert.is_nil(res)
    assert.matches("a is a userdata", err.message, 1, true)
  end)
end)
