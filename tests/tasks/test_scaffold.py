"""`assay new-task DATA_FILE`: the guessed layout of real rows (read from the shared data at test
time, written to tmp_path), the written file validates, and it runs end to end on the mock model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from assay.cli import main
from assay.data.sources import sha256_file
from assay.results import read_results
from assay.tasks.loader import load_task


def _head(src: Path, dst: Path, n: int) -> Path:
    """The first n lines of a shared data file (its header included)."""
    with src.open(encoding="utf-8") as f:
        dst.write_text("".join(next(f) for _ in range(n)), encoding="utf-8")
    return dst


def _jsonl(rows: list[dict], dst: Path) -> Path:
    dst.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return dst


def _new_task(capsys, data: Path, *args: str) -> tuple[Path, str, dict]:
    """Run new-task; the written file, what it printed (stderr) and its YAML."""
    out = data.with_suffix(".yaml")
    rc = main(["new-task", str(data), "-o", str(out), *args])
    err = capsys.readouterr().err
    assert rc == 0, err
    text = out.read_text(encoding="utf-8")
    return out, err, yaml.safe_load(text)


def _validates_and_runs(capsys, task: Path, tmp_path: Path) -> None:
    """`assay validate` and a 4-document run on the mock model, with the benchmark data as the
    data directory: the task's relative data path is read beside the task file."""
    assert main(["validate", str(task)]) == 0, capsys.readouterr().err
    run = tmp_path / f"run_{task.stem}"
    rc = main(["run", "-m", "mock:m", "-t", str(task), "--limit", "4", "-o", str(run), "--no-cache", "-q"])
    assert rc == 0, capsys.readouterr().err
    assert task.stem in read_results(run).results["m"]


def _pinned(spec_yaml: dict, data: Path) -> None:
    local = spec_yaml["dataset"]["local"]
    assert local["path"] == data.name  # relative to the task file's folder (the same folder here)
    assert local["sha256"] == sha256_file(data)


def test_choice_columns_copa(data_dir, tmp_path, capsys):
    data = _head(data_dir / "superglue/COPA/val.jsonl", tmp_path / "copa.jsonl", 8)
    task, err, y = _new_task(capsys, data)
    assert "premise" in err and "choice1" in err and "e.g. " in err  # the columns, with an example each
    assert y["output_type"] == "multiple_choice" and y["choices"] == "[choice1, choice2]" and y["target"] == "label"
    assert y["dataset"]["id_field"] == "idx"
    _pinned(y, data)
    assert [p["id"] for p in y["prompts"]] == ["cloze", "letters"]
    text = task.read_text(encoding="utf-8")
    assert re.search(r"# GUESS: .*\noutput_type:", text) and re.search(r"# GUESS: .*\ntarget:", text)
    assert "question (cause, effect)" in text  # the column no prompt reads, with its values
    assert f"{task}: ok" in err
    spec = load_task(task)
    assert spec.task == "copa" and spec.metric_names() == ["acc", "acc_norm"]
    _validates_and_runs(capsys, task, tmp_path)


def test_options_list_with_letter_key(data_dir, tmp_path, capsys):
    """AGIEval's AQuA-RAT: question, options ["(A)…", …], label "A"; as parquet (a run's reader)."""
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    rows = [json.loads(line) for line in (data_dir / "agieval/aqua-rat.jsonl").read_text(encoding="utf-8").splitlines()[:8]]
    data = tmp_path / "aqua.parquet"
    pq.write_table(pa.Table.from_pylist([{k: r[k] for k in ("question", "options", "label")} for r in rows]), data)
    task, err, y = _new_task(capsys, data)
    assert y["output_type"] == "multiple_choice" and y["choices"] == "options"
    assert y["target"] == "letters.index(label | trim)"
    letters = y["prompts"][0]
    assert letters["id"] == "letters" and letters["choices"] == "letters[:(options | length)] | list"
    assert "regex_replace" in letters["template"]  # the options' own "(A)" is taken off
    _pinned(y, data)
    _validates_and_runs(capsys, task, tmp_path)
    from assay.plan import plan_task

    inst = plan_task(load_task(task), task, tmp_path).instances
    first = next(i for i in inst if i.prompt_id == "letters")
    assert "\nA. 5(√3 + 1)\nB. " in first.query and first.choices == ("A", "B", "C", "D", "E")


