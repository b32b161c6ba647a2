#!/bin/sh
# spec/memcheck.sh BUILD BUSTED-COMMAND... -- the C unit tests (BUILD/*-test) and the whole busted
# suite under valgrind memcheck (behind `make memcheck`).  Every process valgrind
# runs (the Lua process and the children the fork spec makes; not the emulators
# and servers the specs start, which are other programs) writes its own log to
# BUILD/memcheck/<pid>.log.  Closes with one line:
#   memcheck: N processes, N errors, N bytes definitely lost, N bytes indirectly lost
# and fails if the suite failed or any of those figures is not 0.  The only
# suppressions are in spec/valgrind.supp, each for a library outside this
# project and justified there.
set -u
build=$1
shift
logs=$build/memcheck
rm -rf "$logs"
mkdir -p "$logs"
VALGRIND=${VALGRIND:-valgrind}
vg="$VALGRIND --tool=memcheck --error-exitcode=99 --leak-check=full
    --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
    --track-origins=yes --num-callers=40 --suppressions=spec/valgrind.supp
    --log-file=$logs/%p.log"
status=0
for t in "$build"/*-test; do
  # shellcheck disable=SC2086
  [ -x "$t" ] && { $vg "$t" || status=1; }
done
# shellcheck disable=SC2086
COMMSEASE_BUILD=$build spec/run-busted.sh $vg "$@" || status=1
# shellcheck disable=SC2046
set -- $(cat "$logs"/*.log | tr -d , | awk '
  /ERROR SUMMARY:/ { errors += $4; procs++ }
  /definitely lost:/ { def += $4 }
  /indirectly lost:/ { ind += $4 }
  END { printf "%d %d %d %d\n", procs, errors, def, ind }')
echo "memcheck: $1 processes, $2 errors, $3 bytes definitely lost, $4 bytes indirectly lost" \
     "(logs in $logs/)"
if [ "$2" != 0 ] || [ "$3" != 0 ] || [ "$4" != 0 ]; then
  grep -l -E "ERROR SUMMARY: [1-9]|(definitely|indirectly) lost: [1-9]" "$logs"/*.log >&2
  status=1
fi
exit $status
