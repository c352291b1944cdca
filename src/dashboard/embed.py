#!/usr/bin/env python3
"""Embeds the dashboard's files into the binary: writes a C++ source holding each file as a byte array
and the table dashboard.cpp serves them from. Run by meson at build time (no npm, no network):

    embed.py OUTPUT.cpp FILE...

Each FILE is served at /dashboard/<its name>, with a content type from its extension; index.html is
also the page at /dashboard itself (dashboard.cpp decides that).
"""
import os
import sys

TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def c_string(data):
    """Bytes as the inside of a C string literal: printable ASCII as is, the rest as 3-digit octal
    escapes (never greedy, unlike hex; portable whether char is signed or not)."""
    out = []
    for b in data:
        c = chr(b)
        out.append(c if 32 <= b < 127 and c not in '"\\?' else f"\\{b:03o}")
    return "".join(out)


def main():
    out, files = sys.argv[1], sys.argv[2:]
    lines = ["// Generated at build time by src/dashboard/embed.py from src/dashboard/*. Do not edit.",
             '#include "dashboard/dashboard.h"', "", "namespace mg {", "namespace {"]
    entries = []
    for i, path in enumerate(files):
        name = os.path.basename(path)
        ext = os.path.splitext(name)[1]
        if ext not in TYPES:
            sys.exit(f"embed.py: no content type for {name}")
        data = open(path, "rb").read()
        lines.append(f"const char k{i}[] =  // {name}")
        lines += [f'    "{c_string(chunk)}"' for chunk in data.splitlines(keepends=True)] or ['    ""']
        lines[-1] += ";"
        entries.append(f'    {{"/dashboard/{name}", "{TYPES[ext]}", k{i}, {len(data)}}},')
    lines += ["}  // namespace", "", "const DashboardAsset kDashboardAssets[] = {", *entries, "};",
              f"const size_t kDashboardAssetCount = {len(files)};", "", "}  // namespace mg", ""]
    with open(out, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
