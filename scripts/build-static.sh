#!/usr/bin/env bash
# `make static` / `make cross ARCH=arm64|armhf`: one statically linked meshgate for ARCH, built from
# Debian's static archives (libuv, OpenSSL, inih, c-ares) with the native WebSocket codec, cJSON
# compiled from its Debian source package and llhttp from node-llhttp's sources.
# Output: $OUT/<arch>/meshgate (stripped) and $OUT/build-<arch>/ (the meson build, unstripped binary).
# With TESTS=1 the unit tests are built too and run (under qemu-user for arm).
# Usage: scripts/build-static.sh x86_64|arm64|armhf
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
arch=${1:-x86_64}
out=${OUT:-$root/build-pkg/static}
case $arch in
  x86_64|amd64) arch=x86_64; cross=(); strip=strip ;;
  arm64|aarch64) arch=arm64; cross=(--cross-file "$root/packaging/cross/arm64.ini"); strip=aarch64-linux-gnu-strip ;;
  armhf) cross=(--cross-file "$root/packaging/cross/armhf.ini"); strip=arm-linux-gnueabihf-strip ;;
  *) echo "meshgate: unknown ARCH '$arch' (x86_64, arm64, armhf)" >&2; exit 2 ;;
esac

# cJSON from Debian's source package (Debian's patches applied), fetched once into $out/src.
src=$out/src
if ! ls -d "$src"/cjson-*/cJSON.c >/dev/null 2>&1; then
  mkdir -p "$src"
  (cd "$src" && apt-get -q -o APT::Sandbox::User=root source cjson >"$src/apt-source.log" 2>&1) || {
    cat "$src/apt-source.log" >&2
    echo "meshgate: apt-get source cjson failed (needs deb-src lines: scripts/install-deps.sh static adds them)" >&2
    exit 1
  }
fi
cjson_dir=$(dirname "$(ls -d "$src"/cjson-*/cJSON.c | head -n 1)")

build=$out/build-$arch
tests=false
[ "${TESTS:-0}" = 1 ] && tests=true
# Optimised for size (the goal for a binary dropped on small hosts: ≤ 6 MB), asserts off as in release.
opts=(-Dstatic=true -Dws_codec=native "-Dcjson_src_dir=$cjson_dir" -Dtests=$tests --buildtype=minsize -Db_ndebug=true)
# x86_64: start-up code placed together by lld (packaging/static/x86_64.order, scripts/static-order.py).
order=$root/packaging/static/$arch.order
if [ -f "$order" ]; then opts+=("-Dsymbol_order=$order"); else opts+=(-Dsymbol_order=); fi
if [ -f "$build/build.ninja" ]; then
  # --reconfigure (not meson configure): an option added since the directory was set up is known too.
  meson setup --reconfigure "$build" "${opts[@]}" >"$out/setup-$arch.log" 2>&1 || {
    cat "$out/setup-$arch.log" >&2; exit 1; }
else
  meson setup "$build" "${opts[@]}" "${cross[@]}" >"$out/setup-$arch.log" 2>&1 || {
    cat "$out/setup-$arch.log" >&2; exit 1; }
fi
targets=(meshgate)
if [ "$tests" = true ]; then
  # Only what the unit suite runs (not the fuzz replays or the integration-only binaries).
  # shellcheck disable=SC2207
  targets+=($(meson introspect --tests "$build" | /usr/bin/python3 -c '
import json, os, sys
build = sys.argv[1]
for t in json.load(sys.stdin):
    if any(s.split(":")[-1] == "unit" for s in t["suite"]):
        print(os.path.relpath(t["cmd"][-1] if t["cmd"][0].startswith("qemu") else t["cmd"][0], build))
' "$build"))
fi
ninja -C "$build" -j "${JOBS:-2}" "${targets[@]}"
mkdir -p "$out/$arch"
"$strip" -o "$out/$arch/meshgate" "$build/meshgate"
desc=$(file -b "$out/$arch/meshgate")
case $desc in
  *"statically linked"*) ;;
  *) echo "meshgate: $out/$arch/meshgate is not statically linked: $desc" >&2; exit 1 ;;
esac
echo "meshgate: built $out/$arch/meshgate ($(stat -c %s "$out/$arch/meshgate") bytes): $desc"
if [ "$tests" = true ]; then
  meson test -C "$build" --suite unit --no-rebuild --print-errorlogs
fi
