#!/usr/bin/env bash
# rockspec/check.sh -- proves the rockspec builds and installs a loadable module,
# with the command a user types and no variables (no CURL_INCDIR=...):
#
#   1. luarocks lint rockspec/commsease-scm-1.rockspec, and its source list is
#      exactly src/core/*.c + src/lua/*.c
#   2. for Lua 5.4 and 5.1 (OpenResty's LuaJIT loads 5.1 modules):
#        luarocks --lua-version=V --tree=<tmp> make --deps-mode=none <rockspec>
#      --tree keeps the system tree clean; --deps-mode=none because Debian ships
#      lua-cjson as a Debian package, which LuaRocks cannot see (it would fetch a
#      second copy from a rocks server, and none is reachable here)
#   3. require "commsease" from that tree on lua5.4, on lua5.1 and on luajit, with a
#      known-answer CheckSum and a check that the module came from the tree
#
# The build runs in a copy of src/ so no objects or commsease.so land in the
# working tree.  Environment: LUAROCKS (default luarocks), ROCKSPEC_LUAS (default
# "5.4 5.1"), LUAJIT (default luajit), KEEP_TREE=1 keeps the temporary directory.
set -euo pipefail

cd "$(dirname "$0")/.."
LUAROCKS=${LUAROCKS:-luarocks}
LUA=${LUA:-lua5.4} # reads the rockspec
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

mkdir -p "$work/src"
cp -R src rockspec "$work/src/"

# require "commsease" from tree $1 (Lua version $2) with interpreter $3
load_check() {
  local tree=$1 v=$2 lua=$3 so="$1/lib/lua/$2/commsease.so"
  echo "rockspec-check: $lua -e 'require \"commsease\"' from the $v tree"
  LUA_CPATH="$tree/lib/lua/$v/?.so;;" LUA_PATH="$tree/share/lua/$v/?.lua;;" EXPECT="$so" "$lua" -e '
    local m = require "commsease"
    assert(type(m) == "table" and type(m.new) == "function", "commsease did not load as a module table")
    local where = os.getenv("EXPECT")
    local found = package.searchpath and package.searchpath("commsease", package.cpath)
    if found then assert(found == where, "loaded " .. found .. ", not the tree'"'"'s module") end
    assert(m.checksum("secret", "12345", "1508481877") == "2f45bdd8cc89d97631345e9fcba98184de732ae2",
           "known-answer CheckSum vector failed")
    print("rockspec-check: loaded " .. m._VERSION .. " on " .. (rawget(_G, "jit") and jit.version or _VERSION)
          .. " from " .. where)
  ' || fail "the installed module does not load on $lua"
}

for v in ${ROCKSPEC_LUAS:-5.4 5.1}; do
  tree="$work/tree-$v"
  echo "rockspec-check: luarocks --lua-version=$v --tree=<tmp> make --deps-mode=none $ROCKSPEC"
  (cd "$work/src" && "$LUAROCKS" --lua-version="$v" --tree="$tree" make --deps-mode=none "$ROCKSPEC") \
    || fail "luarocks make for Lua $v"
  [ -f "$tree/lib/lua/$v/commsease.so" ] || fail "luarocks make did not install $tree/lib/lua/$v/commsease.so"
  command -v "lua$v" >/dev/null && load_check "$tree" "$v" "lua$v"
  if [ "$v" = 5.1 ] && command -v "${LUAJIT:-luajit}" >/dev/null; then
    load_check "$tree" "$v" "${LUAJIT:-luajit}"
  fi
done

echo "rockspec-check: OK"
