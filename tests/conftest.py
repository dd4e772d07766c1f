"""Shared fixtures: the real benchmark data, the embedded models, and a way to run the CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ASSAY_DATA_DIR") or ROOT.parent / "shared" / "data").resolve()
os.environ["ASSAY_DATA_DIR"] = str(DATA)
# Each test computes what it checks: the shared response cache is off unless a test names one
# (tests/store/test_cache.py), so no test is answered by another test's responses.
os.environ["ASSAY_CACHE"] = "off"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "llamacpp" in item.keywords or "hf" in item.keywords:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "MANIFEST.md").is_file():
        pytest.skip(f"the shared benchmark data is not at {DATA} (set ASSAY_DATA_DIR)")
    return DATA


def _embedded_smollm2(model: str, module: str, extra: str):
    pytest.importorskip(module, reason=f"{module} is not installed (pip install 'assay[{extra}]')")
    from assay.backends.registry import load_backend, parse_model

    b = load_backend(parse_model(model))
    yield b
    b.close()


@pytest.fixture(scope="session")
def smollm2_llamacpp():
    yield from _embedded_smollm2("smollm2-135m-instruct", "llama_cpp", "llamacpp")


@pytest.fixture(scope="session")
def smollm2_hf():
    yield from _embedded_smollm2("hf:smollm2-135m-instruct", "transformers", "hf")


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real `assay` command in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "assay.cli", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd,
        env={**os.environ, "ASSAY_DATA_DIR": str(DATA), "COLUMNS": "200"},
    )


@lru_cache(maxsize=1)
def manifest(root: Path) -> dict[str, tuple[str, int]]:
    """The shared data's MANIFEST.md file tables: path -> (sha256, example count)."""
    out = {}
    for line in (root / "MANIFEST.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        sha = next((i for i, c in enumerate(cells) if re.fullmatch(r"[0-9a-f]{64}", c)), None)
        if sha is not None and sha + 1 < len(cells) and re.fullmatch(r"[\d,]+", cells[sha + 1]):
            out[cells[0]] = (cells[sha], int(cells[sha + 1].replace(",", "")))
    return out


def kill_assay_when(args: list[str], ready, cwd: Path | None = None, timeout: float = 300, poll: float = 0.1) -> None:
    """Start the real `assay` command and SIGKILL it as soon as ``ready()`` is true (for
    example: so many responses stored); fails when the run ends first."""
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "assay.cli", *args], cwd=cwd, env={**os.environ, "ASSAY_DATA_DIR": str(DATA)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline and not ready() and proc.poll() is None:
        time.sleep(poll)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
