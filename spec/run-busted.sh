#!/bin/sh
# spec/run-busted.sh BUSTED-COMMAND... -- runs busted, shows its output, and ends
# with the plain closing line "busted: N passed, N failed" (errors count as failed).
log=$(mktemp) || exit 1
trap 'rm -f "$log"' EXIT
"$@" >"$log" 2>&1
rc=$?
cat "$log"
awk '/ successes \/ .* failures \/ .* errors/ { printf "busted: %d passed, %d failed\n", $1, $4 + $7 }' "$log"
exit $rc
