"""What ``--executor ray`` costs and gains, side by side in one run, on one Ray cluster started
for the bench on this machine's loopback (127.0.0.2) and stopped after:

1. **Overhead**: the embedded SmolLM2 (llama.cpp) on the same plan, computed in the run's own
   process and by one Ray replica with the same threads. The compute phase (the run's
   "computed N requests in S s") is compared; Ray's start-up is reported apart.
2. **Replicas on this machine**: 1 process with every CPU's threads against ``replicas=N``
   of one thread each (N = the CPUs this process may use).
3. **Many replicas of a slow model**: the mock model with ``latency=S`` (each batch waits S
   seconds, like a remote GPU's round trip, without using a CPU) on 1, 2, 4, ... 32 replicas:
   throughput, speed-up over one replica and efficiency (speed-up / replicas), which is what
   the driver's scheduling and storing cost as replicas are added.

Every variant's results.json metrics are checked equal to the local run's.

    .venv/bin/python bench/scale/run.py [--task xcopa_it] [--limit 100] [--rounds 2]
        [--latency 0.2] [--max-replicas 32] [--only overhead,replicas,latency]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out" / "scale"
# every figure here is computed, never answered by the response cache shared by runs; the
# cluster is for this machine only (no token file, no usage statistics sent)
ENV = {**os.environ, "ASSAY_CACHE": "off", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
ENV.setdefault("ASSAY_DATA_DIR", str((ROOT.parent / "shared" / "data").resolve()))
COMPUTED = re.compile(r"computed (\d+) requests in ([0-9.]+)s")


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(n_cpus: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    ray = str(Path(sys.executable).with_name("ray"))
    log = open(OUT / "ray.log", "w")  # noqa: SIM115  (open for the cluster's life)
    proc = subprocess.Popen([ray, "start", "--block", "--head", "--node-ip-address", "127.0.0.2", "--port", str(port), "--num-cpus", str(n_cpus),
                             "--include-dashboard=false", "--disable-usage-stats"], env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"127.0.0.2:{port}"
    code = f"import ray; ray.init(address={address!r}, _node_ip_address='127.0.0.2', logging_level='ERROR', log_to_driver=False)"
    for _ in range(120):
        if proc.poll() is not None:
            raise SystemExit(f"ray start failed: {(OUT / 'ray.log').read_text()[-2000:]}")
        if subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, timeout=60).returncode == 0:
            return proc, address
        time.sleep(1)
    raise SystemExit("the Ray head did not come up")


def stop_cluster(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def run(name: str, model: str, task: str, limit: int, batch: int, executor: str | None) -> dict:
    out = OUT / name
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "assay.cli", "run", "-m", model, "-t", task, "--limit", str(limit), "-o", str(out), "-b", str(batch)]
    if executor:
        cmd += ["--executor", executor]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env={**ENV, "COLUMNS": "200"})
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    m = COMPUTED.search(p.stderr)  # notes go to stderr
    if not m:
        raise SystemExit(f"no compute line in the output of {' '.join(cmd)}:\n{p.stderr[-2000:]}")
    doc = json.loads((out / "results.json").read_text())
    metrics = {t: r["metrics"] for by in doc["results"].values() for t, r in by.items()}
    return {"n": int(m.group(1)), "compute": float(m.group(2)), "wall": wall, "metrics": metrics}


def best(rounds: list[dict]) -> dict:
    """The median round (by compute time), so one disturbed round does not decide."""
    return sorted(rounds, key=lambda r: r["compute"])[len(rounds) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--task", default="xcopa_it")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--latency", type=float, default=0.2, help="seconds each mock batch waits")
    ap.add_argument("--latency-limit", type=int, default=100, help="documents of the latency task (2 requests each)")
    ap.add_argument("--max-replicas", type=int, default=32)
    ap.add_argument("--only", default="overhead,replicas,latency")
    a = ap.parse_args()
    only = set(a.only.split(","))
    OUT.mkdir(parents=True, exist_ok=True)
    n = cpus()
    # the cluster reserves the CPUs the bench may use (the mock replicas reserve none)
    proc, address = start_cluster(n)
    ex = f"ray:{address}"
    lines: list[str] = []
    try:
        if only & {"overhead", "replicas"}:
            rounds: dict[str, list[dict]] = {}
            variants = {"local": (f"{a.model},n_threads={n}", None)}
            if "overhead" in only:
                variants["ray, 1 replica"] = (f"{a.model},n_threads={n},num_cpus={n}", ex)
            if "replicas" in only and n > 1:
                variants[f"ray, {n} replicas x 1 thread"] = (f"{a.model},replicas={n},num_cpus=1", ex)
            for r in range(a.rounds):  # alternate, so every variant sees the same background
                for name, (model, executor) in variants.items():
                    rounds.setdefault(name, []).append(run(f"{re.sub(r'[^a-z0-9]+', '-', name)}-{r}", model, a.task, a.limit, a.batch, executor))
            ref = best(rounds["local"])
            lines.append(f"## {a.model} on {a.task}, {ref['n']} requests, -b {a.batch}, {n} CPUs, median of {a.rounds} round(s)")
            lines.append(f"{'variant':34} {'compute s':>10} {'ratio':>7} {'wall s':>8} {'req/s':>7}  same metrics")
            for name, rs in rounds.items():
                b = best(rs)
                same = all(x["metrics"] == ref["metrics"] for x in rs)
                lines.append(f"{name:34} {b['compute']:10.2f} {b['compute'] / ref['compute']:7.3f} {b['wall']:8.1f} {b['n'] / b['compute']:7.1f}  {same}")
            print("\n".join(lines), flush=True)
        if "latency" in only:
            reps = [r for r in (1, 2, 4, 8, 16, 32, 64) if r <= a.max_replicas]
            lines.append("")
            lines.append(f"## mock model, latency {a.latency}s per batch, copa x {a.latency_limit} documents, -b 2 (one item per batch)")
            lines.append(f"{'replicas':>8} {'compute s':>10} {'req/s':>8} {'speed-up':>9} {'efficiency':>10}  same metrics")
            base = None
            ref_metrics = None
            for r in reps:
                res = run(f"latency-{r}", f"mock:m,latency={a.latency},replicas={r},num_cpus=0", "copa", a.latency_limit, 2, ex)
                ref_metrics = ref_metrics or res["metrics"]
                base = base or res["compute"]
                speed = base / res["compute"]
                lines.append(f"{r:8d} {res['compute']:10.2f} {res['n'] / res['compute']:8.1f} {speed:9.2f} {speed / r:10.2f}  {res['metrics'] == ref_metrics}")
                print(lines[-1], flush=True)
    finally:
        stop_cluster(proc)
    text = "\n".join(lines)
    (OUT / "summary.txt").write_text(text + "\n")
    print()
    print(text)
    print(f"\n(written to {OUT / 'summary.txt'})")


if __name__ == "__main__":
    main()
