"""A user's own task files: folders in --tasks, the user's `group:` names, combined with
built-in names in one list (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from assay.errors import TaskError, UnknownNameError
from assay.tasks.registry import resolve

TASK = """\
task: {name}
group: {group}
output_type: multiple_choice
dataset:
  local: {{path: d.jsonl}}
choices: "[a, b]"
target: label
prompts:
  - id: p
    template: "{{{{ q }}}}"
metrics: [acc]
"""

ROWS = [{"q": "Sky is", "a": "blue", "b": "green", "label": 0}, {"q": "Grass is", "a": "blue", "b": "green", "label": 1}]


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mytasks"
    (folder / "more").mkdir(parents=True)
    for sub in (folder, folder / "more"):
        (sub / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (folder / "one.yaml").write_text(TASK.format(name="mine_one", group="newuser"))
    (folder / "more" / "two.yml").write_text(TASK.format(name="mine_two", group="[newuser, other]"))
    (folder / "_base.yaml").write_text("output_type: generate\n")  # a base: never a task by itself
    (folder / "notes.txt").write_text("not a task")
    return folder


def test_a_folder_stands_for_every_task_file_under_it(tmp_path):
    folder = _folder(tmp_path)
    names = [spec.task for spec, _ in resolve([str(folder)])]
    assert names == ["mine_two", "mine_one"]  # sorted by path: more/two.yml before one.yaml


def test_a_users_group_resolves_beside_its_files_and_with_builtin_names(tmp_path):
    folder = _folder(tmp_path)
    one, two = folder / "one.yaml", folder / "more" / "two.yml"
    # the group named first, its files later in the same list
    assert [s.task for s, _ in resolve(["other", str(one), str(two)])] == ["mine_two", "mine_one"]
    assert [s.task for s, _ in resolve([str(one), str(two), "newuser"])] == ["mine_one", "mine_two"]
    # a folder and a built-in group in one list; a task named twice counts once
    got = [s.task for s, _ in resolve([str(folder), "xcopa", "newuser"])]
    assert got[:2] == ["mine_two", "mine_one"] and "xcopa_it" in got and len(got) == len(set(got)) == 2 + 11


def test_a_users_group_without_its_files_says_what_to_do(tmp_path):
    with pytest.raises(UnknownNameError, match=r"unknown task or group 'newuser' \(for a group of your own task files, name the files or their folder in --tasks too"):
        resolve(["newuser"])
    with pytest.raises(TaskError, match="no such task file or folder"):
        resolve([str(tmp_path / "nope") + "/"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(TaskError, match="holds no task files"):
        resolve([str(tmp_path / "empty")])


def test_run_a_folder_and_a_users_group_end_to_end(tmp_path):
    """The CLI: a folder plus a built-in task in one --tasks; results.json scores the user's
    group as a group, like a built-in one."""
    folder = _folder(tmp_path)
    out = tmp_path / "run"
    proc = run_cli("run", "-m", "mock:m", "-t", f"{folder},copa", "--limit", "2", "-o", str(out), "--no-cache", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    scores = doc["results"]["m"]
    assert set(scores) == {"mine_one", "mine_two", "copa"}
    assert set(doc["groups"]["m"]) >= {"newuser", "other"}
    proc = run_cli("validate", str(folder), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(": ok") == 2


def _digest(folder: Path) -> dict[str, bytes]:
    """Every file's bytes; SQLite's -wal/-shm side files, which any reader of the store opens, left out."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def test_dry_run_prints_the_plan_and_what_is_stored_or_cached_and_writes_nothing(tmp_path):
    folder = _folder(tmp_path)
    cache = tmp_path / "cache.sqlite"
    out = tmp_path / "run"
    task = str(folder / "one.yaml")
    fresh = run_cli("run", "-m", "mock:m", "-t", f"{task},copa", "--limit", "3", "-o", str(out), "--cache", str(cache), "--dry-run", cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    assert not out.exists() and not cache.exists()
    assert "task copa: 3 of 100 documents × 3 prompt(s)" in fresh.stdout
    assert "copa: 18 requests (18 loglikelihood): 0 stored, 0 in the response cache, 18 to compute" in fresh.stdout
    assert "mine_one: 4 requests (4 loglikelihood): 0 stored, 0 in the response cache, 4 to compute" in fresh.stdout
    proc = run_cli("run", "-m", "mock:m", "-t", f"{task},copa", "--limit", "2", "-o", str(out), "--cache", str(cache), "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    before = _digest(out), cache.read_bytes()
    # the same folder with a larger --limit: what the first run stored is counted as stored
    more = run_cli("run", "-m", "mock:m", "-t", f"{task},copa", "--limit", "3", "-o", str(out), "--cache", str(cache), "--dry-run", cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert "copa: 18 requests (18 loglikelihood): 12 stored, 0 in the response cache, 6 to compute" in more.stdout
    assert "all tasks: 22 requests: 16 stored, 0 in the response cache, 6 to compute" in more.stdout
    # another folder: the shared response cache has them
    other = run_cli("run", "-m", "mock:m", "-t", f"{task},copa", "--limit", "3", "-o", str(tmp_path / "other"), "--cache", str(cache), "--dry-run", cwd=tmp_path)
    assert "copa: 18 requests (18 loglikelihood): 0 stored, 12 in the response cache, 6 to compute" in other.stdout
    after = _digest(out), cache.read_bytes()
    assert {k for k in after[0] if after[0][k] != before[0].get(k)} == set() and after[1] == before[1]
    assert not (tmp_path / "other").exists()


def test_validate_show_prints_the_requests_a_run_sends(tmp_path):
    folder = _folder(tmp_path)
    proc = run_cli("validate", str(folder / "one.yaml"), "--show", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1].startswith("── mine_one · prompt p · document 0 · 2 loglikelihood request(s) · chat format none (no model given")
    assert lines[2:7] == ["  context:", "    Sky is", "  *[0] continuation ' blue'", "   [1] continuation ' green'", "  target: [0] (* marks it)"]
    # with a model whose chat template a generation prompt uses: the formatted context
    gen = folder / "gen.yaml"
    gen.write_text(TASK.format(name="mine_gen", group="g").replace("output_type: multiple_choice", "output_type: generate")
                   .replace('choices: "[a, b]"\ntarget: label', "target: a").replace("metrics: [acc]", "metrics: [exact_match]"))
    proc = run_cli("validate", str(gen), "--show", "2", "-m", "smollm2-135m-instruct", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("── mine_gen · prompt p") == 2
    assert "chat format model (generation task, model has a chat template)" in proc.stdout
    assert "    <|im_start|>user\n    Grass is<|im_end|>\n    <|im_start|>assistant" in proc.stdout
    assert "  generate up to 256 tokens, greedy, stops at" in proc.stdout and '  target: "blue"' in proc.stdout


def test_score_reload_tasks_applies_scoring_edits_and_refuses_request_edits(tmp_path):
    folder = _folder(tmp_path)
    task = folder / "one.yaml"
    out = tmp_path / "run"
    proc = run_cli("run", "-m", "mock:m", "-t", str(task), "-o", str(out), "--no-cache", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    first = json.loads((out / "results.json").read_text())
    assert set(first["results"]["m"]["mine_one"]["metrics"]) == {"acc"}
    task.write_text(task.read_text().replace("metrics: [acc]", "metrics: [acc_norm, acc]\ndescription: edited"))
    # without the flag: the stored definition, and the note says how to re-read
    proc = run_cli("score", str(out), cwd=tmp_path)
    assert proc.returncode == 0 and "--reload-tasks re-reads them" in proc.stderr
    assert set(json.loads((out / "results.json").read_text())["results"]["m"]["mine_one"]["metrics"]) == {"acc"}
    proc = run_cli("score", str(out), "--reload-tasks", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    res = doc["results"]["m"]["mine_one"]
    assert res["primary"] == "acc_norm" and res["metrics"]["acc"] == first["results"]["m"]["mine_one"]["metrics"]["acc"]
    assert doc["tasks"]["mine_one"]["reloaded"] is True and doc["tasks"]["mine_one"]["description"] == "edited"
    assert doc["tasks"]["mine_one"]["hash"] != first["tasks"]["mine_one"]["hash"]
    # an edit to what was asked: refused in one line naming the keys, results.json kept
    task.write_text(task.read_text().replace('template: "{{ q }}"', 'template: "Q: {{ q }}"').replace("target: label", "target: 1 - label"))
    proc = run_cli("score", str(out), "--reload-tasks", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"--reload-tasks: task mine_one ({task}): prompts, target changed since the run" in proc.stderr
    assert json.loads((out / "results.json").read_text()) == doc
    task.unlink()
    proc = run_cli("score", str(out), "--reload-tasks", cwd=tmp_path)
    assert proc.returncode == 2 and f"its file {task} is not there any more" in proc.stderr
