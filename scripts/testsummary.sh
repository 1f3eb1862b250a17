#!/usr/bin/env bash
# testsummary.sh passes `go test -v` output through and, at the end, prints
# how many tests passed, failed and were skipped (integration tests by name).
# It only prints: the caller takes the exit status from go test itself
# (`set -o pipefail` in the Makefile).
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
tee "$log"
pass=$(grep -cE '^\s*--- PASS' "$log" || true)
fail=$(grep -cE '^\s*--- FAIL' "$log" || true)
skip=$(grep -cE '^\s*--- SKIP' "$log" || true)
echo
echo "integration tests run against ClickHouse:"
grep -E '^\s*--- (PASS|FAIL): TestIntegration' "$log" | sed 's/^/  /' || echo "  (none)"
echo
echo "tests: $pass passed, $fail failed, $skip skipped"
