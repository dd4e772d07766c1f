"""``--executor ray`` on a real two-node Ray cluster, started on this machine's loopback
addresses (head 127.0.0.2, second node 127.0.0.3; Ray turns 127.0.0.1 into the machine's
network address, so it is not used) and torn down after: the embedded SmolLM2 on llama.cpp
and on transformers gives the same results.json and samples as a local run; a replica killed
mid-run costs nothing; a driver killed mid-run resumes without recomputing anything.

A replica with ``num_cpus=1`` computes with one thread, and the Ray runs use ``-b 4``; torch's
float32 sums depend on the thread count and on a batch's padding in their last bits, so the
transformers reference runs with ``n_threads=1`` and ``-b 4`` too (llama.cpp's numbers depend
on neither; the choices made never do)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DATA, run_cli

ray = pytest.importorskip("ray", reason="--executor ray needs the ray extra (make test installs it)")

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("data_dir")]

# no token file, no usage statistics sent anywhere: a cluster for this machine only
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
TASKS = "core,xcopa_it"
XCOPA_LIMIT = 20
XCOPA_REQUESTS = XCOPA_LIMIT * 4 * 2  # xcopa_it: 4 prompts, 2 choices each


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray"))


class Cluster:
    """Two Ray nodes of one CPU each, as a user starts them (``ray start --block``, so each
    node's processes share a process group that teardown ends)."""

    def __init__(self, tmp: Path):
        self.port = _free_port()
        self.address = f"127.0.0.2:{self.port}"
        self.env = {**os.environ, **RAY_ENV}
        self.procs: list[subprocess.Popen] = []
        self.log = tmp / "ray.log"
        self.tmp = tmp

    def _node(self, *args: str, ip: str) -> None:
        ports = []
        for name in ("--node-manager-port", "--object-manager-port", "--min-worker-port", "--metrics-export-port", "--dashboard-agent-listen-port",
                     "--dashboard-agent-grpc-port", "--runtime-env-agent-port"):
            ports += [name, str(_free_port())]
        ports += ["--max-worker-port", str(int(ports[ports.index("--min-worker-port") + 1]) + 40)]
        with open(self.log, "a") as log:
            self.procs.append(subprocess.Popen(
                [_ray_bin(), "start", "--block", "--num-cpus", "1", "--node-ip-address", ip, "--disable-usage-stats", *ports, *args],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            ))

    def start(self) -> None:
        self._node("--head", "--port", str(self.port), "--include-dashboard=false", ip="127.0.0.2")
        self.wait_nodes(1)
        self._node("--address", self.address, ip="127.0.0.3")
        self.wait_nodes(2)

    def nodes(self) -> list[str]:
        code = (f"import ray, json; ray.init(address={self.address!r}, _node_ip_address='127.0.0.2', log_to_driver=False, logging_level='ERROR');"
                "print(json.dumps([n['NodeManagerAddress'] for n in ray.nodes() if n['Alive']]))")
        try:
            out = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return []
        return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else []

    def wait_nodes(self, n: int) -> None:
        deadline = time.time() + 180
        while time.time() < deadline:
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"a ray node exited: {self.log.read_text()[-2000:]}")
            if len(self.nodes()) >= n:
                return
            time.sleep(1)
        raise RuntimeError(f"the Ray cluster did not reach {n} nodes: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        for p in reversed(self.procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("ray"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


def _cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "assay.cli", *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **RAY_ENV, "ASSAY_DATA_DIR": str(DATA), "COLUMNS": "200"},
    )


def _outcome(run_dir: Path) -> tuple[dict, dict[str, list[dict]]]:
    """The metrics of results.json and every sample file, without what may differ between two
    runs of the same plan (times, the folder, the compute sessions)."""
    doc = json.loads((run_dir / "results.json").read_text())
    metrics = {lbl: {t: r["metrics"] for t, r in by_task.items()} for lbl, by_task in doc["results"].items()}
    samples = {}
    for f in sorted((run_dir / "samples").rglob("*.jsonl")):
        samples[str(f.relative_to(run_dir / "samples"))] = [json.loads(line) for line in f.read_text().splitlines()]
    return {"metrics": metrics, "groups": doc.get("groups")}, samples


