-- spec/35-rate_store_spec.lua -- the emulator's figures that prove a budget held:
-- max_calls_per_second in GET /_emulator/stats and GET /_emulator/ratelog.
local helpers = require("helpers")

local function call(emu, from)
  local st, j = helpers.signed_post(emu, helpers.good_form{fromAccid = from or "alice"})
  assert(st == 200, "HTTP " .. tostring(st))
  return j.code
end

describe("emulator max_calls_per_second", function()
  local emu
  setup(function() emu = helpers.start_emulator{"--rate-limit", "5", "--penalty", "0.5"} end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)

  it("counts every call of a burst, the refused ones too", function()
    assert.are.equal(0, emu:stats().max_calls_per_second)
    local t0, codes = helpers.now(), {}
    for _ = 1, 8 do
      local c = call(emu)
      codes[c] = (codes[c] or 0) + 1
    end
    local took = helpers.now() - t0
    assert.are.equal(5, codes[200])
    assert.are.equal(3, codes[416])
    if took < 1 then assert.are.equal(8, emu:stats().max_calls_per_second) end
    assert.is_true(emu:stats().max_calls_per_second >= 5)
    emu:reset()
    assert.are.equal(0, emu:stats().max_calls_per_second)
  end)

  it("is the most in any one-second window, not the total", function()
    emu:config{rate_limit = 0}
    -- 7 calls at least 0.3 s apart: any 1 s window holds 3 or 4 of them
    for i = 1, 7 do
      call(emu)
      if i < 7 then helpers.sleep(0.3) end
    end
    local m = emu:stats().max_calls_per_second
    assert.is_true(m >= 3 and m <= 4, "max " .. tostring(m))
    emu:config{rate_limit = 5}
  end)

  it("logs who was let through and who was refused", function()
    for i = 1, 7 do call(emu, "p" .. i) end
    local _, j = emu:get("/_emulator/ratelog")
    assert.are.equal(7, #j.calls)
    for i, c in ipairs(j.calls) do
      assert.are.equal("p" .. i, c.from)
      assert.are.equal(i <= 5 and 200 or 416, c.code)
      if i > 1 then assert.is_true(c.t >= j.calls[i - 1].t) end
    end
    emu:reset()
    _, j = emu:get("/_emulator/ratelog")
    assert.are.equal(0, #j.calls)
  end)
end)
