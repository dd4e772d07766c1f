"""What one sandboxed program costs (start, run ``pass``, tear down), per isolation mode.

Runs N trivial programs one after another under each isolation and prints the mean wall time
per program. With ``--against SRC`` it runs the same measurement with another checkout's
``src`` (say the code before a change) and prints both side by side with their ratio.

    .venv/bin/python bench/sandbox_overhead.py -n 30
    .venv/bin/python bench/sandbox_overhead.py -n 30 --against /tmp/old/src
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

MODES = ("namespaces", "rlimits", "off")


def measure(n: int, modes: list[str]) -> dict[str, float]:
    from assay.scoring.sandbox import ISOLATION_MODES, Limits, run_python

    out = {}
    warnings.simplefilter("ignore")
    for mode in modes:
        if mode not in ISOLATION_MODES:
            continue
        run_python("pass", limits=Limits(isolation=mode))  # warm the page cache
        t0 = time.perf_counter()
        for _ in range(n):
            r = run_python("pass", limits=Limits(isolation=mode))
            if r.status != "ok":
                sys.exit(f"{mode}: {r.reason}")
        out[mode] = (time.perf_counter() - t0) / n
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=30, help="programs per mode (30)")
    ap.add_argument("--against", metavar="SRC", help="another checkout's src folder to compare")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    mine = measure(a.n, list(MODES))
    if a.json:
        print(json.dumps(mine))
        return
    if not a.against:
        for mode, s in mine.items():
            print(f"{mode:>10}: {s * 1000:7.1f} ms per program")
        return
    p = subprocess.run([sys.executable, __file__, "-n", str(a.n), "--json"], capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": a.against}, check=True)
    other = json.loads(p.stdout)
    print(f"{'mode':>10}  {'this src':>10}  {'--against':>10}  ratio")
    for mode, s in mine.items():
        o = other.get(mode)
        theirs = f"{o * 1000:8.1f}ms" if o else "       n/a"
        ratio = f"{s / o:.2f}" if o else "n/a"
        print(f"{mode:>10}  {s * 1000:8.1f}ms  {theirs}  {ratio}")


if __name__ == "__main__":
    main()
