#!/bin/sh
# spec/fuzz/run.sh -- builds the libFuzzer targets with clang (ASan + UBSan)
# into build-fuzz/ and runs each for FUZZ_SECONDS seconds (default 60).
# Not part of `make test`: run `make fuzz` or this script by hand.
#
#   FUZZ_SECONDS=300 spec/fuzz/run.sh              # every target
#   spec/fuzz/run.sh fuzz_core                     # one target
#   FUZZ_JOBS=4 spec/fuzz/run.sh                   # parallel workers per target
#   FUZZ_RUNS=10000000 spec/fuzz/run.sh fuzz_parse # stop after that many executions
#   FUZZ_TIMEOUT=10                                # seconds one input may take (a hang)
#
#   FUZZ_RUNS=10000000 spec/fuzz/run.sh fuzz_json_diff  # a number of executions instead
#
# The corpus of each target grows in build-fuzz/corpus/<target>/ (seeded from
# spec/fuzz/seeds/<target without fuzz_>/); a crash leaves its input in
# build-fuzz/artifacts/<target>/ and makes the script exit non-zero.
# A saved reproducer replays with: build-fuzz/<target> spec/fuzz/crashes/<file>
set -eu

cd "$(dirname "$0")/../.."
CLANG=${CLANG:-clang}
OUT=${FUZZ_BUILD:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-1}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
CFLAGS="-O1 -g -fno-omit-frame-pointer -std=gnu11 -Isrc/core -Isrc/emulator"
LIBS="-lmicrohttpd -lcjson -lcurl -lcrypto -lpthread -lm"

command -v "$CLANG" >/dev/null 2>&1 || {
  echo "run.sh: $CLANG not found (apt-get install -y clang libclang-rt-14-dev)" >&2; exit 2; }

mkdir -p "$OUT/obj"
# the code under test, instrumented for coverage; api.c and main.c are not
# compiled here (the emulator target includes api.c itself; main.c has main)
OBJS=""
for src in src/core/cms_buf.c src/core/cms_rules.c src/core/cms_sign.c src/core/cms_form.c src/core/cms_json.c \
           src/emulator/form.c src/emulator/jsonutil.c src/emulator/state.c \
           src/emulator/faults.c src/emulator/server.c src/emulator/webhook.c; do
  obj="$OUT/obj/$(echo "$src" | tr / _ | sed 's/\.c$/.o/')"
  $CLANG $CFLAGS -fsanitize=fuzzer-no-link $SAN -c "$src" -o "$obj"
  OBJS="$OBJS $obj"
done
CORE_OBJS=$(echo "$OBJS" | tr ' ' '\n' | grep '_core_' | tr '\n' ' ')

build() { # target objects...
  t=$1; shift
  $CLANG $CFLAGS -fsanitize=fuzzer $SAN "spec/fuzz/$t.c" "$@" $LIBS -o "$OUT/$t"
}
build fuzz_core $CORE_OBJS
build fuzz_emulator_form $OBJS

# the module itself (src/core and src/lua) for the targets that embed Lua 5.4
# and drive it through its Lua API: fuzz_parse (commsease.parse) and
# fuzz_encode (tables built from the input through prepare and chunk)
LUA_CFLAGS=${LUA_CFLAGS:-"-I/usr/include/lua5.4"}
LUA_LIBS=${LUA_LIBS:-"-llua5.4"}
MOD_OBJS=""
mkdir -p "$OUT/obj-mod"
for src in src/core/*.c src/lua/*.c; do
  obj="$OUT/obj-mod/$(echo "$src" | tr / _ | sed 's/\.c$/.o/')"
  $CLANG $CFLAGS $LUA_CFLAGS -fPIC -fsanitize=fuzzer-no-link $SAN -c "$src" -o "$obj"
  MOD_OBJS="$MOD_OBJS $obj"
done
build_lua() { # target
  $CLANG $CFLAGS $LUA_CFLAGS -fsanitize=fuzzer $SAN "spec/fuzz/$1.c" $MOD_OBJS \
    $LUA_LIBS -lcjson -lcurl -lcrypto -lhiredis -lm -ldl -o "$OUT/$1"
}
build_lua fuzz_parse
build_lua fuzz_encode
build_lua fuzz_json_diff # the JSON scanner and reader against lua-cjson and cJSON

TARGETS=${*:-fuzz_core fuzz_emulator_form fuzz_parse fuzz_encode fuzz_json_diff}
status=0
for t in $TARGETS; do
  seeds="spec/fuzz/seeds/${t#fuzz_}"
  corpus="$OUT/corpus/$t"
  art="$OUT/artifacts/$t"
  mkdir -p "$corpus" "$art"
  dict=""
  [ -f "spec/fuzz/${t#fuzz_}.dict" ] && dict="-dict=spec/fuzz/${t#fuzz_}.dict"
  echo "== $t: $SECONDS_EACH s, corpus $corpus"
  par=""
  [ "$JOBS" -gt 1 ] && par="-jobs=$JOBS -workers=$JOBS"
  # shellcheck disable=SC2086
  if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
      "$OUT/$t" -max_len=8192 -max_total_time="$SECONDS_EACH" -timeout="${FUZZ_TIMEOUT:-10}" \
      ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} -print_final_stats=1 \
      -artifact_prefix="$art/" $dict $par "$corpus" "$seeds"; then
    echo "== $t: FAILED; inputs in $art/" >&2
    status=1
  fi
done
exit $status
