#!/usr/bin/env bash
# `make deb`: builds the Debian package from packaging/debian/ with debhelper, then runs lintian on it.
# Output: $OUT/meshgate_<version>_<arch>.deb (OUT defaults to build-pkg/deb) and $OUT/lintian.txt.
# Fails when lintian reports an error; its warnings are listed with reasons in docs/packaging.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/build-pkg/deb}
version=$(dpkg-parsechangelog -l "$root/packaging/debian/changelog" -S Version)
upstream=${version%-*}
src=$out/meshgate-$upstream

"$root/scripts/package-tree.sh" "$src"
cp -a "$root/packaging/debian" "$src/debian"
rm -f "$out"/meshgate_*.deb "$out"/meshgate-dbgsym_*.deb "$out"/meshgate_*.buildinfo "$out"/meshgate_*.changes
(cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=${JOBS:-2}" dpkg-buildpackage -b -us -uc >"$out/build.log" 2>&1) || {
  tail -n 40 "$out/build.log" >&2
  echo "meshgate: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
  exit 1
}
rm -rf "$src"
deb=$(ls "$out"/meshgate_"$version"_*.deb)
echo "meshgate: built $deb"
# lintian exits non-zero on errors (its default --fail-on error). Tags we accept are in
# packaging/debian/lintian-accepted with the reason for each; the same list is in docs/packaging.md.
lintian --info --no-tag-display-limit "$deb" >"$out/lintian.txt" 2>&1 && rc=0 || rc=$?
cat "$out/lintian.txt"
if [ $rc -ne 0 ]; then
  echo "meshgate: lintian reported errors on $deb" >&2
  exit 1
fi
