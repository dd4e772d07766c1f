"""How much ``run_many`` gains from running sandboxes in parallel.

Runs N programs that each sleep or compute for S seconds, with ``workers=1`` and then with
``workers=W`` (default: 2), and prints both wall times and their ratio. Sleeping programs show
the overlap of the sandboxes themselves; computing programs (a busy loop until S seconds of
CPU time) can gain at most the number of free cores.

    .venv/bin/python bench/sandbox_parallel.py                 # 40 programs, 0.5 s, 1 vs 2
    .venv/bin/python bench/sandbox_parallel.py -n 20 --kind compute --workers 4
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from assay.scoring.sandbox import Limits, run_many

PROGRAMS = {
    "sleep": "import time\ntime.sleep({s})\nprint('done')\n",
    "compute": "import time\nt = time.process_time()\nn = 0\n"
               "while time.process_time() - t < {s}:\n    n += 1\nprint('done')\n",
}


def timed(sources: list[str], workers: int) -> float:
    t0 = time.perf_counter()
    results = run_many(sources, workers=workers, limits=Limits(timeout_s=30, cpu_s=30))
    wall = time.perf_counter() - t0
    bad = [r for r in results if r.status != "ok" or r.stdout != "done\n"]
    if bad:
        sys.exit(f"{len(bad)} of {len(results)} programs failed, e.g. {bad[0].reason}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=40, help="number of programs (40)")
    ap.add_argument("--seconds", type=float, default=0.5, help="each program's work (0.5)")
    ap.add_argument("--workers", type=int, default=2, help="parallel workers to compare (2)")
    ap.add_argument("--kind", default="sleep,compute", help="sleep, compute or both (default)")
    args = ap.parse_args()
    probe = run_many(["pass"])[0]
    print(f"cores usable: {len(os.sched_getaffinity(0))}, isolation: {probe.isolation}, "
          f"overhead of one empty program: {probe.duration_s:.3f}s")
    for kind in args.kind.split(","):
        sources = [PROGRAMS[kind].format(s=args.seconds)] * args.n
        serial = timed(sources, 1)
        parallel = timed(sources, args.workers)
        print(f"{kind:8s} {args.n} x {args.seconds}s: workers=1 {serial:.2f}s, "
              f"workers={args.workers} {parallel:.2f}s, ratio {serial / parallel:.2f}")


if __name__ == "__main__":
    main()
