"""Bad input: one clear line naming the file, row or field, exit code 2, no traceback, and
nothing already stored is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import run_cli

TASK = """\
version: 1
task: tiny
output_type: multiple_choice
split: test
dataset:
  local: {{path: {path}}}
choices: "[a, b]"
target: label
prompts:
  - id: p
    template: "{{{{ q }}}}"
metrics: [acc]
"""


def _task(tmp: Path, rows: list[dict] | str, name: str = "tiny.yaml", data_name: str = "d.jsonl") -> Path:
    data = tmp / data_name
    if isinstance(rows, str):
        data.write_text(rows)
    else:
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = tmp / name
    task.write_text(TASK.format(path=data))
    return task


ROWS = [{"q": "Sky is", "a": "blue", "b": "green", "label": 0}, {"q": "Grass is", "a": "blue", "b": "green", "label": 1}]


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("assay: error:")]
    assert len(lines) == 1, proc.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def test_unknown_model_alias_suggests_names():
    proc = run_cli("run", "-m", "smollm2", "-t", "copa")
    _one_line_error(proc, "unknown model alias 'smollm2'", "smollm2-135m-instruct")


def test_unknown_task_suggests_names():
    proc = run_cli("run", "-m", "smollm2-135m-instruct", "-t", "xcopa_itt")
    _one_line_error(proc, "xcopa_itt", "xcopa_it")


def test_unknown_backend_argument():
    proc = run_cli("run", "-m", "smollm2-135m-instruct,n_ctxx=5", "-t", "copa")
    # arguments are checked when the backend starts; the error names the argument
    assert proc.returncode == 2 and "n_ctxx" in proc.stderr and "Traceback" not in proc.stderr


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ntask: x\nprompts: [\n  - id: p\n")
    _one_line_error(run_cli("validate", str(bad)), "bad.yaml:", "YAML error")


def test_unknown_field_names_file_line_and_field(tmp_path):
    task = _task(tmp_path, ROWS)
    task.write_text(task.read_text().replace("metrics: [acc]", "metrics: [acc]\nmetricz: [f1]"))
    _one_line_error(run_cli("validate", str(task)), f"{task}:13", "metricz", "Extra inputs are not permitted")


def test_empty_task_file(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    _one_line_error(run_cli("validate", str(empty)), "empty.yaml", "empty")


def test_missing_data_file(tmp_path):
    task = _task(tmp_path, ROWS)
    (tmp_path / "d.jsonl").unlink()
    _one_line_error(run_cli("validate", str(task)), "data file not found", "d.jsonl")


def test_malformed_data_file_names_line(tmp_path):
    task = _task(tmp_path, json.dumps(ROWS[0]) + "\n{not json\n")
    _one_line_error(run_cli("validate", str(task)), "d.jsonl:2", "malformed JSON")


def test_row_missing_a_field_names_the_row(tmp_path):
    task = _task(tmp_path, [ROWS[0], {"q": "Grass is", "a": "x", "label": 1}])
    _one_line_error(run_cli("validate", str(task)), "row 1", "'b' is undefined")


def test_task_with_no_rows(tmp_path):
    task = _task(tmp_path, "\n")
    _one_line_error(run_cli("validate", str(task)), "has no rows")


def test_sha256_mismatch(tmp_path):
    task = _task(tmp_path, ROWS)
    task.write_text(task.read_text().replace("d.jsonl}", "d.jsonl, sha256: " + "ab" * 32 + "}"))
    _one_line_error(run_cli("validate", str(task)), "sha256", "the file changed")


def test_unquoted_numeric_sha256_is_explained(tmp_path):
    task = _task(tmp_path, ROWS)
    task.write_text(task.read_text().replace("d.jsonl}", "d.jsonl, sha256: " + "1" * 64 + "}"))
    _one_line_error(run_cli("validate", str(task)), "dataset.local.sha256", "in quotes")


@pytest.mark.llamacpp
def test_broken_gguf_fails_cleanly_and_keeps_earlier_results(tmp_path, data_dir):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    out = tmp_path / "run"
    proc = run_cli("run", "-m", "smollm2-135m-instruct", "-m", str(bad), "-t", "copa", "--limit", "3", "--prompt", "lmeval", "-o", str(out))
    _one_line_error(proc, "broken.gguf", "cannot load this GGUF")
    # the first model's responses were committed before the second model failed
    again = run_cli("run", "-m", "smollm2-135m-instruct", "-t", "copa", "--limit", "3", "--prompt", "lmeval", "-o", str(out))
    assert again.returncode == 0, again.stderr
    assert "6 already stored, 0 to compute" in again.stderr


def test_score_of_a_folder_that_is_not_a_run(tmp_path):
    _one_line_error(run_cli("score", str(tmp_path)), "not a run folder")


def test_help_is_instant_and_imports_no_heavy_module():
    code = textwrap.dedent(
        """
        import sys, contextlib, io
        from assay.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main(["--help"])
            except SystemExit:
                pass
        import assay.pipeline  # the whole pipeline, minus backends
        heavy = [m for m in ("torch", "transformers", "llama_cpp", "datasets") if m in sys.modules]
        print(heavy)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- issue 13: silently wrong numbers

