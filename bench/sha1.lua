-- sha1.lua -- a plain SHA-1 in pure Lua 5.4 (native 64-bit integers and bit
-- operators), the kind a user pastes in when the module is not used.
-- sha1.hex(s) -> 40 lowercase hex characters.
local M = {}

local spack, sunpack, sformat, srep = string.pack, string.unpack, string.format, string.rep

local function rol(x, n)
  return ((x << n) | (x >> (32 - n))) & 0xffffffff
end

function M.hex(msg)
  local h0, h1, h2, h3, h4 = 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0
  local ml = #msg
  -- padding: 0x80, zeros to 56 mod 64, then the bit length as a big-endian 64-bit integer
  msg = msg .. "\128" .. srep("\0", (55 - ml) % 64) .. spack(">I8", ml * 8)
  local w = {}
  for chunk = 1, #msg, 64 do
    for i = 0, 15 do
      w[i] = sunpack(">I4", msg, chunk + i * 4)
    end
    for i = 16, 79 do
      w[i] = rol(w[i - 3] ~ w[i - 8] ~ w[i - 14] ~ w[i - 16], 1)
    end
    local a, b, c, d, e = h0, h1, h2, h3, h4
    for i = 0, 79 do
      local f, k
      if i < 20 then
        f, k = (b & c) | (~b & d), 0x5a827999
      elseif i < 40 then
        f, k = b ~ c ~ d, 0x6ed9eba1
      elseif i < 60 then
        f, k = (b & c) | (b & d) | (c & d), 0x8f1bbcdc
      else
        f, k = b ~ c ~ d, 0xca62c1d6
      end
      local t = (rol(a, 5) + (f & 0xffffffff) + e + k + w[i]) & 0xffffffff
      e, d, c, b, a = d, c, rol(b, 30), a, t
    end
    h0 = (h0 + a) & 0xffffffff
    h1 = (h1 + b) & 0xffffffff
    h2 = (h2 + c) & 0xffffffff
    h3 = (h3 + d) & 0xffffffff
    h4 = (h4 + e) & 0xffffffff
  end
  return sformat("%08x%08x%08x%08x%08x", h0, h1, h2, h3, h4)
end

return M
