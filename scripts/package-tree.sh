#!/usr/bin/env bash
# Copies the project's source tree (what git tracks plus new files it does not ignore; the whole tree
# less build directories when this is not a git checkout) into DEST. Used by the package builds, so
# that a package is built from the working tree as it is and never from stale build directories.
# Usage: scripts/package-tree.sh DEST
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=$1
rm -rf "$dest"
mkdir -p "$dest"
cd "$root"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
  done | tar --null -T - -cf - | tar -xf - -C "$dest"
else
  tar --exclude='./build*' --exclude='./.git' --exclude='*/node_modules' -cf - . | tar -xf - -C "$dest"
fi
