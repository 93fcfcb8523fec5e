#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs every test: the lit suite
# (dialect, verifiers, passes, PTX, malformed-input fuzzing) and the check
# that docs/generated matches the ODS it is generated from.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${NSA_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh" || exit 1

failed=0
log=$(mktemp)
/usr/lib/llvm-22/bin/lit -v "$build/test" 2>&1 | tee "$log"
lit_rc=${PIPESTATUS[0]}
passed=$(awk '/^ *Passed *:/ {print $2}' "$log")
lit_failed=$(awk '/^ *(Failed|Unresolved|Timed Out) *:/ {n += $2} END {print n + 0}' "$log")
rm -f "$log"
passed=${passed:-0}
[ "$lit_rc" -eq 0 ] || failed=1

if "$root/scripts/gen-docs.sh" --check; then
  passed=$((passed + 1))
else
  lit_failed=$((lit_failed + 1)); failed=1
fi

echo "${passed} passed, ${lit_failed} failed"
exit $failed
