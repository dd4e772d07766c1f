"""The comparison document built from real runs: the embedded SmolLM2 and Gemma-3 GGUFs on
real XCOPA and core items, plus replayed answer files as further "models" with other task
sets. Checked against the run folders themselves (results.json and the sample files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assay.reports import paired
from assay.reports.compare import build
from assay.reports.markdown import render_markdown
from browser import assert_no_console_errors, chrome, open_page, save_section_screenshots  # noqa: F401  (chrome: a fixture)
from conftest import run_cli

BUILTIN = Path(__file__).resolve().parents[2] / "src" / "assay" / "tasks" / "builtin"
LIMIT = "10"


def _ok(p) -> None:
    assert p.returncode == 0, p.stderr[-2000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Five scored runs with different task sets:
    A: smollm2 + gemma3 on XCOPA (3 languages), core sentiment (choice) and core QA;
    B: smollm2 again (same fingerprint) on XCOPA-it and core topic (choice);
    C, D, E: replayed answers on core QA only (exact answers, half right, empty)."""
    root = tmp_path_factory.mktemp("runs")
    out = {k: root / k for k in "ABCDE"}
    _ok(run_cli("run", "-m", "smollm2-135m-instruct", "-m", "gemma3-270m", "-t", "xcopa_it,xcopa_sw,xcopa_zh,core_sentiment_choice,core_qa",
                "--prompt", "lmeval", "--limit", LIMIT, "-o", str(out["A"]), "-q"))
    _ok(run_cli("run", "-m", "smollm2-135m-instruct", "-t", "xcopa_it,core_topic_choice", "--prompt", "lmeval", "--limit", LIMIT, "-o", str(out["B"]), "-q"))
    rows = [json.loads(x) for x in (BUILTIN / "core/data/qa.jsonl").read_text().splitlines()[: int(LIMIT)]]
    answers = root / "answers.jsonl"
    lines = []
    for k, r in enumerate(rows):
        lines.append({"task": "core_qa", "id": r["id"], "answer": r["answers"][0], "model": "oracle"})
        lines.append({"task": "core_qa", "id": r["id"], "answer": r["answers"][0] if k % 2 else "I do not know.", "model": "half-right"})
        lines.append({"task": "core_qa", "id": r["id"], "answer": "", "model": "silent"})
    answers.write_text("".join(json.dumps(x) + "\n" for x in lines))
    for key, name in zip("CDE", ("oracle", "half-right", "silent")):
        _ok(run_cli("run", "-m", f"replay:{answers},model={name}", "-t", "core_qa", "-o", str(out[key]), "-q"))
    return out


def _samples(run: Path, label: str, task: str) -> list[dict]:
    return [json.loads(x) for x in (run / "samples" / label / f"{task}.jsonl").read_text().splitlines() if x.strip()]


def test_one_run(runs):
    run = runs["A"]
    res = json.loads((run / "results.json").read_text())
    doc = build([run])
    assert {m["id"] for m in doc["models"]} == {"smollm2-135m-instruct", "gemma3-270m"}
    assert {t["name"] for t in doc["tasks"]} == set(res["tasks"])
    # every score is the run's primary metric
    for task, by_model in doc["scores"].items():
        for model, s in by_model.items():
            r = res["results"][model][task]
            assert s["value"] == r["metrics"][r["primary"]]["value"]
    # the overall leaderboard: the mean over the shared tasks, best first
    overall = doc["leaderboards"][0]
    assert overall["scope"] == "overall" and overall["shared"]
    for row in overall["rows"]:
        vals = [doc["scores"][t][row["model"]]["value"] for t in overall["tasks"]]
        assert row["value"] == pytest.approx(sum(vals) / len(vals))
    assert [r["rank"] for r in overall["rows"]] == [1, 2]
    assert overall["rows"][0]["value"] >= overall["rows"][1]["value"]
    assert {lb["scope"] for lb in doc["leaderboards"][1:]} == {t["family"] for t in doc["tasks"]}
    # items: one per (task, prompt, doc) in the sample files, both answers side by side
    keys = {(s["task"], s["prompt_id"], str(s["doc_id"])) for t in res["tasks"] for s in _samples(run, "gemma3-270m", t)}
    assert {(i["task"], i["prompt_id"], i["doc_id"]) for i in doc["items"]} == keys
    assert all(len(i["answers"]) == 2 for i in doc["items"])
    # the XCOPA language matrix
    (lang,) = doc["languages"]
    assert lang["dataset"] == "xcopa" and lang["languages"] == ["it", "sw", "zh"]
    assert lang["values"]["gemma3-270m"]["sw"] == doc["scores"]["xcopa_sw"]["gemma3-270m"]["value"]


