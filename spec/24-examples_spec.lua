-- The examples keep working: prepare.lua offline, quickstart.lua against the
-- emulator (what `make demo` runs), and neither prints the secret.
local helpers = require "helpers"

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, how, code = p:close()
  return out, ok, how, code
end

local lua = arg and arg[-1] or "lua5.4"
local env = "COMMSEASE_BUILD=" .. helpers.shell_quote(helpers.build_dir()) .. " "

describe("examples", function()
  it("prepare.lua shows a signed request and parsed answers without any I/O", function()
    local out, ok = run(env .. "COMMSEASE_SECRET=S3cret-never-shown " .. lua .. " examples/prepare.lua")
    assert.is_true(ok, out)
    assert.matches("CheckSum", out)
    assert.matches("batchSendMsgToSomeone.action", out)
    assert.is_nil(out:find("S3cret-never-shown", 1, true))
  end)

  it("quickstart.lua delivers its mixed batch through the emulator", function()
    local emu = helpers.start_emulator({"--rate-limit", "0", "--secret", "S3cret-quick"})
    finally(function() emu:stop() end)
    local out, ok = run(env .. "COMMSEASE_APPKEY=" .. emu.appkey .. " COMMSEASE_SECRET=S3cret-quick"
                        .. " COMMSEASE_ENDPOINT=" .. emu.base .. " " .. lua .. " examples/quickstart.lua")
    assert.is_true(ok, out)
    assert.is_nil(out:find("S3cret-quick", 1, true))
    local _, delivered = out:gsub("delivered at", "")
    assert.equal(3, delivered, out)
    assert.equal(3, #emu:inbox("bob"))
  end)
end)
