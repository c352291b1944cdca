#!/usr/bin/env bash
# Size and idle memory of meshgate binaries (docs/benchmarks.md, "Packages and static binaries").
# For each BINARY: its size in bytes as given (the build scripts strip them), then it is started with
# the shipped configuration (conf/meshgate.conf, unchanged: its fixed ports must be free), left idle
# until /healthz answers plus IDLE seconds (default 5), and its memory read from /proc: VmRSS, RssAnon,
# RssFile and Pss (smaps_rollup). A binary for another architecture is run under its qemu-user
# (qemu-aarch64, qemu-arm), whose own memory is then part of the figures.
# Usage: bench/footprint.sh BINARY...   Prints one Markdown table row per binary.
# With BREAKDOWN=1 each row is followed by what the RSS is made of, from /proc/PID/smaps: one line per
# mapping (the binary's or a library's segments by permission, [heap], thread stacks and arenas as
# [anon], [stack]) with its size, Rss and the anonymous part of it, in kB (mappings with no Rss left out).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
conf=$root/conf/meshgate.conf
idle=${IDLE:-5}
echo "| binary | file | stripped size (bytes) | VmRSS (kB) | RssAnon (kB) | RssFile (kB) | Pss (kB) |"
echo "|---|---|---|---|---|---|---|"
for bin in "$@"; do
  desc=$(file -b "$bin")
  wrap=()
  case $desc in
    *aarch64*) wrap=(qemu-aarch64) ;;
    *"ARM, EABI5"*) wrap=(qemu-arm) ;;
  esac
  work=$(mktemp -d)
  "${wrap[@]}" "$bin" -c "$conf" >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do
    curl -sf -o /dev/null http://127.0.0.1:6789/healthz && break
    kill -0 $pid 2>/dev/null || { cat "$work/log" >&2; exit 1; }
    sleep 0.1
  done
  sleep "$idle"
  st=/proc/$pid/status
  rss=$(awk '/^VmRSS/{print $2}' $st); anon=$(awk '/^RssAnon/{print $2}' $st); filek=$(awk '/^RssFile/{print $2}' $st)
  pss=$(awk '/^Pss:/{print $2}' /proc/$pid/smaps_rollup)
  breakdown=
  if [ "${BREAKDOWN:-0}" = 1 ]; then
    breakdown=$(awk '/^[0-9a-f]+-[0-9a-f]+ /{name = $6 == "" ? "[anon]" : $6; sub(/.*\//, "", name); perm = $2}
                     /^Size:/{size = $2} /^Rss:/{rss = $2}
                     /^Anonymous:/{if (rss) printf "    %-28s %s %8d kB  Rss %6d  anon %6d\n", name, perm, size, rss, $2}' \
                /proc/$pid/smaps)
  fi
  kill -TERM $pid; wait $pid || true
  rm -rf "$work"
  short=$(echo "$desc" | sed 's/, BuildID.*//; s/ELF //')
  echo "| \`${bin#"$root"/}\` | $short | $(stat -c %s "$bin") | $rss | $anon | $filek | $pss |"
  [ -z "$breakdown" ] || echo "$breakdown"
done
