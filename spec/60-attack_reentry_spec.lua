-- Attacks from inside on_progress: the send_all list changed under the run
-- (entries removed, replaced by non-tables, by tables whose __index raises),
-- and the same client used again (send, a plan, a nested send_all) while its
-- fan-out runs.  Values, not crashes; what is refused raises; what is sent
-- from inside lands once.
local commsease = require "commsease"
local helpers = require "helpers"

local function P(prefix, n)
  local acc = {}
  for i = 1, n do acc[i] = prefix .. i end
  return {roomid = 42, fromAccid = "alice", toAccids = acc, msgList = {commsease.text("x", {msgId = prefix})}}
end

describe("attack: re-entry from on_progress", function()
  local emu
  setup(function() emu = helpers.start_emulator({"--rate-limit", "0"}) end)
  teardown(function() emu:stop() end)

  for _, paced in ipairs{0, 1000} do
    it("send_all's list changed under it (rate_limit " .. paced .. ")", function()
      emu:reset()
      local c = helpers.client_for(emu, {rate_limit = paced, retries = 2})
      local list = {}
      for i = 1, 8 do list[i] = P("ch" .. paced .. "-" .. i .. "-", 1) end
      local results = c:send_all(list, {concurrency = 1, on_progress = function()
        list[8] = nil
        list[7] = 42
        list[6] = setmetatable({}, {__index = function() error("read through __index") end})
        list[5] = {roomid = 42}
        list[2] = "not a table"
        collectgarbage()
      end})
      assert.is_table(results[1].res)
      for i = 2, 8 do
        local r = results[i]
        if i == 3 or i == 4 then
          assert.is_table(r.res, tostring(r.err))
        else
          assert.equal("invalid", r.err.kind, i)
          assert.is_false(r.err.sent)
        end
      end
      assert.is_nil(results.progress_error)
      -- the refused entries never left
      for _, i in ipairs{2, 5, 6, 7, 8} do
        assert.equal(0, #emu:inbox("ch" .. paced .. "-" .. i .. "-1"))
      end
      c:close()
    end)
  end

  it("the same client sends and plans from its fan-out's on_progress; send_all and close raise", function()
    emu:reset()
    local c = helpers.client_for(emu, {rate_limit = 0, on_attempt = function() end})
    local inner, refused = 0, 0
    local report = c:fanout(P("fo", 450), {concurrency = 3, on_progress = function(d)
      local res, err = c:send(P("in" .. d, 1))
      assert(res, tostring(err))
      local p = c:plan(P("pl" .. d, 1))
      local j = assert(p:next())
      local st, b = helpers.http(j.method, j.url, j.headers, j.body, 5)
      p:done(j.id, st, b)
      assert(p:report().ok == 1)
      if not pcall(c.send_all, c, {P("sa" .. d, 1)}) then refused = refused + 1 end
      if not pcall(c.close, c) then refused = refused + 1 end
      inner = inner + 1
    end})
    assert.is_nil(report.progress_error)
    assert.equal(5, report.ok)
    assert.equal(5, inner)
    assert.equal(10, refused)
    for d = 1, 5 do
      assert.equal(1, #emu:inbox("in" .. d .. "1"))
      assert.equal(1, #emu:inbox("pl" .. d .. "1"))
      assert.equal(0, #emu:inbox("sa" .. d .. "1"))
    end
    assert.is_false(c:is_closed())
    c:close()
  end)
end)
