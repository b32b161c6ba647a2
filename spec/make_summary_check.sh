#!/bin/sh
# spec/make_summary_check.sh -- checks make test's closing summary of the busted runs
# (`make summary-check`): one line per run, with its counts, and a line for a run that
# should have happened and did not (its build failed), never an empty summary. It runs
# `make test` itself with a stand-in for busted (it prints a busted closing line) and,
# for the missing runs, a prerequisite that cannot be made; the module in the default
# build dir is built first if need be.
set -u
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
fake="$dir/busted"
printf '#!/bin/sh\necho "3 successes / 1 failure / 0 errors / 0 pending : 0.1 seconds"\nexit 1\n' >"$fake"
chmod +x "$fake"
bad=0
check() { # check WHAT OUTPUT REGEX
  if printf '%s\n' "$2" | grep -Eq "$3"; then
    echo "summary-check: ok: $1"
  else
    echo "summary-check: FAILED: $1 (no line matching '$3' in):"
    printf '%s\n' "$2" | sed -n '/^== make test: the busted runs/,$p'
    bad=1
  fi
}
run() { make --no-print-directory test TEST_SUMMARY_FILE="$dir/summary.txt" BUSTED="$fake" "$@" 2>&1; }

out=$(run TEST_STEPS="test-busted")
check "a busted run's counts" "$out" '^[^ ]+ [^ ]+: +busted: 3 passed, 1 failed$'

out=$(run TEST_STEPS="test-busted test-luas" LUAS="5.4" SPEC_NEEDS=no-such-target)
check "test-busted that never ran busted" "$out" '^test-busted: +busted did not run'
check "a runtime of test-luas that never ran busted" "$out" '^test-lua-5\.4: +busted did not run'

out=$(run TEST_STEPS="deps-check")
check "no busted step at all" "$out" '^\(none in TEST_STEPS\)$'
exit $bad
