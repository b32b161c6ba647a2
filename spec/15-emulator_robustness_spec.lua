-- Hostile and broken input: the emulator answers or drops it, and keeps serving.
local helpers = require("helpers")
local socket = require("socket")

describe("emulator robustness", function()
  local emu
  setup(function() emu = helpers.start_emulator({"--rate-limit", "0", "--max-body", "65536"}) end)
  teardown(function()
    local how, code = emu:stop()
    assert.equal("exit", how)
    assert.equal(0, code)
  end)

  local function still_works()
    local st, j = helpers.signed_post(emu, helpers.good_form())
    assert.equal(200, st)
    assert.equal(200, j.code)
  end

  local function expect_414(body, pattern)
    local st, j, raw = helpers.signed_post(emu, body)
    assert.equal(200, st)
    assert.is_table(j, raw)
    assert.equal(414, j.code)
    if pattern then assert.matches(pattern, j.desc) end
    still_works()
  end

  it("rejects a binary garbage body with 414", function()
    local bytes = {}
    math.randomseed(7)
    for i = 1, 4000 do bytes[i] = string.char(math.random(0, 255)) end
    expect_414(table.concat(bytes))
  end)

  it("rejects malformed percent-encoding with 414 naming the body", function()
    expect_414("roomid=4%2", "^body: malformed")
    expect_414("roomid=%zz&msgList=[]", "^body: malformed")
  end)

  it("rejects an empty body and a body of separators with 414", function()
    expect_414("", "^roomid: ")
    expect_414("&&&==&", "^roomid: ")
  end)

  it("rejects invalid UTF-8 in every place with 414", function()
    local f = helpers.good_form()
    f.msgList = "[{\"msgId\":\"a\",\"msgType\":0,\"attach\":\"\255\254\"}]"
    expect_414(helpers.form_encode(f), "^msgList")
    f = helpers.good_form({fromAccid = "\192\128"}) -- an overlong NUL
    expect_414(helpers.form_encode(f), "^fromAccid")
    f = helpers.good_form({toAccids = "[\"\237\160\128\"]"}) -- a surrogate
    expect_414(helpers.form_encode(f), "^toAccids")
    f = helpers.good_form({env = "\244\144\128\128"}) -- above U+10FFFF
    expect_414(helpers.form_encode(f), "^env")
  end)

  it("rejects garbage JSON and very deep JSON with 414", function()
    expect_414(helpers.form_encode(helpers.good_form({msgList = ("["):rep(20000)})), "^msgList")
    expect_414(helpers.form_encode(helpers.good_form({toAccids = ("[{"):rep(8000)})), "^toAccids")
    expect_414(helpers.form_encode(helpers.good_form({msgList = "[{\"msgId\":\"a\",\"msgType\":0," ..
      "\"attach\":\"x\",\"ext\":\"" .. ("["):rep(5000) .. "\"}]"})), "^msgList%[1%]%.ext")
    expect_414(helpers.form_encode(helpers.good_form({msgList = "\0[]"})), "^msgList")
  end)

  it("answers HTTP 413 to a body over --max-body", function()
    local st, _, raw = helpers.signed_post(emu, ("x"):rep(65537))
    assert.equal(413, st)
    assert.matches("max%-body", raw)
    still_works()
    -- exactly the limit is read and judged (414: it is not a form of the API)
    local st2, j = helpers.signed_post(emu, ("x"):rep(65536))
    assert.equal(200, st2)
    assert.equal(414, j.code)
    assert.is_true(emu:stats().http["413"] >= 1)
  end)

  it("answers HTTP 413 before the body to a client that expects 100-continue", function()
    local s = assert(helpers.connect(emu.port))
    s:send("POST /nimserver/chatroom/batchSendMsgToSomeone.action HTTP/1.1\r\nHost: x\r\n" ..
           "Expect: 100-continue\r\nContent-Length: 100000\r\n\r\n")
    local st, body = helpers.read_response(s)
    s:close()
    assert.equal(413, st)
    assert.equal(413, helpers.json.decode(body).code)
    still_works()
  end)

  it("answers HTTP 413 to a chunked body that grows over --max-body", function()
    local s = assert(helpers.connect(emu.port))
    local chunk = ("y"):rep(16384)
    local req = {"POST /nimserver/chatroom/batchSendMsgToSomeone.action HTTP/1.1",
                 "Host: x", "Transfer-Encoding: chunked", "Content-Type: application/x-www-form-urlencoded", "", ""}
    s:send(table.concat(req, "\r\n"))
    for _ = 1, 5 do s:send(string.format("%x\r\n%s\r\n", #chunk, chunk)) end
    s:send("0\r\n\r\n")
    local st = helpers.read_response(s)
    s:close()
    assert.equal(413, st)
    still_works()
  end)

  it("survives a huge header", function()
    local s = assert(helpers.connect(emu.port))
    s:send("GET /_emulator/stats HTTP/1.1\r\nHost: x\r\nX-Big: " .. ("a"):rep(200000) .. "\r\n\r\n")
    local st = helpers.read_response(s, 5)
    s:close()
    -- libmicrohttpd answers 431 or 413, or drops the connection: never a crash
    assert.is_true(st == nil or st >= 400, tostring(st))
    still_works()
  end)

  it("survives a garbage request line", function()
    local s = assert(helpers.connect(emu.port))
    s:send("\1\2\3 HELLO\r\n\r\n")
    local st = helpers.read_response(s, 5)
    s:close()
    assert.is_true(st == nil or st == 400 or st == 505, tostring(st))
    still_works()
  end)

  it("survives a half-sent request that is then abandoned", function()
    local s = assert(helpers.connect(emu.port))
    local text = helpers.raw_request_text(emu, helpers.good_form())
    s:send(text:sub(1, #text - 20))
    still_works() -- while the half request hangs
    s:close()
    local s2 = assert(helpers.connect(emu.port))
    s2:send("POST /nimserver/chatroom/batchSendMsgToSomeone.action HTTP/1.1\r\nHost: x\r\nCont")
    s2:close()
    still_works()
  end)

  it("serves 200 parallel connections opened and closed at once", function()
    local before = emu:stats().connections
    local socks = {}
    for i = 1, 200 do socks[i] = assert(helpers.connect(emu.port)) end
    -- half of them send a request and read the answer while all are open
    for i = 1, 200, 2 do
      socks[i]:send("GET /_emulator/stats HTTP/1.1\r\nHost: x\r\n\r\n")
    end
    local answered = 0
    for i = 1, 200, 2 do
      if helpers.read_response(socks[i], 10) == 200 then answered = answered + 1 end
    end
    for i = 1, 200 do socks[i]:close() end
    assert.equal(100, answered)
    still_works()
    local after = helpers.wait_until(function()
      local n = emu:stats().connections
      return n - before >= 200 and n
    end, 5)
    assert.truthy(after)
  end)

  it("keeps serving many calls on one kept-alive connection", function()
    local s = assert(helpers.connect(emu.port))
    for i = 1, 50 do
      s:send(helpers.raw_request_text(emu, helpers.good_form()))
      local st, body = helpers.read_response(s)
      assert.equal(200, st, "call " .. i)
      assert.equal(200, helpers.json.decode(body).code)
    end
    s:close()
  end)

  it("stops cleanly with connections still open", function()
    local e = helpers.start_emulator()
    local socks = {}
    for i = 1, 20 do socks[i] = assert(helpers.connect(e.port)) end
    socks[1]:send("POST /nimserver/chatroom/batchSendMsgToSomeone.action HTTP/1.1\r\nHost: x\r\n")
    socket.sleep(0.05)
    local t0 = helpers.now()
    local how, code = e:stop()
    assert.equal("exit", how)
    assert.equal(0, code)
    assert.is_true(helpers.now() - t0 < 3)
    for i = 1, 20 do socks[i]:close() end
  end)

  -- A form of a million bytes holds some 120,000 keys.  The request log keeps the first
  -- value of each key; a lookup per key in the recorded keys so far made that quadratic
  -- (35.5 s for this body on the project's shared 2-core machine, 3.6 s for 40,000 keys);
  -- it is linear now (0.15 s).  The bound below is generous (ASan, a shared machine) and
  -- still far below the quadratic time.
  it("records a form of 120,000 keys in linear time, first value of each key kept", function()
    local e = helpers.start_emulator({"--rate-limit", "0"}) -- the default 1 MiB body limit
    finally(function() e:stop() end)
    local form = helpers.good_form()
    local keys = {helpers.form_encode(form)}
    local n = 120000
    for i = 1, n do keys[#keys + 1] = "k" .. i end
    keys[#keys + 1] = "roomid=99" -- a repeated key: the first value is the one recorded
    local body = table.concat(keys, "&")
    assert.is_true(#body < 1048576)
    local t0 = helpers.now()
    local st, j, raw = helpers.signed_post(e, body, {timeout = 8})
    local took = helpers.now() - t0
    assert.equal(200, st, raw)
    assert.equal(200, j.code, raw) -- a good call: unknown keys are not the service's business
    assert.is_true(took < 4, ("the call took %.2f s"):format(took))
    local rec = e:requests()[1]
    assert.equal("42", rec.form.roomid)
    assert.equal("", rec.form.k1)
    assert.equal("", rec.form["k" .. n])
    local count = 0
    for _ in pairs(rec.form) do count = count + 1 end
    assert.equal(n + 4, count) -- roomid, fromAccid, toAccids, msgList and the n keys
  end)
end)
