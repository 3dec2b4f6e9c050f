#!/usr/bin/env bash
# The end of a CI log (.ci/run): the failures of both runs again, where a truncated log still shows
# them, and one line "N passed, N failed" for both. Usage: ci-summary.sh <npm test exit status>
# <dev-server log> <cluster log>.
set -uo pipefail
status=$1 dev_log=$2 cluster_log=$3
summary() { grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" 2>/dev/null | tail -1 || echo "0 passed, 1 failed"; }
failures() { sed -n '/^Failures (/,/^[0-9]* passed, [0-9]* failed$/p' "$1" 2>/dev/null | grep -vE '^[0-9]+ passed, [0-9]+ failed$' || true; }
dev=$(summary "$dev_log")
cluster=$(summary "$cluster_log")
failures "$dev_log"
failures "$cluster_log"
# npm test can fail with every test passing: a coverage threshold, tsc, or an install step. Say
# why, and count it as one failure so the summary line agrees with the exit status.
if [ "$status" -ne 0 ] && [ "$(echo "$dev" | cut -d' ' -f3)" = "0" ]; then
  echo "npm test exited $status with no failed test:"
  sed 's/\x1b\[[0-9;]*m//g' "$dev_log" | grep -E '^Jest: |error TS[0-9]+|^npm ERR' | tail -20 || true
  dev="$(echo "$dev" | cut -d' ' -f1) passed, 1 failed"
fi
echo "dev server: $dev; Temporal cluster: $cluster"
echo "$(( $(echo "$dev" | cut -d' ' -f1) + $(echo "$cluster" | cut -d' ' -f1) )) passed, $(( $(echo "$dev" | cut -d' ' -f3) + $(echo "$cluster" | cut -d' ' -f3) )) failed"