def _store(run_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{run_dir / 'store.sqlite'}?mode=ro", uri=True, timeout=30)


def _workers(run_dir: Path) -> dict[str, dict]:
    """Where each compute session ran (empty while the run has not made its store)."""
    try:
        with _store(run_dir) as db:
            return {k.removeprefix("worker:"): json.loads(v) for k, v in db.execute("SELECT key, value FROM meta WHERE key LIKE 'worker:%'")}
    except sqlite3.Error:
        return {}


def _log(run_dir: Path) -> list[tuple[str, str]]:
    try:
        with _store(run_dir) as db:
            return db.execute("SELECT req_key, session FROM compute_log").fetchall()
    except sqlite3.Error:
        return []


@pytest.fixture(scope="module")
def local_runs(tmp_path_factory):
    """The reference: the same plans run in this machine's one process (no Ray)."""
    root = tmp_path_factory.mktemp("local")
    out = {}
    for name, model in (("llamacpp", "smollm2-135m-instruct"), ("hf", "hf:smollm2-135m-instruct,n_threads=1")):
        proc = run_cli("run", "-m", model, "-t", TASKS, "--limit", "2", "-o", str(root / name), "--no-cache", "-b", "4")
        assert proc.returncode == 0, proc.stderr
        out[name] = root / name
    xcopa = root / "xcopa"
    proc = run_cli("run", "-m", "smollm2-135m-instruct", "-t", "xcopa_it", "--limit", str(XCOPA_LIMIT), "-o", str(xcopa), "--no-cache")
    assert proc.returncode == 0, proc.stderr
    out["xcopa"] = xcopa
    return out


@pytest.mark.parametrize("backend,model", [("llamacpp", "smollm2-135m-instruct"), ("hf", "hf:smollm2-135m-instruct")])
def test_two_node_cluster_equals_a_local_run(cluster, local_runs, tmp_path, backend, model):
    out = tmp_path / "ray"
    proc = _cli("run", "-m", f"{model},replicas=2", "-t", TASKS, "--limit", "2", "-o", str(out), "--no-cache",
                "--executor", f"ray:{cluster.address}", "-b", "4")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert _outcome(out) == _outcome(local_runs[backend])
    assert "code answers as Ray tasks" in proc.stderr  # (notes go to stderr) core_code's programs ran on the cluster
    # both nodes computed, every request once, and the compute log says where
    workers = _workers(out)
    assert {w["node_ip"] for w in workers.values()} == {"127.0.0.2", "127.0.0.3"}
    assert all(w["backend"] == backend and w["pid"] != os.getpid() and w["versions"]["python"] for w in workers.values())
    log = _log(out)
    assert len(log) == len({k for k, _ in log}) > 0
    assert {s for _, s in log} <= set(workers)


def _wait_for(pred, timeout: float = 300, proc: subprocess.Popen | None = None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError("the run ended before the moment the test waits for")
        time.sleep(0.2)
    raise AssertionError("timed out")


def _popen(*args: str, log: Path) -> subprocess.Popen:
    """A run in the background, its output in ``log``.out / ``log``.err (files, not pipes: a
    full pipe would stop the run while the test waits)."""
    return subprocess.Popen(
        [sys.executable, "-m", "assay.cli", *args], stdout=open(f"{log}.out", "w"), stderr=open(f"{log}.err", "w"), text=True,  # noqa: SIM115
        env={**os.environ, **RAY_ENV, "ASSAY_DATA_DIR": str(DATA), "COLUMNS": "200"},
    )


def _output(log: Path) -> tuple[str, str]:
    return Path(f"{log}.out").read_text(), Path(f"{log}.err").read_text()


def _stored(run_dir: Path) -> int:
    return len(_log(run_dir))


@pytest.fixture
def procs():
    """Runs a test starts; any still running when it ends (a failed test) are killed, so they
    do not hold the cluster's CPUs for the next test."""
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_a_replica_killed_mid_run_loses_only_its_batches_in_flight(cluster, local_runs, tmp_path, procs):
    out = tmp_path / "kill-worker"
    proc = _popen("run", "-m", "smollm2-135m-instruct,replicas=2", "-t", "xcopa_it", "--limit", str(XCOPA_LIMIT), "-o", str(out), "--no-cache",
                  "--executor", f"ray:{cluster.address}", "-b", "1", log=tmp_path / "run")
    procs.append(proc)
    # once both replicas have stored a batch, SIGKILL the process of one of them
    workers = _wait_for(lambda: len(_workers(out)) == 2 and {s for _, s in _log(out)} == set(_workers(out)) and _workers(out), proc=proc)
    victim = sorted(workers.values(), key=lambda w: w["node_ip"])[1]
    os.kill(victim["pid"], signal.SIGKILL)
    proc.wait(timeout=600)
    stdout, stderr = _output(tmp_path / "run")
    assert proc.returncode == 0, stderr + stdout
    assert "was lost" in stderr and f"pid {victim['pid']}" in stderr
    assert _outcome(out) == _outcome(local_runs["xcopa"])
    log = _log(out)
    assert len(log) == len({k for k, _ in log}) == XCOPA_REQUESTS, "a request was computed and stored twice, or not at all"


def test_a_killed_driver_resumes_without_recomputing(cluster, local_runs, tmp_path, procs):
    out = tmp_path / "kill-driver"
    args = ("run", "-m", "smollm2-135m-instruct,replicas=2", "-t", "xcopa_it", "--limit", str(XCOPA_LIMIT), "-o", str(out), "--no-cache",
            "--executor", f"ray:{cluster.address}", "-b", "1")
    proc = _popen(*args, log=tmp_path / "run")
    procs.append(proc)
    _wait_for(lambda: _stored(out) >= 10, proc=proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _stored(out)
    assert 0 < before < XCOPA_REQUESTS
    # the same command again, with another number of replicas: the same folder, nothing recomputed
    again = _cli(*[a.replace("replicas=2", "replicas=1") for a in args])
    assert again.returncode == 0, again.stderr + again.stdout
    assert f"{before} already stored, {XCOPA_REQUESTS - before} to compute" in again.stderr
    assert _outcome(out) == _outcome(local_runs["xcopa"])
    log = _log(out)
    assert len(log) == len({k for k, _ in log}) == XCOPA_REQUESTS


def test_a_model_that_does_not_load_on_a_replica_is_one_line(cluster, tmp_path):
    proc = _cli("run", "-m", f"llamacpp:{tmp_path / 'missing.gguf'},replicas=2", "-t", "copa", "--limit", "2", "-o", str(tmp_path / "r"),
                "--executor", f"ray:{cluster.address}")
    assert proc.returncode != 0
    assert "did not load" in proc.stderr and "missing.gguf" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()


def test_a_placement_no_node_can_hold_is_refused(cluster, tmp_path):
    proc = _cli("run", "-m", "smollm2-135m-instruct,num_gpus=1", "-t", "copa", "--limit", "2", "-o", str(tmp_path / "r"),
                "--executor", f"ray:{cluster.address}")
    assert proc.returncode != 0
    assert "no node of the Ray cluster has 1 CPU(s) and 1 GPU(s)" in proc.stderr and "Traceback" not in proc.stderr
