-- Attacks on rate_store = "shm:..." from the file system: things at the path
-- that are not a store (a FIFO, which a blocking open would hang on, a device,
-- a symlink to one, a directory, garbage), and the file truncated, grown or
-- removed under a live client.  new gives nil, err of kind store; a live
-- client falls back to local pacing and says so; nothing crashes (SIGBUS) or
-- hangs; the secret is in no error.
local commsease = require "commsease"

local SECRET = "s3cr3t-attack-store"
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -m 700 " .. dir))

local function new(path)
  return commsease.new{appkey = "attack-store", secret = SECRET, endpoint = "http://127.0.0.1:9/nimserver",
                       rate_store = "shm:" .. path}
end

describe("attack: shm: rate store from the file system", function()
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("refuses what is not a store at the path, with nil, err and no hang", function()
    assert(os.execute("mkfifo " .. dir .. "/fifo"))
    assert(os.execute("ln -s /dev/null " .. dir .. "/null"))
    assert(os.execute("mkdir " .. dir .. "/sub"))
    local f = assert(io.open(dir .. "/garbage", "wb"))
    f:write(string.rep("\0\1garbage", 1000))
    f:close()
    assert(os.execute("chmod 600 " .. dir .. "/garbage"))
    for _, p in ipairs{dir .. "/fifo", dir .. "/null", dir .. "/sub", "/dev/zero", dir .. "/garbage",
                       "/proc/self/mem", dir .. "/no/such/dir/file"} do
      local t = os.time()
      local c, err = new(p)
      assert.is_nil(c, p)
      assert.equal("store", err.kind, p)
      assert.is_nil(tostring(err):find(SECRET, 1, true))
      assert.is_true(os.time() - t <= 2, p .. " took too long")
    end
  end)

  it("a live client survives its file truncated, grown and removed", function()
    local path = dir .. "/live"
    local c = assert(new(path))
    assert.equal("ok", c:stats().rate_store)
    assert.equal(0, c:pace_take())
    assert(os.execute("truncate -s 0 " .. path))
    -- the mapping has no file behind it: a read would be SIGBUS; the client falls back
    for _ = 1, 3 do assert.is_number(c:pace_take()) end
    assert.equal("unreachable", c:stats().rate_store)
    assert.is_true(c:stats().rate_store_fallbacks >= 1)
    local c2, err = new(path)
    assert.is_nil(c2)
    assert.equal("store", err.kind)
    assert(os.execute("truncate -s 10M " .. path))
    for _ = 1, 3 do assert.is_number(c:pace_take()) end
    os.remove(path)
    for _ = 1, 3 do assert.is_number(c:pace_take()) end
    c:close()
    -- a fresh client makes the file anew
    local c3 = assert(new(path))
    assert.equal("ok", c3:stats().rate_store)
    c3:close()
  end)
end)
