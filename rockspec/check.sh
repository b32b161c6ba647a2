#!/usr/bin/env bash
# rockspec/check.sh -- proves the rockspec builds and installs a loadable module.
#
#   1. luarocks lint rockspec/commsease-scm-1.rockspec
#   2. luarocks make into a throw-away tree, with --deps-mode=none: Debian ships
#      lua-cjson as a Debian package, not as a rock, so LuaRocks cannot see it
#      and would otherwise try to fetch it from a rocks server
#   3. lua5.4 -e 'require "commsease"' with LUA_CPATH pointing at that tree,
#      and a check that the module really came from the tree
#
# The build runs in a copy of src/ so no objects or commsease.so land in the
# working tree.  Debian keeps curl/curl.h under the multiarch include
# directory, which LuaRocks 3.8 does not search, so CURL_INCDIR comes from
# pkg-config when the header is not in a plain include directory.
# Environment: LUAROCKS (default luarocks), LUA (default lua5.4),
# LUA_VERSION (default 5.4), KEEP_TREE=1 keeps the temporary directory.
set -euo pipefail

cd "$(dirname "$0")/.."
LUAROCKS=${LUAROCKS:-luarocks}
LUA=${LUA:-lua5.4}
LUA_VERSION=${LUA_VERSION:-5.4}
ROCKSPEC=rockspec/commsease-scm-1.rockspec

fail() { echo "rockspec-check: FAIL: $*" >&2; exit 1; }

command -v "$LUAROCKS" >/dev/null || fail "$LUAROCKS not found (Debian: apt-get install luarocks)"
command -v "$LUA" >/dev/null || fail "$LUA not found"

work=$(mktemp -d "${TMPDIR:-/tmp}/commsease-rockspec.XXXXXX")
cleanup() { if [ "${KEEP_TREE:-0}" = 1 ]; then echo "rockspec-check: kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT

echo "rockspec-check: luarocks lint $ROCKSPEC"
"$LUAROCKS" lint "$ROCKSPEC" || fail "luarocks lint"

# the rockspec must compile exactly src/core/*.c and src/lua/*.c (no drift
# between the Makefile's build and this one when a source file is added)
echo "rockspec-check: module sources = src/core/*.c + src/lua/*.c"
ls src/core/*.c src/lua/*.c | ROCKSPEC="$ROCKSPEC" "$LUA" -e '
  local spec = {}
  local chunk = assert(loadfile(os.getenv("ROCKSPEC")))
  if setfenv then setfenv(chunk, spec) else chunk = assert(loadfile(os.getenv("ROCKSPEC"), "t", spec)) end
  chunk()
  local listed, want, bad = {}, {}, {}
  for _, f in ipairs(spec.build.modules.commsease.sources) do listed[f] = true end
  for f in io.lines() do want[f] = true end
  for f in pairs(want) do if not listed[f] then bad[#bad + 1] = "missing from the rockspec: " .. f end end
  for f in pairs(listed) do if not want[f] then bad[#bad + 1] = "not in src/core or src/lua: " .. f end end
  table.sort(bad)
  for _, m in ipairs(bad) do io.stderr:write("rockspec-check: ", m, "\n") end
  os.exit(#bad == 0 and 0 or 1)
' || fail "the rockspec's source list is out of date"

# where the external libraries' headers are, when LuaRocks cannot find them
vars=()
if [ -z "${CURL_INCDIR:-}" ] && ! [ -e /usr/include/curl/curl.h ] && ! [ -e /usr/local/include/curl/curl.h ]; then
  if command -v pkg-config >/dev/null && inc=$(pkg-config --variable=includedir libcurl 2>/dev/null) \
     && [ -e "$inc/curl/curl.h" ]; then
    vars+=("CURL_INCDIR=$inc")
  else
    multi=$(${CC:-cc} -print-multiarch 2>/dev/null || true)
    [ -n "$multi" ] && [ -e "/usr/include/$multi/curl/curl.h" ] && vars+=("CURL_INCDIR=/usr/include/$multi")
  fi
elif [ -n "${CURL_INCDIR:-}" ]; then
  vars+=("CURL_INCDIR=$CURL_INCDIR")
fi
[ -n "${OPENSSL_INCDIR:-}" ] && vars+=("OPENSSL_INCDIR=$OPENSSL_INCDIR")

mkdir -p "$work/src" "$work/tree"
cp -R src rockspec "$work/src/"
tree="$work/tree"

echo "rockspec-check: luarocks --lua-version=$LUA_VERSION --tree=<tmp> make --deps-mode=none ${vars[*]:-}"
(cd "$work/src" && "$LUAROCKS" --lua-version="$LUA_VERSION" --tree="$tree" make --deps-mode=none \
   "$ROCKSPEC" ${vars[@]+"${vars[@]}"}) || fail "luarocks make"

so="$tree/lib/lua/$LUA_VERSION/commsease.so"
[ -f "$so" ] || fail "luarocks make did not install $so"

# the tree first, then the default path (;;) for the system's cjson.so
echo "rockspec-check: $LUA -e 'require \"commsease\"' from the tree"
LUA_CPATH="$tree/lib/lua/$LUA_VERSION/?.so;;" LUA_PATH=";;" EXPECT="$so" "$LUA" -e '
  local m, where = require "commsease"
  assert(type(m) == "table" and type(m.new) == "function", "commsease did not load as a module table")
  -- Lua 5.4 returns the file a module came from; older versions do not
  if _VERSION == "Lua 5.4" then
    assert(where == os.getenv("EXPECT"), "loaded " .. tostring(where) .. ", not the tree'"'"'s module")
  else
    where = os.getenv("EXPECT")
  end
  assert(m.checksum("secret", "12345", "1508481877") == "2f45bdd8cc89d97631345e9fcba98184de732ae2",
         "known-answer CheckSum vector failed")
  print("rockspec-check: loaded " .. m._VERSION .. " from " .. where)
' || fail "the installed module does not load"

echo "rockspec-check: OK"
