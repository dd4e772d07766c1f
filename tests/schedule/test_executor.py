"""``--executor``: placement arguments, their one-line errors, a folder's identity that leaves
them out, and a private local Ray instance (no cluster) that gives a local run's results."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest
from conftest import DATA, run_cli

from assay.backends.registry import parse_model
from assay.config import RunConfig, default_run_dir
from assay.errors import ConfigError
from assay.schedule.executor import make_executor
from assay.schedule.placement import Placement, split_placement

pytestmark = pytest.mark.usefixtures("data_dir")


def test_placement_arguments_are_read_before_the_backend_sees_the_model():
    spec, placement = split_placement(parse_model("hf:org/model,dtype=float32,replicas=4,num_gpus=1,num_cpus=2.5"))
    assert placement == Placement(replicas=4, num_cpus=2.5, num_gpus=1.0)
    assert spec.args == {"dtype": "float32"} and spec.text == "hf:org/model,dtype=float32"
    assert split_placement(parse_model("smollm2-135m-instruct"))[1] == Placement()
    with pytest.raises(ConfigError, match="replicas must be a whole number of at least 1"):
        split_placement(parse_model("smollm2-135m-instruct,replicas=0"))


def test_for_a_server_model_replicas_lists_its_servers():
    # openai's replicas=FILE names the file of its servers' URLs: not a number of Ray actors
    spec, placement = split_placement(parse_model("openai:m,replicas=servers.txt,num_cpus=2"))
    assert spec.args == {"replicas": "servers.txt"} and placement == Placement(num_cpus=2.0)


def test_a_folder_is_the_same_with_any_number_of_replicas():
    base = RunConfig(models=("smollm2-135m-instruct",), tasks=("copa",))
    many = RunConfig(models=("smollm2-135m-instruct,replicas=3,num_cpus=1",), tasks=("copa",), executor="ray")
    assert default_run_dir(base, ["smollm2-135m-instruct"]) == default_run_dir(many, ["smollm2-135m-instruct"])
    other = RunConfig(models=("smollm2-135m-instruct,n_ctx=512",), tasks=("copa",))
    assert default_run_dir(other, ["smollm2-135m-instruct"]) != default_run_dir(base, ["smollm2-135m-instruct"])


def test_replicas_without_ray_and_an_unknown_executor_are_one_line(tmp_path):
    proc = run_cli("run", "-m", "mock:m,replicas=2", "-t", "copa", "--limit", "2", "-o", str(tmp_path / "r"))
    assert proc.returncode == 2 and "add --executor ray" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("run", "-m", "mock:m", "-t", "copa", "--limit", "2", "-o", str(tmp_path / "r"), "--executor", "dask")
    assert proc.returncode == 2 and "--executor dask: expected local, ray, or ray:ADDRESS" in proc.stderr
    assert not (tmp_path / "r").exists()
    with pytest.raises(ConfigError):
        make_executor("ray:")


def test_without_the_ray_extra_the_error_names_what_to_install(tmp_path):
    code = "import sys; sys.modules['ray'] = None; from assay.cli import main; sys.exit(main())"
    proc = subprocess.run(
        [sys.executable, "-c", code, "run", "-m", "mock:m", "-t", "copa", "--limit", "2", "-o", str(tmp_path / "r"), "--executor", "ray"],
        capture_output=True, text=True, env={**os.environ, "ASSAY_DATA_DIR": str(DATA)}, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'assay[ray]'" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_private_local_ray_instance_gives_the_local_results(tmp_path):
    pytest.importorskip("ray")
    args = ("run", "-m", "mock:m1,seed=3", "-t", "copa,core_sentiment", "--limit", "6", "--no-cache", "-b", "3")
    local = run_cli(*args, "-o", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run([sys.executable, "-m", "assay.cli", *args, "-o", str(tmp_path / "ray"), "--executor", "ray", "-m", "mock:m2,replicas=2"],
                          capture_output=True, text=True, timeout=300, env={**env, "ASSAY_DATA_DIR": str(DATA), "RAY_AUTH_MODE": "disabled"})
    assert proc.returncode == 0, proc.stderr
    a = json.loads((tmp_path / "local" / "results.json").read_text())["results"]["m1"]
    b = json.loads((tmp_path / "ray" / "results.json").read_text())["results"]
    assert b["m1"] == a and set(b) == {"m1", "m2"}
    with sqlite3.connect(tmp_path / "ray" / "store.sqlite") as db:
        workers = [json.loads(v) for (v,) in db.execute("SELECT value FROM meta WHERE key LIKE 'worker:%'")]
    # one replica for m1, two for m2, all in Ray workers on the loopback node, none in the driver
    assert len(workers) == 3 and {w["node_ip"] for w in workers} == {"127.0.0.2"} and len({w["pid"] for w in workers}) == 3
