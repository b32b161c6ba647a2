-- Two nginx workers fanning out at the same time: with one shm: rate store they share the
-- appkey's budget and the service never answers 416; each pacing alone (the control) is
-- over the limit, so the measurement can tell.
local helpers = require "helpers"
local nginx = require "helpers_nginx"
local cjson = require "cjson"

-- every worker polls the dict; when "go" holds a job it runs that fan-out once, in its
-- own timer, and files its report under its worker id
local HTTP = [[
  lua_shared_dict work 1m;
  init_worker_by_lua_block {
    local cjson = require "cjson.safe"
    local id = ngx.worker.id()
    local done = {}
    local function poll(premature)
      if premature then return end
      local v = ngx.shared.work:get("go")
      local job = v and cjson.decode(v)
      if job and not done[job.run] then
        done[job.run] = true
        local ok, err = pcall(function()
          local commsease = require "commsease"
          local client = require("commsease.resty").new{appkey = job.appkey, secret = job.secret,
            endpoint = job.base, rate_limit = job.rate, rate_limit_penalty = 0.5,
            rate_store = job.store, timeout = 5}
          local to = {}
          for i = 1, 100 * job.calls do to[i] = "w" .. id .. "-" .. i end
          ngx.shared.work:incr("started:" .. job.run, 1, 0)
          -- both start together: wait until the other worker has its job too
          for _ = 1, 500 do
            if ngx.shared.work:get("started:" .. job.run) >= job.workers then break end
            ngx.sleep(0.01)
          end
          local report = client:fanout({roomid = 77, fromAccid = "sys", toAccids = to,
                                        msgList = {commsease.text("x", {msgId = job.run .. "-" .. id})}},
                                       {concurrency = 8, per_receiver_rate = 0})
          ngx.shared.work:set(job.run .. ":" .. id, cjson.encode{ok = report.ok, calls = report.calls,
                                                                pid = ngx.worker.pid()})
        end)
        if not ok then ngx.shared.work:set(job.run .. ":" .. id, cjson.encode{error = tostring(err)}) end
      end
      assert(ngx.timer.at(0.02, poll))
    end
    assert(ngx.timer.at(0, poll))
  }
]]

describe("commsease.resty in two workers", function()
  local emu, ng, store
  setup(function()
    store = os.tmpname()
    os.remove(store)
    emu = helpers.start_emulator({"--rate-limit", "100", "--penalty", "0.5"})
    ng = nginx.start{workers = 2, http = HTTP}
  end)
  teardown(function()
    if ng then ng:stop() end
    if emu then emu:stop() end
    os.remove(store)
  end)

  local function both(run, o)
    emu:reset()
    local job = {run = run, appkey = emu.appkey, secret = emu.secret, base = emu.base, rate = 100,
                 calls = o.calls, store = o.store, workers = 2}
    ng:run("ngx.shared.work:set('go', ...)", cjson.encode(job))
    local out = helpers.wait_until(function()
      return ng:run([[
        local a = ...
        local r0, r1 = ngx.shared.work:get(a .. ":0"), ngx.shared.work:get(a .. ":1")
        return r0 and r1 and {r0, r1}
      ]], run)
    end, 60)
    assert.is_table(out, "the two fan-outs did not finish")
    local r = {cjson.decode(out[1]), cjson.decode(out[2])}
    for i = 1, 2 do
      assert.is_nil(r[i].error)
      assert.equal(o.calls, r[i].ok)
    end
    assert.are_not.equal(r[1].pid, r[2].pid) -- two workers, not one twice
    return r, emu:stats()
  end

  it("never gets a 416 when they share one shm: store", function()
    local _, stats = both("shared", {calls = 150, store = "shm:" .. store})
    assert.equal(300, stats.requests)
    assert.is_nil(stats.codes["416"])
  end)

  it("(the control: each worker on its own budget goes over the limit and gets 416s)", function()
    local _, stats = both("alone", {calls = 150})
    assert.is_true((stats.codes["416"] or 0) > 0, "no 416 without a shared store")
  end)
end)
