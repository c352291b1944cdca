#!/usr/bin/env bash
# Runs every test suite through meson and ends with one plain summary line: "N passed, N failed".
set -uo pipefail
build=${1:-build}
meson test -C "$build" --print-errorlogs
rc=$?
/usr/bin/python3 - "$build/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): passed += 1
    elif r == "SKIP": skipped += 1
    else: failed += 1
print(f"meson: {passed} passed, {failed} failed, {skipped} skipped")
PY
exit $rc
