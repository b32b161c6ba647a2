#!/bin/sh
# spec/run-busted.sh BUSTED-COMMAND... -- runs busted, shows its output, and ends
# with the plain closing line "busted: N passed, N failed" (errors count as failed).
# A run that ends without busted's own summary (the runner crashed, a spec file
# did not load before busted could count it) fails, and says so.
# Environment: TEST_SUMMARY (a file; `make test` sets it) gets the closing line,
# prefixed with BUSTED_LABEL (default: the command), for the run's final summary.
log=$(mktemp) || exit 1
trap 'rm -f "$log"' EXIT
"$@" >"$log" 2>&1
rc=$?
cat "$log"
line=$(awk '/^[0-9]+ success(es)? \/ [0-9]+ failures? \/ [0-9]+ errors? \// { printf "busted: %d passed, %d failed\n", $1, $4 + $7 }' "$log" | tail -n 1)
if [ -z "$line" ]; then
  line="busted: no summary from busted (exit status $rc): the run did not finish"
  [ "$rc" = 0 ] && rc=1
fi
echo "$line"
if [ -n "${TEST_SUMMARY:-}" ]; then
  printf '%-40s %s\n' "${BUSTED_LABEL:-$*}:" "$line" >>"$TEST_SUMMARY"
fi
exit $rc