def test_paired_statistics_read_the_sample_files(runs):
    run = runs["A"]
    doc = build([run])
    a, b = doc["models"][0]["id"], doc["models"][1]["id"]
    (p,) = [p for p in doc["pairs"] if p["kind"] == "task" and p["scope"] == "xcopa_sw"]
    assert (p["a"], p["b"]) == (a, b)
    sa = {s["doc_id"]: s["score"] for s in _samples(run, a, "xcopa_sw")}
    sb = {s["doc_id"]: s["score"] for s in _samples(run, b, "xcopa_sw")}
    a_only = sum(1 for d in sa if sa[d] == 1 and sb[d] == 0)
    b_only = sum(1 for d in sa if sa[d] == 0 and sb[d] == 1)
    assert p["n"] == len(sa) == int(LIMIT)
    assert (p["a_only"], p["b_only"]) == (a_only, b_only)
    assert p["p_value"] == pytest.approx(paired.mcnemar_exact(a_only, b_only))
    assert p["diff"] == pytest.approx((sum(sa.values()) - sum(sb.values())) / len(sa))
    assert p["test"] == "McNemar (exact)"
    # the overall comparison pools every averaged task's items
    (ov,) = [p for p in doc["pairs"] if p["kind"] == "overall"]
    assert ov["n"] == sum(1 for i in doc["items"] if doc["tasks"][[t["name"] for t in doc["tasks"]].index(i["task"])]["percent"])
    # F1 on core_qa is fractional: a permutation test
    (qa,) = [p for p in doc["pairs"] if p["kind"] == "task" and p["scope"] == "core_qa"]
    assert qa["test"] in ("paired permutation", "McNemar (exact)")
    assert doc["summary"] and any(a in s for s in doc["summary"])


def test_two_runs_merge_the_same_model(runs):
    doc = build([runs["A"], runs["B"]])
    ids = [m["id"] for m in doc["models"]]
    assert sorted(ids) == ["gemma3-270m", "smollm2-135m-instruct"]  # same fingerprint: one model
    assert "core_topic_choice" in doc["scores"]
    assert set(doc["scores"]["core_topic_choice"]) == {"smollm2-135m-instruct"}
    overall = doc["leaderboards"][0]
    assert "core_topic_choice" not in overall["tasks"]  # only tasks both models ran are ranked
    assert {r["n_tasks"] for r in overall["rows"]} == {len(overall["tasks"])}
    # xcopa_it was in both runs: the later run's score counts
    later = json.loads((runs["B"] / "results.json").read_text())["results"]["smollm2-135m-instruct"]["xcopa_it"]
    assert doc["scores"]["xcopa_it"]["smollm2-135m-instruct"]["value"] == later["metrics"][later["primary"]]["value"]
    topic = [i for i in doc["items"] if i["task"] == "core_topic_choice"]
    assert topic and all(set(i["answers"]) == {"smollm2-135m-instruct"} and not i["disagree"] for i in topic)


