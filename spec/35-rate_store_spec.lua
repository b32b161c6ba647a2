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

-- ---- a fleet of Lua processes sharing one budget ----
local procs = require("helpers_procs")
local redis = require("helpers_redis")
local cjson = require("cjson.safe")

local WORKER = "spec/workers/fanout_worker.lua"
local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir -p " .. helpers.shell_quote(tmpdir)))
local function shm_url(name) return "shm:" .. tmpdir .. "/" .. name end

-- starts n workers that begin at the same moment; returns the processes and that moment
local function fleet(emu, n, store, calls, opts, tag)
  local start_at = helpers.now() + 1.5
  local ps = {}
  for i = 1, n do
    ps[i] = procs.spawn(WORKER, {helpers.build_dir(), emu.base, store or "", calls,
                                 string.format("%.3f", start_at), (tag or "p") .. i,
                                 cjson.encode(opts or {})},
                        {CMS_APPKEY = emu.appkey, CMS_SECRET = emu.secret})
    ps[i].tag = (tag or "p") .. i
  end
  return ps, start_at
end

local function results(ps)
  local out = {}
  for i, p in ipairs(ps) do
    local text = p:wait()
    out[i] = procs.last_json(text)
    assert(out[i] and out[i].tag, "worker " .. p.tag .. " printed: " .. tostring(text))
  end
  return out
end

local function ratelog(emu)
  local _, j = emu:get("/_emulator/ratelog")
  return j.calls
end

local function codes(emu) return emu:stats().codes end

