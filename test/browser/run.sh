#!/usr/bin/env bash
# meshgate's real-browser test: installs playwright-core (pinned by package-lock.json) when needed,
# checks for Debian's Chromium, and runs browser_test.mjs against $MESHGATE_BIN.
# Usage: MESHGATE_BIN=build/meshgate bash test/browser/run.sh [SCRIPT]   (meson runs it as the tests
# 'browser' with browser_test.mjs, the default, and 'dashboard' with dashboard_test.mjs)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

# Node and npm from PATH (here: the nodejs package, which brings npm), else Debian's paths.
node="$(command -v node || echo /usr/bin/node)"
npm="$(command -v npm || echo /usr/bin/npm)"
[ -x "$node" ] || { echo "browser test: node not found (scripts/install-deps.sh test)" >&2; exit 1; }
# playwright-core 1.65 needs Node >= 20 (Debian 12's own nodejs is 18: use NodeSource's nodejs 20+).
node_major="$("$node" -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || { echo "browser test: $node is Node $node_major, playwright-core needs Node >= 20" >&2; exit 1; }
chromium="${CHROMIUM_BIN:-/usr/bin/chromium}"
[ -x "$chromium" ] || { echo "browser test: $chromium not found (apt-get install chromium, or scripts/install-deps.sh test)" >&2; exit 1; }

# npm ci when node_modules is missing or older than the lockfile (npm ci writes node_modules/.package-lock.json).
if [ ! -f node_modules/.package-lock.json ] || [ ! -d node_modules/playwright-core ] \
   || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  [ -x "$npm" ] || { echo "browser test: npm not found (scripts/install-deps.sh test)" >&2; exit 1; }
  echo "browser test: npm ci in $here"
  "$npm" ci --no-audit --no-fund >&2
fi

export MESHGATE_BIN="${MESHGATE_BIN:-$here/../../build/meshgate}"
export CHROMIUM_BIN="$chromium"
exec "$node" "${1:-browser_test.mjs}"
