"""llama.cpp's thread count on a busy machine, side by side in one run: the old default
(``n_threads`` = every CPU of the machine) against the default assay now chooses (the CPUs
of the affinity mask and cgroup quota that other processes leave free), with one busy-loop
process per CPU running throughout, and other runs alternating so that both variants see the
same background load.

    .venv/bin/python bench/speed/threads.py [--task copa] [--limit 20] [--rounds 1] [--busy N]

Prints each run's wall time, its thread count (from results.json) and score, and checks that
the stored log-likelihoods of every variant are identical (threads do not change numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# every figure here is computed, never answered by the response cache shared by runs
os.environ["ASSAY_CACHE"] = "off"


def run(model: str, task: str, limit: int, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "assay.cli", "run", "-m", model, "-t", task, "--limit", str(limit), "-o", str(out), "-q"]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    doc = json.loads((out / "results.json").read_text())
    (label, per_task), = doc["results"].items()
    score = per_task[task]["metrics"][per_task[task]["primary"]]["value"]
    db = sqlite3.connect(out / "store.sqlite")
    try:
        info = json.loads(db.execute("SELECT info FROM models").fetchone()[0])
        results = dict(db.execute("SELECT req_key, result FROM responses"))
    finally:
        db.close()
    return {"wall": wall, "score": score, "threads": info.get("args", {}).get("n_threads"), "results": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--task", default="copa")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--busy", type=int, default=os.cpu_count() or 1, help="busy-loop processes (default: one per CPU)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "threads")
    a = ap.parse_args()
    variants = {f"old default (n_threads={os.cpu_count()})": f"{a.model},n_threads={os.cpu_count()}", "new default": a.model, "n_threads=1": f"{a.model},n_threads=1"}
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(a.busy)]
    rows: dict[str, list[dict]] = {k: [] for k in variants}
    try:
        time.sleep(5)  # let the load average see the busy loops, as it would see other users
        for _ in range(a.rounds):
            for name, model in variants.items():
                r = run(model, a.task, a.limit, a.out / name.split(" (")[0].replace(" ", "_").replace("=", ""))
                rows[name].append(r)
                print(f"{name:28} threads={r['threads']}  {r['wall']:7.1f} s  score {r['score']:.4f}", flush=True)
    finally:
        for p in busy:
            p.kill()
            p.wait()
    first = next(iter(rows.values()))[0]["results"]
    same = all(r["results"] == first for rs in rows.values() for r in rs)
    print(f"\n{a.task} --limit {a.limit}, {a.busy} busy-loop process(es) on {os.cpu_count()} CPUs:")
    for name, rs in rows.items():
        walls = [r["wall"] for r in rs]
        print(f"  {name:28} threads={rs[0]['threads']}  median wall {sorted(walls)[len(walls) // 2]:7.1f} s")
    print(f"  stored log-likelihoods identical across thread counts: {same}")


if __name__ == "__main__":
    main()
