-- The emulator's signature and header checks (API.md "Signing").
local helpers = require("helpers")

describe("emulator auth", function()
  local emu
  setup(function() emu = helpers.start_emulator() end)
  teardown(function() emu:stop() end)

  local function expect_414(o, pattern)
    local st, j, raw = helpers.signed_post(emu, helpers.good_form(), o)
    assert.equal(200, st)
    assert.is_table(j, raw)
    assert.equal(414, j.code)
    assert.matches(pattern, j.desc)
    return j
  end

  it("computes the known-answer CheckSum independently (sha1sum)", function()
    assert.equal("2f45bdd8cc89d97631345e9fcba98184de732ae2",
                 helpers.sign("secret", "12345", "1508481877"))
  end)

  it("prints exactly the listening line and exits 0 on SIGTERM", function()
    local e = helpers.start_emulator()
    assert.equal("listening on http://127.0.0.1:" .. e.port .. "/nimserver", e.line)
    local how, code = e:stop()
    assert.equal("exit", how)
    assert.equal(0, code)
    assert.equal("", e.rest) -- nothing else on stdout
    assert.same({"exit", 0}, {e:stop()}) -- idempotent
  end)

  it("accepts a well-signed call", function()
    local st, j = helpers.signed_post(emu, helpers.good_form())
    assert.equal(200, st)
    assert.equal(200, j.code)
  end)

  for _, name in ipairs({"AppKey", "Nonce", "CurTime", "CheckSum", "Content-Type"}) do
    it("answers 414 naming the missing header " .. name, function()
      expect_414({omit = {name}}, "missing header " .. name:gsub("%-", "%%-"))
    end)
  end

  it("rejects a wrong AppKey", function()
    expect_414({appkey = "other-app"}, "bad AppKey")
  end)

  it("rejects a CheckSum made with another secret, without echoing the secret", function()
    local j = expect_414({secret = "not-the-secret"}, "bad CheckSum")
    assert.is_nil(j.desc:find("demo-secret", 1, true))
    assert.is_nil(j.desc:find("not-the-secret", 1, true))
  end)

  it("rejects a CheckSum of the wrong length", function()
    expect_414({checksum = "abc"}, "bad CheckSum")
  end)

  it("compares the CheckSum case-insensitively", function()
    local nonce, curtime = "n0nce", tostring(os.time())
    local sum = helpers.sign(emu.secret, nonce, curtime):upper()
    local st, j = helpers.signed_post(emu, helpers.good_form(),
                                      {nonce = nonce, curtime = curtime, checksum = sum})
    assert.equal(200, st)
    assert.equal(200, j.code)
  end)

  it("accepts a Nonce of 128 characters and rejects 129", function()
    local st, j = helpers.signed_post(emu, helpers.good_form(), {nonce = ("n"):rep(128)})
    assert.equal(200, st)
    assert.equal(200, j.code)
    expect_414({nonce = ("n"):rep(129)}, "Nonce")
  end)

  it("rejects an empty Nonce", function()
    expect_414({nonce = ""}, "Nonce")
  end)

  it("rejects CurTime outside the 300 s window, either side", function()
    expect_414({curtime = os.time() - 400}, "CurTime out of the 300 s window")
    expect_414({curtime = os.time() + 400}, "CurTime out of the 300 s window")
  end)

  it("accepts CurTime within the window", function()
    local st, j = helpers.signed_post(emu, helpers.good_form(), {curtime = os.time() - 250})
    assert.equal(200, st)
    assert.equal(200, j.code)
  end)

  it("rejects a CurTime in milliseconds or not decimal", function()
    expect_414({curtime = tostring(os.time() * 1000)}, "CurTime")
    expect_414({curtime = "12ab"}, "CurTime")
  end)

  it("rejects a Content-Type other than a form", function()
    expect_414({content_type = "application/json"}, "Content%-Type")
    expect_414({content_type = "application/x-www-form-urlencoded; charset=latin1"}, "charset")
  end)

  it("accepts the Content-Type without charset and in any case", function()
    for _, ct in ipairs({"application/x-www-form-urlencoded",
                         "Application/X-WWW-Form-Urlencoded; Charset=UTF-8"}) do
      local st, j = helpers.signed_post(emu, helpers.good_form(), {content_type = ct})
      assert.equal(200, st)
      assert.equal(200, j.code, ct)
    end
  end)

  it("accepts the Go SDK's header spellings (Appkey, Checksum, Curtime)", function()
    -- a raw socket: LuaSocket's http would lower-case the names
    local curtime = tostring(os.time())
    local body = helpers.form_encode(helpers.good_form())
    local text = table.concat({
      "POST /nimserver/chatroom/batchSendMsgToSomeone.action HTTP/1.1",
      "Host: 127.0.0.1:" .. emu.port, "Appkey: demo-appkey", "Nonce: go1", "Curtime: " .. curtime,
      "Checksum: " .. helpers.sign("demo-secret", "go1", curtime),
      "Content-Type: application/x-www-form-urlencoded;charset=UTF-8", "Accept-Encoding: gzip",
      "Content-Length: " .. #body, "", body}, "\r\n")
    local sock = assert(helpers.connect(emu.port))
    sock:send(text)
    local st, raw = helpers.read_response(sock)
    sock:close()
    assert.equal(200, st)
    assert.equal(200, helpers.json.decode(raw).code)
    local reqs = emu:requests()
    assert.equal("go1", reqs[#reqs].headers.Nonce)
    assert.equal("demo-appkey", reqs[#reqs].headers.Appkey)
  end)

  it("uses --appkey and --secret", function()
    local e = helpers.start_emulator({"--appkey", "k2", "--secret", "s2-private"})
    local st, j = helpers.signed_post(e, helpers.good_form())
    assert.equal(200, st)
    assert.equal(200, j.code)
    local _, j2 = helpers.signed_post(e, helpers.good_form(), {appkey = "demo-appkey"})
    assert.equal(414, j2.code)
    local _, j3, raw = helpers.signed_post(e, helpers.good_form(), {secret = "demo-secret"})
    assert.equal(414, j3.code)
    assert.is_nil(raw:find("s2-private", 1, true))
    e:stop()
  end)

  it("answers other methods on the API path with HTTP 405", function()
    local st = helpers.http("GET", emu.url)
    assert.equal(405, st)
  end)

  it("exits 2 with a message on a bad flag", function()
    local out, _, how, code = helpers.run(helpers.shell_quote(helpers.emulator_bin()) .. " --port nope 2>&1")
    assert.equal("exit", how)
    assert.equal(2, code)
    assert.matches("%-%-port", out)
  end)
end)