def test_choice_columns_with_one_based_answer(tmp_path, capsys):
    """WinoGrande's original layout: option1/option2 and answer "1"/"2" (counted from 1, as text)."""
    rows = [{"sentence": f"Sentence {i} with a _ blank.", "option1": f"Ann{i}", "option2": f"Bob{i}", "answer": "12"[i % 2]} for i in range(8)]
    task, _, y = _new_task(capsys, _jsonl(rows, tmp_path / "wino.jsonl"))
    assert y["choices"] == "[option1, option2]" and y["target"] == "answer | int - 1"
    assert "counts the options from 1" in task.read_text(encoding="utf-8")
    _validates_and_runs(capsys, task, tmp_path)


def test_classification_numeric_labels(data_dir, tmp_path, capsys):
    data = _head(data_dir / "sst2/dev.tsv", tmp_path / "sst2.tsv", 9)
    task, _, y = _new_task(capsys, data)
    assert y["output_type"] == "multiple_choice" and y["choices"] == "vars.labels"
    assert y["vars"]["labels"] == ["0", "1"] and y["target"] == "label | int"
    assert "replace them with the label names" in task.read_text(encoding="utf-8")
    _pinned(y, data)
    _validates_and_runs(capsys, task, tmp_path)


def test_classification_label_names(data_dir, tmp_path, capsys):
    lines = (data_dir / "sst2/dev.tsv").read_text(encoding="utf-8").splitlines()[1:9]
    rows = [{"text": s.split("\t")[0], "sentiment": ["negative", "positive"][int(s.split("\t")[1])]} for s in lines]
    task, _, y = _new_task(capsys, _jsonl(rows, tmp_path / "reviews.jsonl"))
    assert y["vars"]["labels"] == sorted({r["sentiment"] for r in rows}) and y["target"] == "sentiment" and y["target_type"] == "text"
    _validates_and_runs(capsys, task, tmp_path)


def test_headerless_csv_gets_column_names(data_dir, tmp_path, capsys):
    """AG News's CSV has no header row: the first row reads as data, so the columns are named."""
    data = _head(data_dir / "ag_news/test.csv", tmp_path / "ag.csv", 8)
    task, _, y = _new_task(capsys, data)
    assert y["dataset"]["local"]["columns"] == ["column1", "column2", "column3"]
    # its first 8 rows have the classes 3 and 4 only: the label set is what the file holds
    assert y["output_type"] == "multiple_choice" and y["vars"]["labels"] == ["3", "4"] and y["target"] == "[3, 4].index(column1 | int)"
    _validates_and_runs(capsys, task, tmp_path)


def _squad_rows(data_dir: Path, n: int = 8) -> list[dict]:
    from assay.data.sources import load_local
    from assay.tasks.spec import LocalSource

    src = LocalSource.model_validate({"path": "squad/dev-v1.1.json.zip", "format": "squad"})
    return load_local(src, data_dir).rows[:n]


def test_extractive_qa_squad_like_answers(data_dir, tmp_path, capsys):
    rows = [{"id": r["id"], "context": r["context"], "question": r["question"],
             "answers": {"text": r["answers"], "answer_start": [r["context"].find(a) for a in r["answers"]]}} for r in _squad_rows(data_dir)]
    task, _, y = _new_task(capsys, _jsonl(rows, tmp_path / "qa.jsonl"))
    assert y["output_type"] == "generate" and y["target"] == "answers.text"
    assert y["metrics"] == ["f1", "exact_match"] and y["extract"] == "span" and y["dataset"]["id_field"] == "id"
    _validates_and_runs(capsys, task, tmp_path)


def test_extractive_qa_json_list_and_squad_nesting(data_dir, tmp_path, capsys):
    rows = _squad_rows(data_dir)
    flat = tmp_path / "qa_list.json"
    flat.write_text(json.dumps({"version": "x", "rows": [{k: r[k] for k in ("question", "context", "answers")} for r in rows]}), encoding="utf-8")
    task, _, y = _new_task(capsys, flat)
    assert y["dataset"]["local"]["json_field"] == "rows" and y["target"] == "answers" and y["output_type"] == "generate"
    _validates_and_runs(capsys, task, tmp_path)
    nested = tmp_path / "qa_nested.json"
    nested.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [
        {"context": r["context"], "qas": [{"id": r["id"], "question": r["question"], "answers": [{"text": a, "answer_start": 0} for a in r["answers"]]}]}
        for r in rows]}]}), encoding="utf-8")
    task, _, y = _new_task(capsys, nested)
    assert y["dataset"]["local"]["format"] == "squad" and y["target"] == "answers"
    _validates_and_runs(capsys, task, tmp_path)


