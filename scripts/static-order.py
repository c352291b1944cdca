#!/usr/bin/python3
"""Write the symbol ordering file of the static x86_64 build (packaging/static/x86_64.order).

The static binary's idle memory is mostly pages of its own code (docs/benchmarks.md, issue 10): start-up
runs about 0.7 MB of functions spread over the whole 4 MB of text, and the kernel maps 64 KiB or more
around every page it faults in, so nearly all of the text ends up resident. Linked with lld and this
file (-Dsymbol_order=..., which scripts/build-static.sh passes), the sections holding those functions
are placed together at the start of .text, and a fresh node touches (and keeps) only that part.

How the list is made: the unstripped static binary (scripts/build-static.sh leaves it in
build-pkg/static/build-x86_64/meshgate) runs under valgrind's callgrind with the shipped configuration
until /healthz answers, stays idle --idle seconds, and the instructions it ran up to then are dumped
(the shutdown is not part of it). Each executed address is mapped to its function (nm); glibc chooses
its string functions by CPU (ifunc) and valgrind's CPU is not the host's, so every variant of such a
function is listed. Functions are written in address order. Symbols a later build no longer has are
ignored by lld; new start-up code missing from the list only lands elsewhere (more resident pages, the
same behaviour): run this again when bench/footprint.sh shows the static binary's RssFile growing.

    scripts/static-order.py [--binary build-pkg/static/build-x86_64/meshgate] [--out packaging/static/x86_64.order]

Needs valgrind; uses the shipped configuration's fixed ports (6789, 5001, 5100, 5200, 5300).
"""
import argparse
import bisect
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANT = re.compile(r"^(__\w+?)_(sse2|ssse3|sse4|sse42|avx|avx2|avx512|evex|erms|unaligned)")


def functions(binary):
    syms = []
    out = subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        p = line.split()
        if len(p) == 4 and p[2] in "tTwWiI":
            syms.append((int(p[0], 16), int(p[1], 16), p[3]))
    syms.sort()
    return syms


def profile(binary, conf, idle, tmp):
    out = os.path.join(tmp, "cg.out")
    log = open(os.path.join(tmp, "log"), "w")
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--dump-instr=yes", "--compress-pos=no",
                             "--compress-strings=no", "--callgrind-out-file=" + out, binary, "-c", conf],
                            stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "STATE_DIRECTORY": tmp})  # the shipped store = disk needs one
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen("http://127.0.0.1:6789/healthz", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    sys.exit("meshgate under callgrind did not answer /healthz: see " + log.name)
                time.sleep(0.2)
        time.sleep(idle)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        for _ in range(100):
            if os.path.exists(out + ".1"):
                break
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    return out + ".1"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build-pkg/static/build-x86_64/meshgate"))
    ap.add_argument("--conf", default=os.path.join(ROOT, "conf/meshgate.conf"))
    ap.add_argument("--out", default=os.path.join(ROOT, "packaging/static/x86_64.order"))
    ap.add_argument("--idle", type=float, default=5.0)
    args = ap.parse_args()
    syms = functions(args.binary)
    starts = [s[0] for s in syms]
    with tempfile.TemporaryDirectory(prefix="static-order-") as tmp:
        dump = profile(args.binary, args.conf, args.idle, tmp)
        hit = {}
        with open(dump) as f:
            for line in f:
                if line.startswith("0x"):
                    a = int(line.split()[0], 16)
                    i = bisect.bisect_right(starts, a) - 1
                    if i >= 0 and syms[i][0] <= a < syms[i][0] + syms[i][1]:
                        hit.setdefault(syms[i][2], syms[i][0])
    families = {m.group(1) for n in hit for m in [VARIANT.match(n)] if m}
    for a, _, n in syms:
        if any(n.startswith(f + "_") for f in families):
            hit.setdefault(n, a)
    with open(args.out, "w") as f:
        f.write("# Functions a fresh static x86_64 node runs up to idle, for lld --symbol-ordering-file.\n"
                "# Generated by scripts/static-order.py (see there); do not edit by hand.\n")
        f.writelines(n + "\n" for n, _ in sorted(hit.items(), key=lambda kv: kv[1]))
    print(f"{args.out}: {len(hit)} functions ({len(families)} glibc ifunc families)")


if __name__ == "__main__":
    main()
