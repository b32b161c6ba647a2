-- RequestId de-duplication: the emulator remembers the RequestIds of the calls
-- it processed for --request-id-window seconds and answers a repeat with code
-- 431 without processing it.  Calls refused before processing (a fault that
-- answers at once, 416, 414) are not remembered: their retry is processed.
local helpers = require("helpers")

local REPEAT = "HTTP request repeated"

local rid_n = 0
local function rid()
  rid_n = rid_n + 1
  return string.format("rid-%d-%d", math.floor(helpers.now() * 1000) % 100000000, rid_n)
end

local function post(emu, form, id, o)
  o = o or {}
  o.headers = o.headers or {}
  o.headers.RequestId = id
  return helpers.signed_post(emu, form, o)
end

describe("emulator RequestId de-duplication", function()
  local emu
  setup(function() emu = helpers.start_emulator({"--rate-limit", "0", "--request-id-window", "60"}) end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)

  it("answers a repeated RequestId with 431 and does not process it", function()
    local id = rid()
    local _, j = post(emu, helpers.good_form(), id)
    assert.equal(200, j.code)
    -- the same RequestId with another message: refused before anything is delivered
    local again = helpers.good_form()
    _, j = post(emu, again, id)
    assert.equal(431, j.code)
    assert.matches(REPEAT, j.desc)
    assert.equal(1, #emu:inbox("bob"))
    assert.equal(1, emu:stats().codes["431"])
    -- a new RequestId for the same message goes through
    _, j = post(emu, again, rid())
    assert.equal(200, j.code)
    assert.equal(2, #emu:inbox("bob"))
  end)

  it("applies to the single send too, across both endpoints", function()
    local id = rid()
    local _, j = post(emu, helpers.good_form(), id)
    assert.equal(200, j.code)
    _, j = post(emu, {roomid = "42", fromAccid = "alice", toAccids = {"bob"}, msgId = helpers.msgid(),
                      msgType = "0", attach = "x"}, id, {path = "/nimserver/chatroom/sendMsgToSomeone.action"})
    assert.equal(431, j.code)
  end)

  it("does not remember calls refused before processing", function()
    local cases = {
      {"an HTTP 502 fault", function(form, id)
        emu:faults({{action = "status", status = 502}})
        local st = post(emu, form, id)
        assert.equal(502, st)
      end},
      {"a code fault", function(form, id)
        emu:faults({{action = "code", code = 500, desc = "busy"}})
        local _, j = post(emu, form, id)
        assert.equal(500, j.code)
      end},
      {"a connection closed before processing", function(form, id)
        emu:faults({{action = "close"}})
        assert.is_nil((post(emu, form, id)))
      end},
      {"a bad CheckSum", function(form, id)
        local _, j = post(emu, form, id, {checksum = string.rep("a", 40)})
        assert.equal(414, j.code)
      end},
      {"a rule broken", function(_, id)
        local _, j = post(emu, helpers.good_form({toAccids = {}}), id)
        assert.equal(414, j.code)
      end},
    }
    for _, c in ipairs(cases) do
      local form, id = helpers.good_form(), rid()
      c[2](form, id)
      local _, j = post(emu, form, id)
      assert.equal(200, j.code, c[1])
      assert.equal(1, #j.success, c[1])
    end
  end)

  it("does not remember calls answered 416", function()
    local e = helpers.start_emulator({"--rate-limit", "1", "--penalty", "0.3", "--request-id-window", "60"})
    local _, j = post(e, helpers.good_form(), rid())
    assert.equal(200, j.code)
    local form, id = helpers.good_form(), rid()
    _, j = post(e, form, id)
    assert.equal(416, j.code)
    helpers.sleep(1.1)
    _, j = post(e, form, id)
    assert.equal(200, j.code)
    e:stop()
  end)

  it("remembers a call that was processed but whose answer was lost", function()
    local form, id = helpers.good_form(), rid()
    emu:faults({{action = "close", after_deliver = true}})
    assert.is_nil((post(emu, form, id)))
    assert.equal(1, #emu:inbox("bob"))
    local _, j = post(emu, form, id)
    assert.equal(431, j.code)
    -- the way out: a new RequestId and resendFlag = 1, de-duplicated by msgId
    form.msgList[1].resendFlag = 1
    _, j = post(emu, form, rid())
    assert.equal(200, j.code)
    assert.equal(1, #j.success)
    assert.equal(1, #emu:inbox("bob"))
  end)

  it("remembers a call processed behind a gateway error (status with after_deliver)", function()
    local form, id = helpers.good_form(), rid()
    emu:faults({{action = "status", status = 502, after_deliver = true}})
    local st = post(emu, form, id)
    assert.equal(502, st)
    assert.equal(1, #emu:inbox("bob"))
    local _, j = post(emu, form, id)
    assert.equal(431, j.code)
    local _, plan = emu:get("/_emulator/faults")
    assert.same({}, plan.faults)
  end)

  it("does nothing for calls without a RequestId", function()
    local form = helpers.good_form()
    local _, j = helpers.signed_post(emu, form)
    assert.equal(200, j.code)
    _, j = helpers.signed_post(emu, helpers.good_form())
    assert.equal(200, j.code)
    assert.equal(0, emu:stats().request_ids)
  end)

  it("finds the header in any case (Go sends Requestid)", function()
    local id = rid()
    local _, j = helpers.signed_post(emu, helpers.good_form(), {headers = {Requestid = id}})
    assert.equal(200, j.code)
    _, j = helpers.signed_post(emu, helpers.good_form(), {headers = {REQUESTID = id}})
    assert.equal(431, j.code)
  end)

  it("lets two concurrent calls with one RequestId deliver once", function()
    local id = rid()
    local a = assert(helpers.connect(emu.port))
    local b = assert(helpers.connect(emu.port))
    local o = {headers = {RequestId = id}}
    assert(a:send(helpers.raw_request_text(emu, helpers.good_form(), o)))
    assert(b:send(helpers.raw_request_text(emu, helpers.good_form(), o)))
    local _, ba = helpers.read_response(a)
    local _, bb = helpers.read_response(b)
    a:close()
    b:close()
    local codes = {helpers.json.decode(ba).code, helpers.json.decode(bb).code}
    table.sort(codes)
    assert.same({200, 431}, codes)
    assert.equal(1, #emu:inbox("bob"))
  end)

  it("forgets a RequestId after the window, and on reset", function()
    local e = helpers.start_emulator({"--rate-limit", "0", "--request-id-window", "0.5"})
    local id = rid()
    local _, j = post(e, helpers.good_form(), id)
    assert.equal(200, j.code)
    _, j = post(e, helpers.good_form(), id)
    assert.equal(431, j.code)
    helpers.sleep(0.6)
    _, j = post(e, helpers.good_form(), id)
    assert.equal(200, j.code)
    assert.equal(1, e:stats().request_ids)
    e:reset()
    assert.equal(0, e:stats().request_ids)
    _, j = post(e, helpers.good_form(), id)
    assert.equal(200, j.code)
    e:stop()
  end)

  it("is off with a window of 0, also at run time through the config endpoint", function()
    local e = helpers.start_emulator({"--rate-limit", "0", "--request-id-window", "0"})
    local id = rid()
    for _ = 1, 2 do
      local _, j = post(e, helpers.good_form(), id)
      assert.equal(200, j.code)
    end
    local st, cfg = e:config({request_id_window = 30})
    assert.equal(200, st)
    assert.equal(30, cfg.request_id_window)
    local _, j = post(e, helpers.good_form(), id)
    assert.equal(200, j.code)
    _, j = post(e, helpers.good_form(), id)
    assert.equal(431, j.code)
    e:config({request_id_window = 0})
    _, j = post(e, helpers.good_form(), id)
    assert.equal(200, j.code)
    st = e:config({request_id_window = -1})
    assert.equal(400, st)
    e:stop()
  end)

  it("refuses a bad --request-id-window", function()
    for _, v in ipairs({"-1", "x", "86401"}) do
      local p = io.popen(helpers.shell_quote(helpers.emulator_bin()) .. " --request-id-window "
                         .. helpers.shell_quote(v) .. " 2>&1; echo rc=$?")
      local out = p:read("*a")
      p:close()
      assert.matches("request%-id%-window", out)
      assert.matches("rc=2", out)
    end
  end)
end)