def test_fallback_generate_with_todos(data_dir, tmp_path, capsys):
    data = _head(data_dir / "gsm8k/test.jsonl", tmp_path / "math.jsonl", 8)
    task, err, y = _new_task(capsys, data)
    assert y["output_type"] == "generate" and "{{ question }}" in y["prompts"][0]["template"] and y["target"] == "answer"
    assert "# TODO:" in task.read_text(encoding="utf-8") and "no layout recognised" in err
    _validates_and_runs(capsys, task, tmp_path)


def test_absolute_path_validates_from_anywhere(data_dir, tmp_path, capsys, monkeypatch):
    data = _head(data_dir / "superglue/COPA/val.jsonl", tmp_path / "copa.jsonl", 8)
    out = tmp_path / "tasks" / "mine.yaml"
    out.parent.mkdir()
    assert main(["new-task", str(data), "-o", str(out), "--absolute"]) == 0
    err = capsys.readouterr().err
    assert yaml.safe_load(out.read_text(encoding="utf-8"))["dataset"]["local"]["path"] == str(data.resolve())
    assert f"{out}: ok — task mine, 8 rows" in err and "--data-dir" not in err
    assert main(["validate", str(out)]) == 0


def test_default_output_beside_the_current_folder(data_dir, tmp_path, capsys, monkeypatch):
    data = _head(data_dir / "superglue/COPA/val.jsonl", tmp_path / "copa.jsonl", 8)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["new-task", str(data)]) == 0, capsys.readouterr().err
    y = yaml.safe_load((work / "copa.yaml").read_text(encoding="utf-8"))
    assert y["task"] == "copa" and y["dataset"]["local"]["path"] == "../copa.jsonl"  # relative to the task file's folder
    err = capsys.readouterr().err
    assert "work/copa.yaml: ok — task copa, 8 rows" in err or "copa.yaml: ok — task copa, 8 rows" in err, err


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("assay: error: "), err
    return err


def test_errors_are_one_line_naming_the_file(tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    assert str(missing) in _one_line_error(capsys, ["new-task", str(missing), "-o", str(tmp_path / "t.yaml")])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert f"{empty}: no rows" in _one_line_error(capsys, ["new-task", str(empty), "-o", str(tmp_path / "t.yaml")])
    odd = tmp_path / "rows.txt"
    odd.write_text("a\nb\n")
    assert "--format" in _one_line_error(capsys, ["new-task", str(odd), "-o", str(tmp_path / "t.yaml")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{oops\n')
    assert f"{bad}:2" in _one_line_error(capsys, ["new-task", str(bad), "-o", str(tmp_path / "t.yaml")])
    notpq = tmp_path / "x.parquet"
    notpq.write_text("not parquet")
    pytest.importorskip("pyarrow")
    assert str(notpq) in _one_line_error(capsys, ["new-task", str(notpq), "-o", str(tmp_path / "t.yaml")])
    assert not (tmp_path / "t.yaml").exists()


def test_overwrite_refused_without_force(tmp_path, capsys):
    data = _jsonl([{"text": f"t{i}", "label": "ab"[i % 2]} for i in range(8)], tmp_path / "d.jsonl")
    out = tmp_path / "d.yaml"
    out.write_text("mine\n")
    err = _one_line_error(capsys, ["new-task", str(data), "-o", str(out)])
    assert str(out) in err and "--force" in err and out.read_text() == "mine\n"
    assert main(["new-task", str(data), "-o", str(out), "--force"]) == 0
    assert yaml.safe_load(out.read_text(encoding="utf-8"))["target"] == "label"


def test_a_file_that_does_not_validate_is_reported_in_one_line(tmp_path, capsys):
    """The written file is validated as written: a row without the text column fails to render."""
    rows = [{"text": f"t{i}", "label": "ab"[i % 2]} for i in range(7)] + [{"label": "a"}]
    data = _jsonl(rows, tmp_path / "d.jsonl")
    assert main(["new-task", str(data), "-o", str(tmp_path / "d.yaml")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()  # the columns, the guess, then the failure
    assert [ln for ln in lines if "error" in ln] == lines[-1:]
    assert "d.yaml was written but does not validate: " in lines[-1] and "'text' is undefined" in lines[-1]
    assert (tmp_path / "d.yaml").is_file()
