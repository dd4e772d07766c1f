"""The replay backend: answers made elsewhere (by hand, by another system) scored by assay.

The answers below are the kinds the hand-made comparison report collected from web demos:
code wrapped in prose, a function defined but never called, a program printing wrong values,
verbose and hedged classification answers, a chatty QA answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assay.backends.registry import load_backend, parse_model
from assay.errors import BackendError, ConfigError
from conftest import run_cli

FIB_PROGRAM_NEVER_CALLED = """Sure! Here is a function that prints the first 10 Fibonacci numbers:

```python
def print_fib():
    a, b = 0, 1
    for _ in range(10):
        print(a)
        a, b = b, a + b
```
This function uses two variables to keep track of the sequence."""

FIB_WRONG = "```python\na, b = 1, 1\nfor _ in range(10):\n    print(a)\n    a, b = b, a + b\n```"

ADD_IN_PROSE = """To sum two numbers you can write:

def add(a, b):
    return a + b

Calling add(2, 3) gives 5."""


def _answers(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(model: str | None = None) -> list[dict]:
    rows = [
        {"task": "core_code", "id": "code-001", "answer": ADD_IN_PROSE},
        {"task": "core_code", "id": "code-033", "answer": FIB_PROGRAM_NEVER_CALLED},
        {"task": "core_code", "id": "code-032", "answer": FIB_WRONG},
        {"task": "core_sentiment", "id": "cls-001", "prompt": "ask", "answer": "The text seems to be a positive review of the film."},
        {"task": "core_sentiment", "id": "cls-002", "prompt": "ask", "answer": "I have mixed feelings, but overall it is negative."},
        {"task": "core_qa", "id": "qa-001", "answer": "Sure! The answer is 1742."},
    ]
    if model:
        rows = [{**r, "model": model} for r in rows]
    return rows


def _samples(run: Path, label: str, task: str) -> dict[str, dict]:
    lines = (run / "samples" / label / f"{task}.jsonl").read_text().splitlines()
    return {s["doc_id"]: s for s in map(json.loads, lines)}


def test_replayed_answers_get_the_same_extraction_sandbox_and_metrics(tmp_path, data_dir):
    answers = _answers(tmp_path / "demo-answers.jsonl", _rows())
    run = tmp_path / "run"
    p = run_cli("run", "-m", f"replay:{answers}", "-t", "core_code,core_sentiment,core_qa", "-o", str(run))
    assert p.returncode == 0, p.stderr
    assert "core_code: 3 of 42 items have an answer" in p.stderr
    res = json.loads((run / "results.json").read_text())
    label = "demo-answers.jsonl"
    by_task = res["results"][label]
    assert by_task["core_code"]["n_items"] == 3
    # add() in prose passes; a stdout program that only defines a function prints nothing; wrong values fail
    code = _samples(run, label, "core_code")
    assert code["code-001"]["verdict"] == "correct"
    assert code["code-033"]["verdict"] == "wrong"
    assert code["code-032"]["verdict"] == "wrong"
    assert by_task["core_code"]["metrics"]["pass@1"]["value"] == pytest.approx(1 / 3)
    sent = _samples(run, label, "core_sentiment")
    assert sent["cls-001"]["extracted"] == "positive" and sent["cls-001"]["verdict"] == "correct"
    assert sent["cls-002"]["verdict"] == "wrong"  # gold is positive; the answer settles on negative
    assert by_task["core_sentiment"]["n_items"] == 2
    qa = _samples(run, label, "core_qa")
    assert qa["qa-001"]["extracted"] == "1742" and qa["qa-001"]["verdict"] == "correct"
    assert res["models"][label]["backend"] == "replay"


def test_one_file_holds_several_systems(tmp_path, data_dir):
    answers = _answers(tmp_path / "report.jsonl", _rows("alpaca-lora") + _rows("falcon-40b")[:1])
    run = tmp_path / "run"
    p = run_cli("run", "-m", f"replay:{answers},model=alpaca-lora", "-m", f"replay:{answers},model=falcon-40b", "-t", "core_code", "-o", str(run))
    assert p.returncode == 0, p.stderr
    res = json.loads((run / "results.json").read_text())
    assert res["results"]["alpaca-lora"]["core_code"]["n_items"] == 3
    assert res["results"]["falcon-40b"]["core_code"]["n_items"] == 1
    # without model=, a file with several systems is ambiguous
    p = run_cli("run", "-m", f"replay:{answers}", "-t", "core_code", "-o", str(tmp_path / "r2"))
    assert p.returncode == 2 and "several models" in p.stderr and "Traceback" not in p.stderr


def test_replay_cannot_serve_likelihood_tasks(tmp_path, data_dir):
    answers = _answers(tmp_path / "a.jsonl", _rows())
    p = run_cli("run", "-m", f"replay:{answers}", "-t", "copa", "-o", str(tmp_path / "run"))
    assert p.returncode == 2
    assert "cannot serve loglikelihood" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"task": "core_code", "answer": "x"}', "a.jsonl:2: missing field 'id'"),
        ("not json", "a.jsonl:2: not valid JSON"),
        ('{"task": "core_code", "id": "code-001", "answer": 5}', "a.jsonl:2: field 'answer' must be a string"),
        ('{"task": "core_code", "id": "code-001", "answer": "y"}', "a.jsonl:2: a second answer"),
    ],
)
def test_bad_answer_files_name_the_line(tmp_path, line, message):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"task": "core_code", "id": "code-001", "answer": "x"}) + "\n" + line + "\n")
    with pytest.raises(BackendError, match=message.replace("(", r"\(")):
        load_backend(parse_model(f"replay:{path}"))


def test_unknown_model_in_file_lists_the_known_ones(tmp_path):
    path = _answers(tmp_path / "a.jsonl", _rows("mpt-7b-chat"))
    with pytest.raises(ConfigError, match="models in the file: mpt-7b-chat"):
        load_backend(parse_model(f"replay:{path},model=pythia"))


def test_a_jsonl_target_defaults_to_replay(tmp_path):
    spec = parse_model(str(_answers(tmp_path / "x.jsonl", _rows())))
    assert spec.backend == "replay" and spec.label == "x.jsonl"
