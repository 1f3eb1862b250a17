#!/usr/bin/env bash
# testsummary.sh passes `go test -v` output through and, at the end, prints
# how many tests passed, failed and were skipped (integration tests by name),
# failing when go test failed.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
tee "$log"
status=0
pass=$(grep -cE '^\s*--- PASS' "$log" || true)
fail=$(grep -cE '^\s*--- FAIL' "$log" || true)
skip=$(grep -cE '^\s*--- SKIP' "$log" || true)
echo
echo "integration tests run against ClickHouse:"
grep -E '^\s*--- (PASS|FAIL): TestIntegration' "$log" | sed 's/^/  /' || echo "  (none)"
if grep -qE '^(FAIL|panic:)' "$log"; then status=1; fi
if [ "$fail" -gt 0 ]; then status=1; fi
echo
echo "tests: $pass passed, $fail failed, $skip skipped"
exit "$status"
