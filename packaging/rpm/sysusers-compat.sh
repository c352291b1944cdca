#!/bin/sh
# Prints the shell commands that create the users and groups of a sysusers.d(5) file (its `u` and `g`
# lines), the way Fedora's %sysusers_create_compat does. Used by macros.debian at rpmbuild time.
awk '
function q(s) { gsub(/'\''/, "'\''\\'\'''\''", s); return "'\''" s "'\''" }
/^[ \t]*(#|$)/ { next }
{
  line = $0; n = 0
  while (length(line) > 0 && n < 5) {
    sub(/^[ \t]+/, "", line)
    if (line == "") break
    if (substr(line, 1, 1) == "\"") { i = index(substr(line, 2), "\""); f = substr(line, 2, i - 1); line = substr(line, i + 2) }
    else { i = match(line, /[ \t]/); if (i == 0) { f = line; line = "" } else { f = substr(line, 1, i - 1); line = substr(line, i) } }
    a[++n] = f
  }
  home = (a[5] == "" || a[5] == "-") ? "/" : a[5]
  if (a[1] == "g") {
    printf "getent group %s >/dev/null || groupadd -r %s\n", a[2], a[2]
  } else if (a[1] == "u") {
    printf "getent group %s >/dev/null || groupadd -r %s\n", a[2], a[2]
    printf "getent passwd %s >/dev/null || useradd -r -g %s -d %s -s /sbin/nologin -c %s %s\n", a[2], a[2], q(home), q(a[4]), a[2]
  }
  delete a
}' "$1"