COUNTDOWN = [
    {"id": "r0", "q": "Which number?", "options": ["7", "8", "9"], "answer": "8"},  # index 8 does not exist: the text
    {"id": "r1", "q": "Which number?", "options": ["3", "2", "1", "0"], "answer": "2"},  # choice 1's text, or index 2 ("1")
]


def _countdown_task(tmp: Path, extra: str = "") -> Path:
    data = tmp / "countdown.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in COUNTDOWN))
    task = tmp / "countdown.yaml"
    task.write_text(
        f"task: countdown\noutput_type: multiple_choice\ndataset:\n  local: {{path: {data}}}\n  id_field: id\n"
        f"choices: options\ntarget: answer\n{extra}prompts:\n  - id: p\n    template: \"{{{{ q }}}}\"\nmetrics: [acc]\n"
    )
    return task


def test_validate_refuses_a_target_readable_as_index_and_as_text(tmp_path):
    # row r1's target "2" used to be read as index 2 (choice "1") and validate said ok
    task = _countdown_task(tmp_path)
    _one_line_error(run_cli("validate", str(task)), "task countdown", "row r1", "ambiguous", "target_type")
    ok = _countdown_task(tmp_path, "target_type: text\n")
    proc = run_cli("validate", str(ok))
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


def test_validate_refuses_a_generation_task_without_target(tmp_path):
    data = tmp_path / "g.jsonl"
    data.write_text(json.dumps({"q": "2+2?", "a": "4"}) + "\n")
    task = tmp_path / "gen.yaml"
    task.write_text(f"task: arith\noutput_type: generate\ndataset: {{local: {{path: {data}}}}}\nprompts:\n  - id: p\n    template: \"{{{{ q }}}}\"\nmetrics: [exact_match]\n")
    _one_line_error(run_cli("validate", str(task)), "gen.yaml", "task arith", "needs 'target'")


def test_two_task_files_with_the_same_name(tmp_path):
    a = _task(tmp_path, ROWS, name="a.yaml")
    b = tmp_path / "b.yaml"
    b.write_text(a.read_text().replace("{{ q }}", "Q: {{ q }}"))
    out = tmp_path / "run"
    proc = run_cli("run", "-m", "smollm2-135m-instruct", "-t", f"{a},{b}", "--limit", "2", "-o", str(out))
    _one_line_error(proc, "task 'tiny'", str(a), str(b))
    assert not out.exists()  # refused while planning, before any model loaded
    _one_line_error(run_cli("validate", str(a), str(b)), "task 'tiny'", str(a), str(b))


