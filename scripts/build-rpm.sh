#!/usr/bin/env bash
# `make rpm`: builds the RPM from packaging/rpm/meshgate.spec with rpmbuild, then runs rpmlint on it.
# On Debian (no rpm database of the build dependencies) rpmbuild runs with --nodeps and the Fedora
# macros come from packaging/rpm/macros.debian. Output: $OUT/meshgate-<version>-<release>.<arch>.rpm
# (OUT defaults to build-pkg/rpm) and $OUT/rpmlint.txt. Fails when rpmlint reports an error.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/build-pkg/rpm}
spec=$root/packaging/rpm/meshgate.spec
version=$(sed -n 's/^Version:[[:space:]]*//p' "$spec")
top=$out/rpmbuild

rm -rf "$top"
mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}
"$root/scripts/package-tree.sh" "$top/meshgate-$version"
tar -C "$top" -czf "$top/SOURCES/meshgate-$version.tar.gz" "meshgate-$version"
rm -rf "${top:?}/meshgate-$version"
cp "$root/packaging/systemd/meshgate.sysusers" "$top/SOURCES/"

args=(--define "_topdir $top" --define "_smp_build_ncpus ${JOBS:-2}")
if ! rpm --eval '%{?systemd_post:yes}' | grep -q yes; then
  args+=(--nodeps --define "_meshgate_rpmdir $root/packaging/rpm" --load "$root/packaging/rpm/macros.debian")
fi
rm -f "$out"/meshgate-*.rpm
rpmbuild -bb "${args[@]}" "$spec" >"$out/build.log" 2>&1 || {
  tail -n 40 "$out/build.log" >&2
  echo "meshgate: rpmbuild failed; the whole log is $out/build.log" >&2
  exit 1
}
find "$top/RPMS" -name 'meshgate-*.rpm' -exec mv {} "$out/" \;
rm -rf "$top"
rpm=$(ls "$out"/meshgate-"$version"-*.rpm)
echo "meshgate: built $rpm"
# rpmlint exits 64 when it finds errors (66 with badness over the threshold); its warnings are listed
# with reasons in docs/packaging.md.
rpmlint -c "$root/packaging/rpm/rpmlint.toml" -r "$root/packaging/rpm/rpmlintrc" "$rpm" "$spec" >"$out/rpmlint.txt" 2>&1 && rc=0 || rc=$?
cat "$out/rpmlint.txt"
if [ $rc -ne 0 ]; then
  echo "meshgate: rpmlint reported errors (exit $rc) on $rpm" >&2
  exit 1
fi
