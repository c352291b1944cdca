#!/usr/bin/python3
"""Includes run one way (docs/architecture.md, "Layers"): every #include "folder/..." in src/ names a
folder below the including file's own, never one beside or above it, with the two exceptions the
architecture states (client/, mesh/ and nats/ may use queue/'s event and remote-queue types, and both backbones
implement cluster/'s interface; nats/ sends the mesh's frame bodies, mesh/mesh_wire.h). Prints each
include that runs the wrong way and exits 1 if there is any.

    test/lint/check_layers.py [SRC_DIR]
"""
import os
import re
import sys

# Lower numbers are lower layers. Files directly in src/ are named by their stem.
LEVEL = {
    "core": 0, "static": 0,
    "net": 1,
    "ws": 2,
    "http": 3, "dashboard": 3,
    "client": 4, "queue": 4, "cluster": 4, "mesh": 4, "nats": 4,
    "route": 5, "api": 5,
    "hub": 6, "start_check": 6,
    "cli": 7,
    "main": 8,
}
# Same-level includes that are part of the design: (from, to).
ALLOWED_SIDEWAYS = {("client", "queue"), ("mesh", "queue"), ("nats", "queue"), ("cluster", "queue"),
                    ("mesh", "cluster"), ("nats", "cluster"), ("nats", "mesh"), ("hub", "start_check"), ("main", "start_check")}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def part_of(path_in_src):
    parts = path_in_src.split("/")
    if len(parts) > 1:
        return parts[0]
    stem = os.path.splitext(parts[0])[0]
    return "hub" if stem.startswith("hub_") else stem  # hub_metrics.cpp and the like: the hub, split by job


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "src")
    wrong, unknown = [], set()
    for dirpath, _, files in os.walk(src):
        for name in files:
            if not name.endswith((".h", ".cpp")):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), src)
            me = part_of(rel)
            if me not in LEVEL:
                unknown.add(me)
                continue
            with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                text = f.read()
            for inc in INCLUDE.findall(text):
                target = part_of(inc)
                if target == me or target not in LEVEL:
                    continue  # its own folder, or a generated/system header
                if LEVEL[target] < LEVEL[me]:
                    continue
                if LEVEL[target] == LEVEL[me] and (me, target) in ALLOWED_SIDEWAYS:
                    continue
                wrong.append(f"{rel}: #include \"{inc}\" ({target} is not below {me})")
    for w in wrong:
        print(w)
    for u in sorted(unknown):
        print(f"src/{u}: a part with no layer in test/lint/check_layers.py: give it one")
    return 1 if wrong or unknown else 0


if __name__ == "__main__":
    sys.exit(main())