def test_five_runs_compare_only_shared_items(runs):
    doc = build([runs[k] for k in "ABCDE"])
    ids = [m["id"] for m in doc["models"]]
    assert len(ids) == 5 and {"oracle", "half-right", "silent"} <= set(ids)
    by = {(p["a"], p["b"], p["scope"]): p for p in doc["pairs"]}
    # the replayed models ran core_qa only: their comparisons with the others are on it alone
    for p in doc["pairs"]:
        if {"oracle", "half-right", "silent"} & {p["a"], p["b"]}:
            assert p["n"] == int(LIMIT) and p["scope"] in ("overall", "core_qa", doc["scores"] and next(t["family"] for t in doc["tasks"] if t["name"] == "core_qa"))
    key = ("oracle", "silent", "core_qa") if ("oracle", "silent", "core_qa") in by else ("silent", "oracle", "core_qa")
    p = by[key]
    sign = 1 if key[0] == "oracle" else -1
    assert sign * p["diff"] == pytest.approx(1.0) and p["significant"]
    # the leaderboard: core_qa is the only task all five share
    overall = doc["leaderboards"][0]
    assert overall["tasks"] == ["core_qa"]
    assert overall["rows"][0]["model"] == "oracle" and overall["rows"][-1]["model"] == "silent"
    md = render_markdown(doc)
    for m in ids:
        assert f"| {m} |" in md
    assert "## Paired comparisons" in md and "oracle" in doc["summary"][0]


def test_run_writes_its_report_and_report_command(runs, tmp_path):
    assert (runs["A"] / "report.html").stat().st_size > 10_000
    md = (runs["A"] / "report.md").read_text()
    assert "gemma3-270m" in md and "smollm2-135m-instruct" in md and "xcopa_sw" in md
    out = tmp_path / "cmp.html"
    p = run_cli("report", str(runs["A"]), str(runs["C"]), "-o", str(out))
    _ok(p)
    assert out.is_file() and out.with_suffix(".md").is_file()
    assert "oracle" in out.read_text()


def test_report_errors_are_one_line(runs, tmp_path):
    p = run_cli("report", str(tmp_path / "nowhere"))
    assert p.returncode == 2 and "results.json" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = run_cli("report", str(runs["C"]), "-o", str(tmp_path / "x.txt"))
    assert p.returncode == 2 and ".html" in p.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.json").write_text("{not json")
    p = run_cli("report", str(bad))
    assert p.returncode == 2 and "results.json" in p.stderr and "Traceback" not in p.stderr


def test_real_five_run_report_in_chromium(runs, tmp_path, chrome):
    """The report of the five real runs, opened in headless Chromium: no console error, the
    leaderboards list every model, the item viewer's filters narrow the real items, and each
    section is saved as a screenshot (test-output/report/real-5-runs-*.png)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from assay.reports.compare import write_reports

    html, _ = write_reports([runs[k] for k in "ABCDE"], tmp_path / "report.html")
    doc = build([runs[k] for k in "ABCDE"])
    open_page(chrome, html)
    assert_no_console_errors(chrome)
    overall = chrome.find_element(By.CSS_SELECTOR, 'table.leaderboard[data-scope="overall"]')
    names = [r.text for r in overall.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert len(names) == 5 and names[0].find("oracle") >= 0 and "silent" in names[-1]
    total = len(doc["items"])
    count = chrome.find_element(By.ID, "item-count")
    assert count.text.startswith(f"{total} of {total}")
    Select(chrome.find_element(By.ID, "filter-task")).select_by_value("xcopa_sw")
    cards = chrome.find_elements(By.CSS_SELECTOR, ".item")
    assert len(cards) == int(LIMIT) and {c.get_attribute("data-task") for c in cards} == {"xcopa_sw"}
    Select(chrome.find_element(By.ID, "filter-task")).select_by_index(0)
    chrome.find_element(By.ID, "filter-disagree").click()
    disagree = sum(1 for i in doc["items"] if i["disagree"])
    assert count.text.startswith(f"{disagree} of {total}") and 0 < disagree < total
    chrome.find_element(By.ID, "filter-disagree").click()
    assert count.text.startswith(f"{total} of {total}")
    assert_no_console_errors(chrome)
    shots = save_section_screenshots(chrome, "real-5-runs", ["summary", "leaderboard", "charts", "pairs", "items", "provenance"])
    assert all(p.stat().st_size > 2000 and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in shots)


def test_long_prompts_keep_their_end():
    from assay.reports.compare import MAX_PROMPT, _tail

    short = "Question: 2+2?\nAnswer:"
    assert _tail(short) == short
    long = "x" * 10_000 + short
    cut = _tail(long)
    assert cut.endswith(short) and len(cut) < MAX_PROMPT + 120
    assert f"{10_000 + len(short) - MAX_PROMPT:,} earlier characters" in cut
