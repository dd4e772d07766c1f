"""Tests for assay.tasks.reference: the task-file reference (docs/tasks.md) and JSON Schema
(docs/task.schema.json) are generated from the task spec's models and cannot drift from them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from assay.build import requests_for
from assay.plan import plan_task
from assay.scoring.extract import check_extract
from assay.scoring.metrics import check_metrics
from assay.tasks import reference
from assay.tasks.loader import load_raw, load_task
from assay.tasks.registry import BUILTIN
from conftest import run_cli

jsonschema = pytest.importorskip("jsonschema")

DOCS = Path(__file__).resolve().parents[2] / "docs"
MD, SCHEMA = DOCS / "tasks.md", DOCS / "task.schema.json"
FILE = re.compile(r"^# file: (\S+)$", re.M)
STALE = "is stale: regenerate it with `make docs` (python -m assay.tasks.reference)"


def _validator(ref: str | None = None) -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    if ref:  # one definition of the same document
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{ref}"}
    return jsonschema.Draft202012Validator(schema)


def _errors(v: jsonschema.Draft202012Validator, data: dict) -> list[str]:
    return [f"{e.json_path}: {e.message[:200]}" for e in v.iter_errors(data)]


def test_every_model_reachable_from_taskspec_is_documented():
    models = reference.models()
    names = {m.__name__ for m in models}
    assert names >= {"TaskSpec", "DatasetSpec", "LocalSource", "HubSource", "ConllOptions", "ParallelFile", "PromptSpec",
                     "FewShotSpec", "GenerationSpec", "MetricSpec", "ExtractStep", "ExtractSpec", "CardSpec"}
    undescribed = [f"{m.__name__}.{n}" for m in models for n, f in m.model_fields.items() if not (f.description or "").strip()]
    assert not undescribed, f"fields without a description (Field(..., description=...)): {undescribed}"
    assert all((m.__doc__ or "").strip() for m in models), [m.__name__ for m in models if not (m.__doc__ or "").strip()]
    # every one has a section of the reference, every key a row
    text = MD.read_text(encoding="utf-8")
    for m in models:
        assert f'<a id="{m.__name__.lower()}"></a>' in text
        for n in m.model_fields:
            assert f"| `{n}` |" in text


def test_checked_in_reference_and_schema_are_what_the_generator_writes():
    assert MD.read_text(encoding="utf-8") == reference.markdown(), f"{MD} {STALE}"
    assert SCHEMA.read_text(encoding="utf-8") == reference.schema_text(), f"{SCHEMA} {STALE}"


def test_the_generator_writes_both_files(tmp_path):
    assert reference.main([str(tmp_path)]) == 0
    assert (tmp_path / "tasks.md").read_text(encoding="utf-8") == MD.read_text(encoding="utf-8")
    assert (tmp_path / "task.schema.json").read_text(encoding="utf-8") == SCHEMA.read_text(encoding="utf-8")


def test_assay_schema_task_prints_the_schema_file():
    proc = run_cli("schema", "task")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(json.loads(proc.stdout))


def test_every_builtin_task_file_validates_against_the_schema():
    full, partial = _validator(), _validator("PartialTaskSpec")
    files = sorted(BUILTIN.rglob("*.yaml"))
    assert len(files) > 300
    for path in files:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        # a base (_name.yaml) is only included: partial; the others as written (partial when they include)
        assert not _errors(partial if path.name.startswith("_") else full, raw), (path, _errors(full, raw))
        if not path.name.startswith("_"):  # merged with what it includes: a complete task
            merged = load_raw(path)
            assert not _errors(full, merged), (path, _errors(full, merged))


def test_the_schema_refuses_what_the_loader_refuses(tmp_path):
    v = _validator()
    task = yaml.safe_load(_blocks()[0][1])
    assert not _errors(v, task)
    assert not _errors(v, {k: x for k, x in task.items() if k != "task"}), "task defaults to the file's name"
    bad = [
        {**task, "promts": []},  # an unknown key
        {**task, "output_type": "multiple-choice"},
        {k: x for k, x in task.items() if k != "output_type"},
        {**task, "metrics": ["accuracy"]},
        {**task, "extract": "numbr"},
        {**task, "fewshot": {"k": -1}},
        {**task, "dataset": {"local": {"path": "x.jsonl", "sha256": 1234}}},
        {**task, "include": ""},
    ]
    for data in bad:
        assert _errors(v, data), data
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        with pytest.raises(Exception):  # noqa: B017 - the loader refuses each too (TaskError, or check_metrics/extract)
            t = load_task(path)
            check_metrics(t.task, t.output_type, t.metrics)
    # the short forms the models expand
    for extract in ("number", {"name": "regex", "args": {"pattern": "x"}}, [{"name": "regex", "args": {"pattern": "x"}}, "number", "majority"]):
        assert not _errors(v, {**task, "output_type": "generate", "extract": extract, "metrics": ["exact_match"]})
    assert not _errors(v, {**task, "group": "mine", "metrics": ["acc", {"name": "acc_norm"}]})
    # a file with include: may be partial, at any depth
    assert not _errors(v, {"include": "capitals.yaml", "dataset": {"hub": {"split": "dev"}}})
    assert _errors(v, {"include": "capitals.yaml", "dataset": {"hub": {"splitt": "dev"}}})


def _blocks() -> list[tuple[str | None, str]]:
    """The YAML examples of docs/tasks.md: (file name or None for a change, text)."""
    text = MD.read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"^```yaml\n(.*?)^```$", text, re.S | re.M):
        m = FILE.search(block)
        out.append((m.group(1) if m else None, block))
    return out


def test_the_examples_of_the_reference_load_and_run(tmp_path):
    text = MD.read_text(encoding="utf-8")
    blocks = _blocks()
    files = [(name, body) for name, body in blocks if name]
    assert files[0][0] == "capitals.yaml" and len(files) >= 2
    data = re.search(r"`capitals.jsonl` beside it.*?```json\n(.*?)```", text, re.S)
    assert data, "the example's data block"
    (tmp_path / "capitals.jsonl").write_text(data.group(1), encoding="utf-8")
    for name, body in files:
        (tmp_path / name).write_text(body, encoding="utf-8")
    v = _validator()
    for name, body in files:  # whole files: validated, planned on the example data (every prompt rendered)
        t = load_task(tmp_path / name)
        assert not _errors(v, yaml.safe_load(body))
        plan = plan_task(t, tmp_path / name, tmp_path)
        assert len(plan.instances) == 5 * len(t.prompts)
    changes = [body for name, body in blocks if name is None and not body.lstrip().startswith("# yaml-language-server")]
    assert len(changes) >= 6
    for i, body in enumerate(changes):  # the changes: included over the example, loaded and checked
        path = tmp_path / f"change_{i}.yaml"
        path.write_text("include: capitals.yaml\n" + body + "\n", encoding="utf-8")
        assert not _errors(v, yaml.safe_load(path.read_text(encoding="utf-8"))), body
        t = load_task(path)
        check_metrics(t.task, t.output_type, t.metrics)
        check_extract(t.extract, t.vars, t.task)
        assert not _errors(v, load_raw(path)), body


def test_the_worked_multiple_choice_request_is_what_assay_builds(tmp_path):
    """The reference's worked example (context and continuations of the `plain` prompt)."""
    text = MD.read_text(encoding="utf-8")
    name, body = _blocks()[0]
    (tmp_path / "capitals.yaml").write_text(body, encoding="utf-8")
    (tmp_path / "capitals.jsonl").write_text(re.search(r"```json\n(.*?)```", text, re.S).group(1), encoding="utf-8")
    t = load_task(tmp_path / "capitals.yaml")
    plan = plan_task(t, tmp_path / "capitals.yaml", tmp_path)
    by = {(i.prompt_id, i.doc_id): i for i in plan.instances}
    inst = by[("plain", "fr")]
    reqs = requests_for(t, inst.query, inst, False, ())
    shown = re.search(r'context: +(".*")\ncontinuation: (.*)\n', text)
    assert shown
    assert [r.context for r in reqs] == [json.loads(shown.group(1))] * 4
    assert [r.continuation for r in reqs] == [json.loads(c) for c in shown.group(2).split(" | ")]
    assert inst.target == 1
    letters = by[("letters", "fr")]
    assert letters.choices == ("A", "B", "C", "D") and letters.target == 1
    assert letters.query == "What is the capital of France?\nA. Lyon\nB. Paris\nC. Marseille\nD. Nice\nAnswer:"


def test_a_step_or_filter_without_a_description_fails_the_generator(monkeypatch):
    from assay.scoring import extract

    monkeypatch.setitem(extract.STEPS, "new_step", extract.Step("new_step", None))
    with pytest.raises(KeyError, match="new_step"):
        reference.markdown()