def test_user_file_with_a_builtin_tasks_name(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text(_task(tmp_path, ROWS).read_text().replace("task: tiny", "task: copa"))
    proc = run_cli("run", "-m", "smollm2-135m-instruct", "-t", f"copa,{mine}", "--limit", "2", "-o", str(tmp_path / "run"))
    _one_line_error(proc, "task 'copa'", str(mine), "copa.yaml")


def test_duplicate_document_ids_name_the_rows(tmp_path):
    rows = [{**r, "id": i} for r, i in zip(ROWS + ROWS, ["a", "b", "c", "b"])]
    task = _task(tmp_path, rows)
    task.write_text(task.read_text().replace("d.jsonl}", "d.jsonl}\n  id_field: id"))
    _one_line_error(run_cli("validate", str(task)), "task tiny", "d.jsonl", "'b'", "rows 2 and 4")
    out = tmp_path / "run"
    proc = run_cli("run", "-m", "smollm2-135m-instruct", "-t", str(task), "--limit", "2", "-o", str(out))
    _one_line_error(proc, "'b'", "rows 2 and 4")
    assert not out.exists()  # refused while planning, before any model loaded


def _cli_without_data_dir(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ASSAY_DATA_DIR"}
    env["HF_HUB_OFFLINE"] = env["HF_DATASETS_OFFLINE"] = "1"  # tests never download
    return subprocess.run([sys.executable, "-m", "assay.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


def test_missing_data_directory_names_the_file_and_how_to_point_at_it(tmp_path):
    from assay.tasks.registry import builtin_index

    task = builtin_index().tasks["xcopa_it"]
    wrong = tmp_path / "nowhere"
    proc = _cli_without_data_dir("run", "-m", "smollm2-135m-instruct", "-t", "xcopa_it", "--limit", "2", "--data-dir", str(wrong), "-o", str(tmp_path / "run"), cwd=tmp_path)
    line = _one_line_error(proc, "task xcopa_it", f"data file xcopa/data/it/val.it.jsonl not found: looked in {wrong}/xcopa", "--data-dir", "ASSAY_DATA_DIR", "hub")
    assert line.index("--data-dir") < line.index("hub")  # the data directory first, the hub as the alternative
    # unset (cwd elsewhere, no ASSAY_DATA_DIR), without the `datasets` package: the hub only as the alternative
    code = f"import sys; sys.modules['datasets'] = None; from assay.cli import main; sys.exit(main(['validate', {str(task)!r}]))"
    env = {k: v for k, v in os.environ.items() if k != "ASSAY_DATA_DIR"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    line = _one_line_error(proc, "task xcopa_it", f"not found: looked in {tmp_path / 'data'}", "--data-dir", "ASSAY_DATA_DIR")
    assert line.endswith("or install 'assay[datasets]' to read it from the hub)") and "pip install" not in line


def test_include_of_a_number_is_one_clear_line(tmp_path):
    task = _task(tmp_path, ROWS)
    task.write_text("include: 5\n" + task.read_text())
    _one_line_error(run_cli("validate", str(task)), f"{task}:1", "include takes a file name")


def test_the_error_tree_drawn_in_errors_py_is_the_class_tree():
    import re

    from assay import errors

    drawn: dict[str, str | None] = {}
    parents: dict[int, str] = {}  # column of a name -> the name last drawn there
    for line in errors.__doc__.split("\n\n")[1].splitlines():
        m = re.match(r"^([ │]*(?:[├└]── )?)([A-Z]\w+)\s", line)
        if m:
            col = len(m.group(1))
            drawn[m.group(2)] = parents.get(col - 4)
            parents[col] = m.group(2)
    classes = {n: c for n, c in vars(errors).items() if isinstance(c, type) and issubclass(c, errors.AssayError)}
    assert set(drawn) == set(classes)
    assert {n: (c.__base__.__name__ if c is not errors.AssayError else None) for n, c in classes.items()} == drawn


def test_a_users_relative_data_path_is_read_beside_the_task_file_and_the_error_says_where_it_looked(tmp_path):
    """A new user's task file names its data file relative to itself; run from elsewhere, with
    the data directory set to the benchmark data, it is still found. Missing, the one line
    lists both places looked in."""
    folder = tmp_path / "mytasks"
    folder.mkdir()
    (folder / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    task = folder / "tiny.yaml"
    task.write_text(TASK.format(path="d.jsonl"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run_cli("validate", str(task), cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert "2 rows" in proc.stdout
    task.write_text(TASK.format(path="sub/missing.jsonl"))
    line = _one_line_error(run_cli("validate", str(task), cwd=elsewhere), "task tiny", "data file sub/missing.jsonl not found")
    from conftest import DATA

    assert f"looked in {folder / 'sub/missing.jsonl'} and {DATA.absolute() / 'sub/missing.jsonl'}" in line, line


def test_sigint_interrupts_a_run_started_with_sigint_ignored(tmp_path):
    """A run started in the background by a non-interactive shell inherits SIGINT ignored; an
    explicit SIGINT still ends it as interrupted (exit 130), keeping what is stored."""
    import signal
    import time

    from conftest import DATA

    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "assay.cli", "run", "-m", "mock:m,latency=3", "-t", "copa", "--limit", "2", "-b", "1", "-o", str(out)],
                            env={**os.environ, "ASSAY_DATA_DIR": str(DATA)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.time() + 60
        while not (out / "store.sqlite").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(0.5)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
        assert "interrupted; every finished response is stored" in proc.stderr.read().decode()  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr:
            proc.stderr.close()
