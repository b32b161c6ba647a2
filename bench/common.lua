-- common.lua -- what the bench's Lua clients share: the standard request
-- (10 text messages x 100 recipients), argument parsing, clocks, the RESULT line.
local socket = require "socket"

local M = {}

M.N_MESSAGES, M.N_RECIPIENTS, M.ROOMID = 10, 100, 765788

-- the two batches (bench/batch.h holds the same for the C programs; run.lua
-- checks the module's body against the C client's): "hello" as every attach,
-- or 224 bytes of mixed-script UTF-8 text and a JSON ext on every message
M.BATCHES = {"light", "realistic"}
M.TEXT = {
  light = "hello",
  realistic = "Round 3 starts in 60 seconds, good luck! 第三轮将在60秒后开始，祝你好运！ "
    .. "Раунд 3 начнётся через 60 секунд. 🎮🏆 \"Arena\" map\nラウンド3 まもなく開始 — 상품:황금열쇠",
}
M.EXT = {realistic = '{"kind":"announce","round":3,"tags":["pvp","ranked"]}'}
assert(#M.TEXT.realistic == 224)

-- the params table a caller of client:send builds
function M.params(batch)
  batch = batch or "light"
  assert(M.TEXT[batch], "unknown batch")
  local to, ml = {}, {}
  for i = 1, M.N_RECIPIENTS do to[i] = "p" .. i end
  for i = 1, M.N_MESSAGES do
    ml[i] = {msgId = "m" .. i, msgType = 0, attach = M.TEXT[batch], ext = M.EXT[batch]}
  end
  return {roomid = M.ROOMID, fromAccid = "bench", toAccids = to, msgList = ml}
end

-- BENCH_REPS: interleaved repetitions of every case (run.lua and resty.lua alike)
M.REPS = tonumber(os.getenv("BENCH_REPS") or "") or 9
assert(M.REPS >= 1 and M.REPS <= 15 and M.REPS == math.floor(M.REPS), "BENCH_REPS must be 1..15")

-- the median of a list of numbers (nil for none)
function M.median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  local h = math.floor(n / 2) -- (no //: nginx's LuaJIT loads this file too)
  if n % 2 == 1 then return s[h + 1] end
  return (s[h] + s[h + 1]) / 2
end

-- --key value pairs -> table (numbers converted where they look like one)
function M.args(argv, defaults)
  local o = {}
  for k, v in pairs(defaults) do o[k] = v end
  local i = 1
  while i <= #argv do
    local k = argv[i]:match("^%-%-([%w_%-]+)$")
    if not k or argv[i + 1] == nil then
      io.stderr:write("bad argument: ", tostring(argv[i]), "\n")
      os.exit(2)
    end
    local v = argv[i + 1]
    o[k:gsub("%-", "_")] = math.tointeger(tonumber(v)) or tonumber(v) or v
    i = i + 2
  end
  return o
end

M.wall = socket.gettime
M.cpu = os.clock -- CPU time of the whole process (all threads), user + sys

function M.result(name, n, ok, wall, cpu, extra)
  io.write(string.format("RESULT name=%s n=%d ok=%d wall_s=%.4f reqps=%.1f cpu_us=%.2f%s\n",
    name, n, ok, wall, wall > 0 and n / wall or 0, cpu * 1e6 / n, extra or ""))
  io.flush()
end

-- peak and current resident set of this process, in KiB
function M.vm(field)
  local f = io.open("/proc/self/status")
  if not f then return -1 end
  local s = f:read("a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+)")) or -1
end

return M