describe("rate_store option", function()
  local emu
  setup(function() emu = helpers.start_emulator{} end)
  teardown(function() emu:stop() end)

  it("refuses a malformed store URL, and rediss:// with the reason", function()
    local commsease = require("commsease")
    local function new(url) return helpers.client_for(emu, {rate_store = url}) end
    assert.has_error(function() new("file:/tmp/x") end)
    assert.has_error(function() new(42) end)
    local ok, msg = pcall(new, "rediss://127.0.0.1:6379")
    assert.is_false(ok)
    assert.matches("TLS", msg)
    assert.has_error(function()
      commsease.new{appkey = "a", secret = "s", rate_store = "shm:" .. tmpdir .. "/x",
                    rate_store_timeout = 0}
    end)
  end)

  it("gives nil, err for a file that is not a rate store, never a crash", function()
    local f = assert(io.open(tmpdir .. "/junk", "w"))
    f:write(string.rep("x", 4096))
    f:close()
    local c, err = helpers.client_for(emu, {rate_store = shm_url("junk")})
    assert.is_nil(c)
    assert.are.equal("store", err.kind)
    assert.matches("not a commsease rate store", err.message)
    f = assert(io.open(tmpdir .. "/short", "w"))
    f:write("cmsrate\n")
    f:close()
    c, err = helpers.client_for(emu, {rate_store = shm_url("short")})
    assert.is_nil(c)
    assert.matches("8 bytes", tostring(err))
    assert.is_nil(tostring(err):find(emu.secret, 1, true))
  end)

  it("bounds a Redis that never answers by rate_store_timeout, and sends go on", function()
    local socket = require("socket")
    local silent = assert(socket.bind("127.0.0.1", 0))
    local _, port = silent:getsockname()
    local c = assert(helpers.client_for(emu, {rate_store = "redis://127.0.0.1:" .. port,
                                               rate_store_timeout = 0.3}))
    local t0 = helpers.now()
    assert(c:send(helpers.good_form()))
    local took = helpers.now() - t0
    assert.is_true(took >= 0.28 and took < 2, string.format("%.2f s", took))
    assert.are.equal("unreachable", c:stats().rate_store)
    assert.are.equal(1, c:stats().rate_store_fallbacks)
    c:close()
    silent:close()
  end)

  it("creates the file 0600, holding no secret, and says ok in stats", function()
    local c = assert(helpers.client_for(emu, {rate_store = shm_url("fresh")}))
    local p = io.popen("stat -c %a " .. helpers.shell_quote(tmpdir .. "/fresh"))
    assert.are.equal("600", p:read("*l"))
    p:close()
    local f = assert(io.open(tmpdir .. "/fresh", "rb"))
    local bytes = f:read("*a")
    f:close()
    assert.are.equal(4096, #bytes)
    assert.is_nil(bytes:find(emu.secret, 1, true))
    assert.is_nil(bytes:find(emu.appkey, 1, true))
    assert.are.equal("ok", c:stats().rate_store)
    assert(c:send(helpers.good_form()))
    assert.are.equal(0, c:stats().rate_store_fallbacks)
    c:close()
    local other = helpers.client_for(emu, {appkey = "another-app", rate_store = shm_url("fresh")})
    assert.is_nil(other)
  end)
end)

describe("one budget for a fleet", function()
  local emu
  setup(function() emu = helpers.start_emulator{} end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)

  it("4 processes with a shm: store, 150 calls each: no 416, <= 100 a second, near the floor",
     function()
    local ps, start_at = fleet(emu, 4, shm_url("fleet4"), 150)
    local rs = results(ps)
    local last = 0
    for _, r in ipairs(rs) do
      assert.are.equal(150, r.ok, cjson.encode(r))
      assert.are.equal(0, r.failed)
      assert.are.equal("ok", r.stats.rate_store)
      assert.is_true(r.t0 - start_at < 0.2, "worker started late")
      last = math.max(last, r.t1)
    end
    assert.is_nil(codes(emu)["416"])
    local max = emu:stats().max_calls_per_second
    assert.is_true(max <= 100, "max_calls_per_second " .. max)
    local took = last - start_at
    print(string.format("\n  shm, 4 x 150 calls: %.2f s (floor 6 s, limit 6.9 s), max %d calls/s",
                        took, max))
    assert.is_true(took <= 1.15 * 6, string.format("took %.2f s, floor 6 s", took))
    assert.is_true(took >= 5.5, string.format("took %.2f s: faster than the budget allows", took))
  end)

  it("without a store the same fleet overruns the service (what the store prevents)", function()
    local ps = fleet(emu, 4, "", 40, {penalty = 1})
    results(ps)
    assert.is_true((codes(emu)["416"] or 0) > 0 or emu:stats().max_calls_per_second > 100)
  end)

  it("a process killed with SIGKILL mid-fan-out leaves the others the full budget", function()
    local ps, start_at = fleet(emu, 4, shm_url("fleetkill"), 150)
    while helpers.now() < start_at + 2 do helpers.sleep(0.05) end
    ps[1]:kill("KILL")
    local kill_t = helpers.now()
    local out = ps[1]:wait()
    assert.is_nil(procs.last_json(out).tag, "the killed worker finished its fan-out")
    local rs = {}
    for i = 2, 4 do
      rs[i] = procs.last_json((ps[i]:wait()))
      assert.are.equal(150, rs[i].ok)
      assert.are.equal(0, rs[i].failed)
    end
    assert.is_nil(codes(emu)["416"])
    -- the survivors' calls from half a second after the kill until the first one finished
    local log = ratelog(emu)
    local first_end = math.min(rs[2].t1, rs[3].t1, rs[4].t1)
    local t_kill_emu, t_end_emu
    -- map wall times to the emulator's clock through the last logged call
    local offset = log[#log].t - math.max(rs[2].t1, rs[3].t1, rs[4].t1)
    t_kill_emu, t_end_emu = kill_t + offset + 0.5, first_end + offset - 0.3
    local n = 0
    for _, c in ipairs(log) do
      if c.from ~= "p1" and c.t >= t_kill_emu and c.t <= t_end_emu then n = n + 1 end
    end
    local rate = n / (t_end_emu - t_kill_emu)
    print(string.format("\n  after SIGKILL of 1 of 4: the other 3 drew %.1f calls/s", rate))
    assert.is_true(t_end_emu - t_kill_emu > 1, "too short a window")
    assert.is_true(rate >= 85, string.format("survivors drew %.1f calls/s", rate))
    assert.is_true(emu:stats().max_calls_per_second <= 100)
  end)

  it("shares the 416 penalty: after the first 416 nobody sends until it passed", function()
    emu:config{rate_limit = 50, penalty = 2}
    local ps = fleet(emu, 3, shm_url("fleetpen"), 30, {penalty = 2})
    local rs = results(ps)
    emu:config{rate_limit = 100, penalty = 10}
    for _, r in ipairs(rs) do
      assert.are.equal(30, r.ok, cjson.encode(r))
      assert.are.equal(0, r.failed)
    end
    local log, first, per = ratelog(emu), nil, {}
    for _, c in ipairs(log) do
      if c.code == 416 then
        first = first or c.t
        per[c.from] = (per[c.from] or 0) + 1
      end
    end
    assert.is_not_nil(first, "the emulator never answered 416")
    local total = 0
    for from, k in pairs(per) do
      assert.is_true(k <= 1, from .. " got " .. k .. " 416s")
      total = total + k
    end
    -- only calls already on their way when the first 416 came back can meet the penalty
    assert.is_true(total <= 2, total .. " processes got a 416")
    for _, c in ipairs(log) do
      assert.is_false(c.t > first + 0.05 and c.t < first + 2,
                      string.format("a call %.3f s after the first 416", c.t - first))
    end
  end)

  it("without a store the penalty is not shared: every process meets its own 416", function()
    emu:config{rate_limit = 50, penalty = 2}
    local ps = fleet(emu, 3, "", 30, {penalty = 2})
    results(ps)
    emu:config{rate_limit = 100, penalty = 10}
    local per, n = {}, 0
    for _, c in ipairs(ratelog(emu)) do
      if c.code == 416 and not per[c.from] then
        per[c.from] = true
        n = n + 1
      end
    end
    assert.are.equal(3, n)
  end)
end)

describe("one budget across hosts (redis://)", function()
  local emu, r
  setup(function()
    assert(redis.available(), "redis-server is not installed (Debian: redis-server)")
    emu = helpers.start_emulator{}
  end)
  teardown(function()
    emu:stop()
    if r then r:stop() end
  end)
  before_each(function()
    emu:reset()
    r = redis.start()
  end)
  after_each(function() r:stop() end)

  it("3 processes, 150 calls each: no 416, <= 100 a second, near the floor", function()
    -- a generous timeout: this proves the sharing, so no draw may fall back because a
    -- loaded machine kept Redis or a worker off the CPU for 50 ms
    local ps, start_at = fleet(emu, 3, r.url .. "/2", 150, {store_timeout = 0.5})
    local rs = results(ps)
    local last = 0
    for _, x in ipairs(rs) do
      assert.are.equal(150, x.ok, cjson.encode(x))
      assert.are.equal(0, x.failed)
      assert.are.equal("ok", x.stats.rate_store)
      assert.are.equal(0, x.stats.rate_store_fallbacks)
      last = math.max(last, x.t1)
    end
    assert.is_nil(codes(emu)["416"])
    assert.is_true(emu:stats().max_calls_per_second <= 100)
    local took = last - start_at
    print(string.format("\n  redis, 3 x 150 calls: %.2f s (floor 4.5 s, limit 5.18 s), max %d calls/s",
                        took, emu:stats().max_calls_per_second))
    assert.is_true(took <= 1.15 * 4.5 and took >= 4, string.format("took %.2f s, floor 4.5 s", took))
    assert.matches("commsease:{" .. emu.appkey .. "}:tat", r:cli("-n", "2", "KEYS", "*"), 1, true)
  end)

  it("Redis stopped mid-fan-out: it finishes, every message once, stats says unreachable",
     function()
    local ps, start_at = fleet(emu, 3, r.url, 100, {store_timeout = 0.05})
    while helpers.now() < start_at + 1.2 do helpers.sleep(0.05) end
    r:stop()
    local rs = results(ps)
    for _, x in ipairs(rs) do
      assert.are.equal(100, x.ok, cjson.encode(x))
      assert.are.equal(0, x.failed)
      assert.are.equal("unreachable", x.stats.rate_store)
      assert.is_true(x.stats.rate_store_fallbacks > 0)
    end
    assert.are.equal(300, emu:stats().delivered_msgids)
    for _, tag in ipairs{"p1", "p2", "p3"} do
      for _, i in ipairs{1, 77, 5000, 9999, 10000} do
        local msgs = emu:inbox(tag .. "_" .. i)
        assert.are.equal(1, #msgs, tag .. "_" .. i)
      end
    end
  end)
end)
