-- The examples keep working: prepare.lua offline, quickstart.lua against the
-- emulator (what `make demo` runs), and neither prints the secret.
local helpers = require "helpers"

local function run(cmd) return helpers.run(cmd .. " 2>&1") end

local lua = helpers.lua_bin()
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
  it("run-demo.lua (make demo) starts the emulator, delivers, shows the inbox and stops it", function()
    local out, ok = run(env .. lua .. " examples/run-demo.lua " .. helpers.shell_quote(helpers.emulator_bin()))
    assert.is_true(ok, out)
    local _, delivered = out:gsub("delivered at", "")
    assert.equal(3, delivered, out)
    assert.matches("inbox of bob as the emulator recorded it: 3 message%(s%)", out)
    assert.matches("emulator stopped", out)
    assert.is_nil(out:find("demo-secret", 1, true))
  end)

  it("the README's quick example runs as printed, pointed at the emulator", function()
    local f = assert(io.open("README.md", "rb"))
    local readme = f:read("*a")
    f:close()
    local code = assert(readme:match("\n## Quick example\n\n```lua\n(.-)\n```\n"), "no Quick example block")
    local emu = helpers.start_emulator({"--rate-limit", "0", "--secret", "S3cret-readme"})
    local tmp = os.tmpname()
    finally(function() emu:stop(); os.remove(tmp) end) -- busted keeps one finally per test
    -- the only change: commsease.new is handed the emulator's address instead of the
    -- real endpoints, through a wrapper loaded before the README's code runs
    local prelude = table.concat({
      "package.cpath = " .. string.format("%q", helpers.build_dir() .. "/?.so;") .. " .. package.cpath",
      "local real = require 'commsease'",
      "local wrapped = setmetatable({new = function(o) o.endpoints = {" .. string.format("%q", emu.base)
        .. "}; return real.new(o) end}, {__index = real})",
      "package.loaded.commsease = wrapped",
    }, "\n")
    local w = assert(io.open(tmp, "wb"))
    w:write(prelude, "\n", code, "\n")
    w:close()
    local out, ok = run("COMMSEASE_APPKEY=" .. emu.appkey .. " COMMSEASE_SECRET=S3cret-readme "
                        .. lua .. " " .. helpers.shell_quote(tmp))
    assert.is_true(ok, out)
    local _, delivered = out:gsub("delivered at", "")
    assert.equal(3, delivered, out)
    assert.equal(3, #emu:inbox("bob"))
    assert.is_nil(out:find("S3cret-readme", 1, true))
  end)
end)
