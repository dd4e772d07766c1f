"""The results contract (issue 14): group means never mix metrics or scales, results.json
round-trips through ``RunResults``, a run folder of the previous version still opens in
``score``, ``report`` and ``export``, ``assay schema results`` describes the files we write,
and ``assay.evaluate`` runs from a plain script with no terminal."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from conftest import run_cli

from assay.reports.terminal import leaderboard_table
from assay.results import RunResults, TaskInfo, TaskResult, parse_results, read_results
from assay.results import group_scores

FIXTURE_V1 = Path(__file__).parent / "fixtures" / "run_v1"  # written by assay before issue 14 (results version 1)
SMOL = "smollm2-135m-instruct"


def _result(primary: str, **values: float) -> TaskResult:
    return TaskResult.model_validate({
        "primary": primary, "n_items": 10, "n_docs": 10,
        "metrics": {k: {"value": v, "stderr": 0.01, "max": v} for k, v in values.items()},
    })


def _table_text(doc: RunResults) -> str:
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(leaderboard_table(doc))
    return console.export_text()


def test_a_group_averages_each_metric_over_the_tasks_that_report_it():
    # a user group: two accuracy tasks and one F1 task, and (shapes-like) a CIDEr task
    results = {"m": {
        "a": _result("acc", acc=0.5), "b": _result("acc", acc=0.7, macro_f1=0.4),
        "c": _result("f1", f1=0.2, exact_match=0.1), "d": _result("cider", cider=1.8, bleu4=0.3),
    }}
    tasks = {t: TaskInfo(group=["mine"]) for t in "abcd"}
    g = group_scores(results, tasks)["m"]["mine"]
    assert g.primary == "acc"  # the headline most of its tasks lead with
    assert g.metrics["acc"].value == pytest.approx(0.6) and g.metrics["acc"].tasks == ["a", "b"]
    assert g.metrics["f1"].value == pytest.approx(0.2) and g.metrics["f1"].n_tasks == 1
    assert g.metrics["cider"].value == pytest.approx(1.8)
    assert g.other_headlines == {"f1": ["c"], "cider": ["d"]}
    # every group value is the mean of one metric name over the tasks that report it
    want = {"acc": 0.6, "macro_f1": 0.4, "f1": 0.2, "exact_match": 0.1, "cider": 1.8, "bleu4": 0.3}
    assert {k: round(m.value, 9) for k, m in g.metrics.items()} == want


def test_the_group_headline_ties_go_to_the_first_task():
    results = {"m": {"ppl": _result("perplexity", perplexity=40.1), "acc": _result("acc", acc=0.6, perplexity=2.0)}}
    tasks = {"acc": TaskInfo(group=["lambada"]), "ppl": TaskInfo(group=["lambada"])}
    g = group_scores(results, tasks)["m"]["lambada"]
    assert g.primary == "acc" and g.other_headlines == {"perplexity": ["ppl"]}
    assert g.metrics["perplexity"].value == pytest.approx(21.05) and g.metrics["acc"].value == pytest.approx(0.6)


@pytest.mark.llamacpp
def test_lambada_group_on_the_embedded_model_never_mixes_accuracy_and_perplexity(tmp_path, data_dir):
    """The reported bug: `-t lambada --limit 5` showed the group as the mean of an accuracy
    and a perplexity (2035.9), as a percentage."""
    pytest.importorskip("llama_cpp")
    out = tmp_path / "run"
    proc = run_cli("run", "-m", SMOL, "-t", "lambada", "--limit", "5", "-o", str(out), "--data-dir", str(data_dir))
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = read_results(out)
    res = doc.results[SMOL]
    g = doc.groups[SMOL]["lambada"]
    assert g.primary == "acc" and g.metrics["acc"].value == pytest.approx(res["lambada_openai"].metrics["acc"].value)
    ppl = [res[t].metrics["perplexity"].value for t in ("lambada_openai", "lambada_openai_text")]
    assert g.metrics["perplexity"].value == pytest.approx(sum(ppl) / 2)
    assert g.other_headlines == {"perplexity": ["lambada_openai_text"]}
    acc = res["lambada_openai"].metrics["acc"].value
    for m in g.metrics.values():  # no group value mixes the accuracy with a perplexity
        assert all(abs(m.value - (acc + p) / 2) > 1e-9 for p in ppl)
    # the terminal shows documents (5), not documents × prompts (15), and raw values as raw
    text = _table_text(doc)
    row = next(line for line in text.splitlines() if "lambada_openai " in line)
    assert " 5 " in row and " 15 " not in row
    group_rows = [line for line in text.splitlines() if "lambada (mean" in line or "lambada ·" in line]
    assert len(group_rows) == 2 and f"{100 * acc:.1f}" in group_rows[0]
    assert f"{sum(ppl) / 2:.3f}" in group_rows[1]
    # results.json round-trips through the typed model
    raw = json.loads((out / "results.json").read_text())
    assert RunResults.model_validate(raw).model_dump(mode="json") == raw
    assert raw["assay_results_version"] == 2


def test_a_version_1_run_folder_opens_in_score_report_and_export(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE_V1, run)
    old = json.loads((run / "results.json").read_text())
    assert old["assay_results_version"] == 1
    # read as it is: the groups are recomputed by metric name, the rest kept
    doc = read_results(run)
    assert doc.assay_results_version == 2 and doc.results[SMOL]["core_qa"].metrics["f1"].value == old["results"][SMOL]["core_qa"]["metrics"]["f1"]["value"]
    assert old["groups"][SMOL]["core"]["n_tasks"] == 3  # version 1 averaged acc, f1 and entity_f1 into one number
    assert set(doc.groups[SMOL]["core"].metrics["acc"].tasks) == {"core_sentiment_choice"}
    rep = run_cli("report", str(run))
    assert rep.returncode == 0, rep.stderr
    assert "core_qa" in (run / "report.md").read_text()
    exp = run_cli("export", "model-index", str(run))  # a run with --limit 3: refused, counts named
    assert exp.returncode == 2 and "core_ner scored 3 of 44 items" in exp.stderr and "--limit 3" in exp.stderr
    exp = run_cli("export", "model-index", str(run), "--allow-partial")
    assert exp.returncode == 0, exp.stderr
    assert "Exact Match" in exp.stdout and "(first 3 of 40 items)" in exp.stdout
    # re-scoring from the stored responses writes version 2 with the same task scores
    sc = run_cli("score", str(run))
    assert sc.returncode == 0, sc.stderr
    new = json.loads((run / "results.json").read_text())
    assert new["assay_results_version"] == 2
    for task, r in old["results"][SMOL].items():
        assert {k: m["value"] for k, m in new["results"][SMOL][task]["metrics"].items()} == {k: m["value"] for k, m in r["metrics"].items()}
        assert new["results"][SMOL][task]["n_docs"] == 3
    assert new["results"][SMOL]["core_ner"]["n_items"] == 6  # 3 documents × 2 prompts


def test_schema_command_describes_the_files_assay_writes(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE_V1, run)
    assert run_cli("score", str(run)).returncode == 0
    proc = run_cli("schema", "results")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    doc = json.loads((run / "results.json").read_text())
    jsonschema.validate(doc, schema)
    doc["results"][SMOL]["core_qa"]["n_items"] = "three"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


def test_a_bad_results_file_is_one_line_naming_the_field(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE_V1, run)
    doc = json.loads((run / "results.json").read_text())
    doc["results"][SMOL]["core_qa"]["metrics"]["f1"]["value"] = "high"
    (run / "results.json").write_text(json.dumps(doc))
    proc = run_cli("export", "model-index", str(run))
    assert proc.returncode == 2
    assert f"field 'results.{SMOL}.core_qa.metrics.f1.value'" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    with pytest.raises(Exception, match="assay_results_version 7"):
        parse_results({**doc, "assay_results_version": 7}, "x")


@pytest.mark.llamacpp
def test_assay_evaluate_from_a_plain_script(tmp_path, data_dir):
    """The notebook entry point: no terminal, typed results back, progress through a callback."""
    pytest.importorskip("llama_cpp")
    script = tmp_path / "eval.py"
    script.write_text(
        "import assay\n"
        "seen = []\n"
        f"res = assay.evaluate(models=[{SMOL!r}], tasks=['core_sentiment_choice'], limit=4, output={str(tmp_path / 'run')!r},\n"
        f"                     data_dir={str(data_dir)!r}, progress=lambda m, done, total: seen.append((m, done, total)))\n"
        f"r = res.results[{SMOL!r}]['core_sentiment_choice']\n"
        "again = assay.evaluate(models=[" + repr(SMOL) + "], tasks='core_sentiment_choice', limit=4, output=" + repr(str(tmp_path / "run")) + ")\n"
        "import json\n"
        "print(json.dumps({'type': type(res).__name__, 'acc': r.metrics['acc'].value, 'n_docs': r.n_docs, 'last': seen[-1],\n"
        f"                  'again': again.results[{SMOL!r}]['core_sentiment_choice'].metrics['acc'].value}}))\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["type"] == "RunResults" and out["n_docs"] == 4 and 0.0 <= out["acc"] <= 1.0
    assert out["last"] == [SMOL, 8, 8]  # 4 documents × 2 choices, all reported
    assert out["again"] == out["acc"]  # the second call resumes the same folder
    assert "leaderboard" not in proc.stderr and "━" not in proc.stderr  # nothing drawn for a terminal
    assert read_results(tmp_path / "run").results[SMOL]["core_sentiment_choice"].metrics["acc"].value == out["acc"]


def _check_groups_like_with_like(doc: RunResults) -> None:
    """Every group value is the mean of one metric name over the member tasks that report it."""
    for label, groups in doc.groups.items():
        for name, g in groups.items():
            members = [t for t, info in doc.tasks.items() if name in info.group and t in doc.results[label]]
            names = {k for t in members for k in doc.results[label][t].metrics}
            assert set(g.metrics) == names
            for metric, gm in g.metrics.items():
                have = [t for t in members if metric in doc.results[label][t].metrics]
                assert gm.tasks == have
                assert gm.value == pytest.approx(sum(doc.results[label][t].metrics[metric].value for t in have) / len(have))


def test_shapes_group_on_the_mock_backend_keeps_cider_apart(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("run", "-m", "mock:m,seed=3", "-t", "shapes", "--limit", "3", "-o", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = read_results(out)
    _check_groups_like_with_like(doc)
    g = doc.groups["m"]["shapes"]
    assert g.primary == "vqa_accuracy" and g.metrics["vqa_accuracy"].n_tasks == 4
    assert g.metrics["cider"].tasks == ["shapes_caption"]  # CIDEr is never averaged with accuracies
    assert set(g.other_headlines) == {"cider", "acc", "group_score"}


def test_a_user_group_mixing_accuracy_and_f1(tmp_path):
    """A user's own group: two task files, one scored by accuracy and one by F1."""
    (tmp_path / "mine_mc.yaml").write_text(
        "task: mine_mc\ngroup: mine\noutput_type: multiple_choice\n"
        "dataset: {local: {path: 'builtin:core/data/classification.jsonl'}, id_field: id, where: \"task == 'sentiment'\"}\n"
        "choices: \"['positive', 'negative']\"\ntarget: label\n"
        "prompts: [{id: p, template: 'Review: {{ text }}\\nSentiment:'}]\nmetrics: [acc]\n"
    )
    (tmp_path / "mine_qa.yaml").write_text(
        "task: mine_qa\ngroup: [mine]\noutput_type: generate\n"
        "dataset: {local: {path: 'builtin:core/data/qa.jsonl'}, id_field: id}\ntarget: answers\n"
        "prompts: [{id: p, template: 'Passage: {{ context }}\\nQuestion: {{ question }}\\nAnswer:'}]\nmetrics: [f1]\n"
    )
    out = tmp_path / "run"
    proc = run_cli("run", "-m", "mock:m", "-t", f"{tmp_path / 'mine_mc.yaml'},{tmp_path / 'mine_qa.yaml'}", "--limit", "6", "-o", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = read_results(out)
    _check_groups_like_with_like(doc)
    g = doc.groups["m"]["mine"]
    assert g.primary == "acc" and g.metrics["acc"].tasks == ["mine_mc"] and g.metrics["f1"].tasks == ["mine_qa"]
    assert g.other_headlines == {"f1": ["mine_qa"]}
    assert "mine · f1 (mean of 1)" in proc.stdout and "mine (mean of 1)" in proc.stdout


def test_a_task_names_its_headline_metric(tmp_path):
    task = ("task: mine_mc\noutput_type: multiple_choice\n"
            "dataset: {local: {path: 'builtin:core/data/classification.jsonl'}, id_field: id, where: \"task == 'sentiment'\"}\n"
            "choices: \"['positive', 'negative']\"\ntarget: label\n"
            "prompts: [{id: p, template: 'Review: {{ text }}\\nSentiment:'}]\nmetrics: [acc, macro_f1]\n")
    (tmp_path / "t.yaml").write_text(task + "primary: macro_f1\n")
    out = tmp_path / "run"
    proc = run_cli("run", "-m", "mock:m", "-t", str(tmp_path / "t.yaml"), "--limit", "4", "-o", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert read_results(out).results["m"]["mine_mc"].primary == "macro_f1"
    (tmp_path / "bad.yaml").write_text(task + "primary: f1\n")
    bad = run_cli("validate", str(tmp_path / "bad.yaml"))
    assert bad.returncode == 2 and "primary 'f1' is not one of its metrics (acc, macro_f1)" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
