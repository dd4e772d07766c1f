"""Hub loads when the hub cannot be reached: a model in the local Hugging Face cache loads,
anything else fails at once in one line that says what to do, with none of huggingface_hub's
five retries (1 min 40 s before). The hub endpoint is a closed loopback port."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA

pytest.importorskip("transformers")

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    """A tiny Llama in the hub cache's layout, as `hf download assay-test/tiny` leaves it."""
    from llama_layout import tiny_llama

    folder = tiny_llama(tmp_path_factory.mktemp("tiny"))
    cache = tmp_path_factory.mktemp("hub")
    repo = cache / "models--assay-test--tiny"
    shutil.copytree(folder, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return cache


def _assay(args: list[str], cache: Path, cwd: Path, offline: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_OFFLINE")) and k.lower() not in ("https_proxy", "all_proxy")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}", HF_HUB_CACHE=str(cache), HF_DATASETS_CACHE=str(cwd / "ds-cache"), ASSAY_DATA_DIR=str(DATA))
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run([sys.executable, "-m", "assay.cli", *args], capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


@pytest.mark.hf
def test_a_cached_model_loads_and_an_uncached_one_fails_at_once(hub_cache, tmp_path):
    proc = _assay(["run", "-m", "hf:assay-test/tiny", "-t", "copa", "--limit", "2", "-o", str(tmp_path / "run"), "--no-cache", "-q"], hub_cache, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("assay: warning: the Hugging Face hub (http://127.0.0.1:") == 1
    assert "load from the local cache only" in proc.stderr and "Retry" not in proc.stderr
    doc = json.loads((tmp_path / "run" / "results.json").read_text())
    (label,) = doc["results"]
    assert doc["results"][label]["copa"]["n_docs"] == 2 and doc["models"][label]["args"]
    proc = _assay(["run", "-m", "hf:assay-test/absent", "-t", "copa", "--limit", "2", "-o", str(tmp_path / "run2")], hub_cache, tmp_path)
    assert proc.returncode == 2 and "Retry" not in proc.stderr and "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("assay: error:")]
    assert errors == ["assay: error: assay-test/absent is not in the local Hugging Face cache and the hub (http://127.0.0.1:"
                      + errors[0].split("http://127.0.0.1:")[1].split(")")[0]
                      + ") cannot be reached: download it where the hub can be reached (hf download assay-test/absent), or give a local folder or GGUF file"]
    # HF_HUB_OFFLINE set by the user: no probe, no warning, the same advice naming the setting
    proc = _assay(["run", "-m", "hf:assay-test/absent", "-t", "copa", "--limit", "2", "-o", str(tmp_path / "run3")], hub_cache, tmp_path, offline=True)
    assert proc.returncode == 2 and "warning" not in proc.stderr
    assert "assay: error: assay-test/absent is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: download it" in proc.stderr


def test_an_uncached_hub_dataset_fails_at_once_saying_what_to_do(tmp_path):
    pytest.importorskip("datasets")
    task = tmp_path / "hubtask.yaml"
    task.write_text("task: hubtask\noutput_type: multiple_choice\ndataset:\n  hub: {id: no-org/no-dataset}\nsplit: validation\n"
                    "choices: '[a, b]'\ntarget: label\nprompts:\n  - id: p\n    template: '{{ q }}'\nmetrics: [acc]\n")
    proc = _assay(["validate", str(task)], tmp_path, tmp_path)
    assert proc.returncode == 2 and "Retry" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "assay: error: hub dataset no-org/no-dataset is not in the local Hugging Face cache and the hub (http://127.0.0.1:" in proc.stderr
    assert "give the task a local copy (dataset.local)" in proc.stderr
