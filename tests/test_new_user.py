"""Issue 16's new user, played end to end with the embedded model: four data files in the
layouts `assay new-task` guesses (question + options list + answer key, premise + choice
columns + label, text + label in a TSV, question + context + answers) go through
new-task → validate --show → run (the folder of task files, SmolLM2 on llama.cpp) → report →
export, with no edit to the generated files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import DATA, run_cli

from assay.data.sources import load_local
from assay.scoring.metrics import facts
from assay.tasks.spec import LocalSource

MODEL = "smollm2-135m-instruct"


def _lines(src: Path, dst: Path, n: int) -> Path:
    with src.open(encoding="utf-8") as f:
        dst.write_text("".join(next(f) for _ in range(n)), encoding="utf-8")
    return dst


def _data_files(folder: Path) -> dict[str, Path]:
    files = {
        "arc": _lines(DATA / "arc/llmfoundry_arc_easy.jsonl", folder / "arc.jsonl", 8),
        "copa": _lines(DATA / "superglue/COPA/val.jsonl", folder / "copa.jsonl", 8),
        "sst": _lines(DATA / "sst2/dev.tsv", folder / "sst.tsv", 9),  # the header and 8 rows
    }
    squad = load_local(LocalSource.model_validate({"path": "squad/dev-v1.1.json.zip", "format": "squad"}), DATA).rows[:6]
    qa = folder / "qa.jsonl"
    qa.write_text("".join(json.dumps({"id": r["id"], "question": r["question"], "context": r["context"], "answers": r["answers"]}) + "\n" for r in squad))
    files["qa"] = qa
    return files


@pytest.mark.slow
def test_a_new_user_goes_from_data_files_to_a_model_card(tmp_path):
    data = tmp_path / "data"
    tasks = tmp_path / "mytasks"
    data.mkdir()
    tasks.mkdir()
    files = _data_files(data)
    expect = {"arc": "multiple_choice", "copa": "multiple_choice", "sst": "multiple_choice", "qa": "generate"}
    for name, path in files.items():
        proc = run_cli("new-task", str(path), "-o", str(tasks / f"{name}.yaml"), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert f"{name}.yaml: ok — task {name}" in proc.stderr
        spec = yaml.safe_load((tasks / f"{name}.yaml").read_text())
        assert spec["output_type"] == expect[name] and spec["dataset"]["local"]["path"] == f"../data/{path.name}"
    # see before you spend: each prompt's first instance as the model would get it
    proc = run_cli("validate", str(tasks), "--show", "1", "-m", MODEL, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(": ok — task") == 4
    assert "── qa · prompt" in proc.stdout and "chat format model (generation task, model has a chat template)" in proc.stdout
    assert "*[" in proc.stdout and "target:" in proc.stdout
    # the plan, then the run: the folder of task files, every document, the embedded model
    run = tmp_path / "run"
    proc = run_cli("run", "-m", MODEL, "-t", str(tasks), "-o", str(run), "--no-cache", "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0 and "to compute" in proc.stdout and not run.exists(), proc.stderr
    proc = run_cli("run", "-m", MODEL, "-t", str(tasks), "-o", str(run), "--no-cache", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((run / "results.json").read_text())
    scores = doc["results"][MODEL]
    assert set(scores) == set(files)
    assert {t: scores[t]["n_docs"] for t in scores} == {"arc": 8, "copa": 8, "sst": 8, "qa": 6}
    assert all(0.0 <= m["value"] <= 1.0 for t in scores.values() for m in t["metrics"].values() if m["value"] is not None)
    # the report, then the model card: the headline (median over prompts), not the best prompt
    proc = run_cli("report", str(run), cwd=tmp_path)
    assert proc.returncode == 0 and (run / "report.html").is_file() and (run / "report.md").is_file(), proc.stderr
    assert all(t in (run / "report.md").read_text() for t in files)
    proc = run_cli("export", "model-index", str(run), "-o", str(tmp_path / "card.yaml"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "the median over prompt templates (the headline)" in proc.stderr
    card = yaml.safe_load((tmp_path / "card.yaml").read_text())["model-index"][0]
    entries = {e["dataset"]["type"]: e for e in card["results"]}
    assert set(entries) == set(files)
    assert entries["arc"]["task"]["type"] == "multiple-choice" and entries["qa"]["task"]["type"] == "question-answering"
    for name, e in entries.items():
        headline = scores[name]["metrics"][scores[name]["primary"]]["value"]
        assert e["metrics"][0]["value"] == facts(scores[name]["primary"]).card_value(headline)
        assert "args" not in e["dataset"]  # a whole run: no partial counts


def test_the_new_user_errors_say_what_to_do(tmp_path):
    """The errors the new user met: an unknown group of their own files, a missing data file."""
    proc = run_cli("run", "-m", "mock:m", "-t", "newuser", "-o", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 2 and "name the files or their folder in --tasks too" in proc.stderr
    (tmp_path / "t.yaml").write_text("task: t\noutput_type: generate\ndataset: {local: {path: mine.jsonl}}\ntarget: a\n"
                                     "prompts: [{id: p, template: '{{ q }}'}]\nmetrics: [exact_match]\n")
    proc = run_cli("validate", str(tmp_path / "t.yaml"), cwd=tmp_path)
    assert proc.returncode == 2 and f"looked in {tmp_path / 'mine.jsonl'} and" in proc.stderr
    assert "a relative path is read beside the task file, else in the data directory" in proc.stderr
