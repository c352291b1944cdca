#!/usr/bin/env bash
# Runs one packaging suite (test/packaging/test_SUITE.py) with Debian's pytest. Exits 77 (meson: SKIP)
# with the reason when the suite cannot run here: not root (it installs packages or uses chroot), or
# a tool it needs is missing.
# Usage: test/packaging/run.sh SUITE [ARCH]   (ARCH for the cross suite: arm64 or armhf)
set -uo pipefail
suite=$1
here=$(cd "$(dirname "$0")" && pwd)
skip() { echo "SKIP packaging/$suite: $*"; exit 77; }
arch=${2:-}
case $suite in
  deb)
    [ "$(id -u)" -eq 0 ] || skip "needs root (it installs the package); CI runs it as root"
    for t in dpkg-buildpackage dh lintian apt-get setpriv; do command -v $t >/dev/null || skip "no $t"; done
    if dpkg-query -W -f='${Status}' meshgate 2>/dev/null | grep -q 'ok installed'; then
      skip "the meshgate package is installed on this machine already; the test will not touch it"
    fi ;;
  rpm)
    for t in rpmbuild rpmlint rpm2cpio cpio; do command -v $t >/dev/null || skip "no $t"; done ;;
  cross)
    export MESHGATE_CROSS_ARCH=$arch
    gnu=$( [ "$arch" = arm64 ] && echo aarch64-linux-gnu || echo arm-linux-gnueabihf )
    for t in "$gnu-g++" "$( [ "$arch" = arm64 ] && echo qemu-aarch64 || echo qemu-arm )"; do
      command -v "$t" >/dev/null || skip "no $t (scripts/install-deps.sh cross-$arch installs it)"
    done ;;
  systemd)
    # Boots systemd in a container on an overlay of this machine's root (test_systemd.py); the host
    # keeps its own package database and /etc.
    [ "$(id -u)" -eq 0 ] || skip "needs root (mounts an overlay, boots a container); CI runs it as root"
    for t in dpkg-buildpackage dh lintian mount umount nsenter; do command -v $t >/dev/null || skip "no $t"; done
    command -v systemd-nspawn >/dev/null ||
      skip "no systemd-nspawn (package systemd-container: scripts/install-deps.sh test installs it)"
    [ -x /lib/systemd/systemd ] || skip "no /lib/systemd/systemd on this machine's root to boot"
    grep -qw overlay /proc/filesystems || modprobe -q overlay 2>/dev/null ||
      skip "no overlay file system in this kernel"
    if dpkg-query -W -f='${Status}' meshgate 2>/dev/null | grep -q 'ok installed'; then
      skip "the meshgate package is installed on this machine already; the test will not touch it"
    fi ;;
  static)
    [ "$(id -u)" -eq 0 ] || skip "needs root (chroot into an empty root); CI runs it as root"
    for t in unshare chroot file readelf; do command -v $t >/dev/null || skip "no $t"; done ;;
esac
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider "$here/test_$suite.py"
