#!/usr/bin/env bash
# Installs the Debian packages meshgate needs to build, run, test and package, and nothing that is
# already there.
# Usage: scripts/install-deps.sh [build|test|deb|rpm|static|cross-arm64|cross-armhf|fuzz]
#   build  what `meson setup && ninja` needs
#   test   build + what `make test` uses (its suites also build the packages and static binaries)
#   deb, rpm, static, cross-ARCH   build + what that package or binary needs (docs/packaging.md)
#   fuzz   build + clang and its libFuzzer runtime, for coverage-guided fuzzing by hand (docs/testing.md)
set -euo pipefail

build_pkgs=(g++ meson ninja-build pkg-config libuv1-dev libwslay-dev libcjson-dev libssl-dev libinih-dev node-llhttp libnats-dev)
# systemd: systemd-analyze rates the shipped unit (test/integration/test_systemd.py); systemd-container:
# systemd-nspawn boots the package's unit under systemd (test/packaging/test_systemd.py); prometheus:
# promtool checks /metrics and the alert rules (test_monitoring.py); nats-server: the three-server NATS
# cluster of the backbone tests (test/integration/nats_cluster.py, test_backbones.py).
test_pkgs=(libgtest-dev python3 python3-pytest python3-websockets iproute2 chromium systemd systemd-container
           prometheus curl nats-server)
deb_pkgs=(debhelper lintian dpkg-dev)
rpm_pkgs=(rpm rpmlint cpio)
# Static binaries: Debian's static archives (.a) of libuv, OpenSSL, inih and c-ares come with their
# -dev packages; cJSON is compiled from its Debian source package (apt-get source, needs deb-src).
# lld links the x86_64 one with its start-up code placed together (packaging/static/x86_64.order).
static_pkgs=(libc-ares-dev dpkg-dev lld)
# Coverage-guided fuzzing (-Dfuzzing=true, by hand): clang with libFuzzer and the sanitizer runtimes.
# The suite `sanitize` of `make test` needs none of it: gcc's ASan and UBSan come with g++.
fuzz_pkgs=(clang libclang-rt-14-dev)
# arm builds: Debian's cross toolchains, qemu-user for their tests, and the static archives of the
# libraries for that architecture (dpkg --add-architecture; all are Multi-Arch: same).
cross_pkgs() {
  local a=$1 gnu
  case $a in arm64) gnu=aarch64-linux-gnu ;; armhf) gnu=arm-linux-gnueabihf ;; *) echo "unknown arch $a" >&2; exit 2 ;; esac
  echo "crossbuild-essential-$a qemu-user libuv1-dev:$a libssl-dev:$a libinih-dev:$a libc-ares-dev:$a libgtest-dev:$a"
}
# The browser test (test/browser/) runs Node with npm: Debian's nodejs and npm unless both are already
# there (NodeSource's nodejs package brings its own npm and conflicts with Debian's npm package).
command -v node >/dev/null || test_pkgs+=(nodejs)
command -v npm >/dev/null || test_pkgs+=(npm)

mode=${1:-build}
want=("${build_pkgs[@]}")
case $mode in
  build) ;;
  test) want+=("${test_pkgs[@]}" "${deb_pkgs[@]}" "${rpm_pkgs[@]}" "${static_pkgs[@]}")
        # shellcheck disable=SC2207
        want+=($(cross_pkgs arm64) $(cross_pkgs armhf)) ;;
  deb) want+=("${deb_pkgs[@]}") ;;
  rpm) want+=("${rpm_pkgs[@]}") ;;
  fuzz) want+=("${fuzz_pkgs[@]}") ;;
  static) want+=("${static_pkgs[@]}") ;;
  cross-*) want+=("${static_pkgs[@]}")
           # shellcheck disable=SC2207
           want+=($(cross_pkgs "${mode#cross-}")) ;;
  *) echo "usage: $0 [build|test|deb|rpm|static|cross-arm64|cross-armhf|fuzz]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# The static builds fetch cJSON's Debian source package: apt needs deb-src lines for that.
need_src=no
case $mode in test|static|cross-*)
  [ -n "$(apt-cache showsrc cjson 2>/dev/null)" ] || need_src=yes ;;
esac
[ ${#missing[@]} -eq 0 ] && [ $need_src = no ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "meshgate: run as root or install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
if [ $need_src = yes ]; then
  # deb-src entries mirroring the machine's Debian deb entries (deb822 or one-line format).
  echo "meshgate: adding deb-src entries for Debian's source packages (apt-get source cjson)"
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
      $sudo tee /etc/apt/sources.list.d/meshgate-deb-src.sources >/dev/null
  else
    grep -h '^deb .*debian' /etc/apt/sources.list | sed 's/^deb /deb-src /' |
      $sudo tee /etc/apt/sources.list.d/meshgate-deb-src.list >/dev/null
  fi
fi
for p in "${missing[@]}"; do
  case $p in *:*)
    a=${p#*:}
    dpkg --print-foreign-architectures | grep -qx "$a" || $sudo dpkg --add-architecture "$a" ;;
  esac
done
echo "meshgate: installing missing packages: ${missing[*]}"
# A mirror in the middle of a sync fails the update now and then ("File has unexpected size"): try
# again, then go on with the indexes that did come (the install says clearly what it cannot find).
for try in 1 2 3; do
  $sudo apt-get update -qq && break
  echo "meshgate: apt-get update failed (try $try of 3)" >&2
  [ $try -lt 3 ] && sleep 15
done
[ ${#missing[@]} -eq 0 ] && exit 0
install() { $sudo apt-get install -y -qq --no-install-recommends "$@" "${missing[@]}"; }
if ! install; then
  # When one architecture's index of the security suite did not come, a library that must have one
  # version on every architecture (libssl3 for amd64 and arm64) has none in common. The release's own
  # suite has the same version for all: take the packages from it this once.
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || exit 1
  echo "meshgate: install failed; trying again from $codename's own suite (-t $codename)" >&2
  install -t "$codename"
fi
