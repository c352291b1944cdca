#!/usr/bin/env bash
# Installs the Debian packages meshgate needs to build, run and test, and nothing that is already there.
# Usage: scripts/install-deps.sh [build|test]   (test = build + what the test suites use)
set -euo pipefail

build_pkgs=(g++ meson ninja-build pkg-config libuv1-dev libwslay-dev libcjson-dev libssl-dev libinih-dev node-llhttp)
# systemd: systemd-analyze rates the shipped unit (test_systemd.py); prometheus: promtool checks
# /metrics and the alert rules (test_monitoring.py).
test_pkgs=(libgtest-dev python3 python3-pytest python3-websockets iproute2 chromium systemd prometheus curl)
# The browser test (test/browser/) runs Node with npm: Debian's nodejs and npm unless both are already
# there (NodeSource's nodejs package brings its own npm and conflicts with Debian's npm package).
command -v node >/dev/null || test_pkgs+=(nodejs)
command -v npm >/dev/null || test_pkgs+=(npm)

want=("${build_pkgs[@]}")
[ "${1:-build}" = test ] && want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "meshgate: installing missing packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "meshgate: run as root or install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
