"""The built-in core suite: sizes the issue asks for, gold data that is self-consistent, and
hidden tests that accept the reference solutions and reject wrong ones."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from assay.scoring.code import check_many

DATA = Path(__file__).resolve().parents[2] / "src" / "assay" / "tasks" / "builtin" / "core" / "data"


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def test_sizes_and_balance():
    code, cls, ner, qa = (_rows(f) for f in ("code.jsonl", "classification.jsonl", "ner.jsonl", "qa.jsonl"))
    assert len(code) >= 30 and len(cls) >= 60 and len(ner) >= 40 and len(qa) >= 40
    for rows in (code, cls, ner, qa):
        assert len({r["id"] for r in rows}) == len(rows)
    tasks = Counter(r["task"] for r in cls)
    assert tasks["sentiment"] >= 30 and tasks["topic"] >= 30
    assert len({r["lang"] for r in cls}) >= 5
    assert Counter(r["label"] for r in cls if r["task"] == "topic").keys() == {"politics", "economy", "sports", "entertainment"}
    assert Counter(r["difficulty"] for r in qa) == {"simple": 20, "hard": 20}


def test_gold_spans_occur_in_their_texts():
    for r in _rows("ner.jsonl"):
        assert r["entities"], r["id"]
        for e in r["entities"]:
            assert e["type"] in ("PER", "LOC", "ORG") and e["text"] in r["text"], (r["id"], e)
    for r in _rows("qa.jsonl"):
        assert all(a in r["context"] for a in r["answers"]), r["id"]


def test_reference_solutions_pass_and_wrong_ones_fail():
    code = _rows("code.jsonl")
    jobs, wrong = [], []
    for r in code:
        if r["kind"] == "function":
            jobs.append(("function", {"answer": r["reference"], "test": r["test"], "entry_point": r["entry_point"]}))
            wrong.append(("function", {"answer": f"def {r['entry_point']}(*args, **kwargs):\n    return None\n", "test": r["test"], "entry_point": r["entry_point"]}))
        else:
            jobs.append(("stdout", {"answer": r["reference"], "expected_stdout": r["expected_stdout"]}))
            wrong.append(("stdout", {"answer": "print('hello')", "expected_stdout": r["expected_stdout"]}))
    verdicts = check_many(jobs + wrong)
    good, bad = verdicts[: len(jobs)], verdicts[len(jobs):]
    failing = [(r["id"], v.reason) for r, v in zip(code, good) if not v.passed]
    assert not failing
    assert not any(v.passed for v in bad)


@pytest.mark.parametrize("task", ["core_sentiment", "core_topic", "core_ner", "core_qa", "core_code", "core_sentiment_choice", "core_topic_choice"])
def test_core_tasks_render_every_item(task):
    from assay.config import RunConfig
    from assay.plan import plan_tasks

    (plan,) = plan_tasks(RunConfig(models=("x",), tasks=(task,)))
    assert len(plan.instances) == len(plan.docs.rows) * len(plan.spec.prompts)
    assert all(i.query.strip() for i in plan.instances)
