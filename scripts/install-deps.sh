#!/usr/bin/env bash
# Installs the Debian packages meshgate needs to build, run, test and package, and nothing that is
# already there.
# Usage: scripts/install-deps.sh [build|test|deb|rpm|static|cross-arm64|cross-armhf]
#   build  what `meson setup && ninja` needs
#   test   build + what `make test` uses (its suites also build the packages and static binaries)
#   deb, rpm, static, cross-ARCH   build + what that package or binary needs (docs/packaging.md)
set -euo pipefail

build_pkgs=(g++ meson ninja-build pkg-config libuv1-dev libwslay-dev libcjson-dev libssl-dev libinih-dev node-llhttp)
test_pkgs=(libgtest-dev python3 python3-pytest python3-websockets iproute2 chromium)
deb_pkgs=(debhelper lintian dpkg-dev)
rpm_pkgs=(rpm rpmlint cpio)
# Static binaries: Debian's static archives (.a) of libuv, OpenSSL, inih and c-ares come with their
# -dev packages; cJSON is compiled from its Debian source package (apt-get source, needs deb-src).
static_pkgs=(libc-ares-dev dpkg-dev)
# The browser test (test/browser/) runs Node with npm: Debian's nodejs and npm unless both are already
# there (NodeSource's nodejs package brings its own npm and conflicts with Debian's npm package).
command -v node >/dev/null || test_pkgs+=(nodejs)
command -v npm >/dev/null || test_pkgs+=(npm)

mode=${1:-build}
want=("${build_pkgs[@]}")
case $mode in
  build) ;;
  test) want+=("${test_pkgs[@]}" "${deb_pkgs[@]}" "${rpm_pkgs[@]}" "${static_pkgs[@]}") ;;
  deb) want+=("${deb_pkgs[@]}") ;;
  rpm) want+=("${rpm_pkgs[@]}") ;;
  static) want+=("${static_pkgs[@]}") ;;
  cross-*) want+=("${static_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|deb|rpm|static|cross-arm64|cross-armhf]" >&2; exit 2 ;;
esac

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
