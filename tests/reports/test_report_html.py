"""The HTML comparison report, opened in a real headless Chromium.

The documents are built by hand (``sample_doc``) so these tests pin the page, not the numbers
``compare.build`` computes: what must be true of any valid document is that every leaderboard
row, task, item and filter on the page agrees with the document it came from.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from functools import cache
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from assay.reports.html import fmt_stderr, fmt_value, items_json, render_html, write_html
from browser import (
    PNG_MAGIC,
    assert_no_console_errors,
    chrome,  # noqa: F401  (a fixture)
    console_entries,
    open_page,
    output_dir,
    save_section_screenshots,
)

MODELS = ["smollm2-135m-instruct", "gemma3-270m", "qwen2.5-0.5b-instruct", "llama3.2-1b-instruct", "phi-3-mini"]
# name, family, language, dataset, metric, percent
TASKS = [
    ("xcopa_et", "commonsense reasoning", "et", "xcopa", "acc", True),
    ("xcopa_it", "commonsense reasoning", "it", "xcopa", "acc", True),
    ("xcopa_sw", "commonsense reasoning", "sw", "xcopa", "acc", True),
    ("squad_gen", "reading comprehension", None, "squad", "rougeL", False),
    ("triviaqa", "reading comprehension", None, "triviaqa", "exact_match", True),
]
PARTIAL_TASK = "triviaqa"  # run by only some of the models
PROMPTS = ("lmeval", "mcq")
SECTIONS = ("summary", "leaderboard", "charts", "pairs", "items", "provenance")
INJECTION = "Complete: </script><script>alert(1)</script> now"
IMG_INJECTION = '<img src=x onerror="window.__pwned = 1">'
SEARCH_WORD = "Zanzibar"
RESPONSE_WORD = "quetzalcoatl"
MARKUP_SENTENCE = "Scores & ranks <b>are</b> estimates."
VERDICTS = ("correct", "wrong", "no answer", "invalid")


# --------------------------------------------------------------------------- the documents


def _runners(task: str, models: list[str]) -> list[str]:
    return models[: max(1, len(models) // 2)] if task == PARTIAL_TASK else models


def _scores(rng: random.Random, models: list[str]) -> dict[str, dict[str, Any]]:
    scores: dict[str, dict[str, Any]] = {}
    for name, *_ in TASKS:
        scores[name] = {}
        for m in _runners(name, models):
            value = round(rng.uniform(0.3, 0.8), 4)
            per_prompt = {p: round(min(1.0, max(0.0, value + rng.uniform(-0.08, 0.08))), 4) for p in PROMPTS}
            scores[name][m] = {"value": value, "stderr": 0.045, "n": 100, "per_prompt": per_prompt}
    return scores


def _leaderboard(scope: str, tasks: list[str], models: list[str], scores: dict) -> dict[str, Any]:
    rows = []
    for m in models:
        values = [scores[t][m]["value"] for t in tasks]
        se = math.sqrt(sum(scores[t][m]["stderr"] ** 2 for t in tasks)) / len(tasks)
        rows.append({"model": m, "value": sum(values) / len(values), "stderr": se, "n_tasks": len(tasks)})
    rows.sort(key=lambda r: -r["value"])
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return {"scope": scope, "tasks": tasks, "rows": rows}


def _leaderboards(models: list[str], scores: dict) -> list[dict[str, Any]]:
    shared = [t for t, *_ in TASKS if all(m in scores[t] for m in models)]
    boards = [_leaderboard("overall", shared, models, scores)]
    for family in dict.fromkeys(f for _, f, *_ in TASKS):
        tasks = [t for t, f, *_ in TASKS if f == family and t in shared]
        boards.append(_leaderboard(family, tasks, models, scores))
    return boards


def _pairs(rng: random.Random, models: list[str], boards: list[dict], scores: dict) -> list[dict[str, Any]]:
    pairs = []
    scopes = [(lb["scope"], "overall" if i == 0 else "family") for i, lb in enumerate(boards)]
    scopes += [(t, "task") for t, *_ in TASKS]
    for a, b in combinations(models, 2):
        for scope, kind in scopes:
            if kind == "task" and not (a in scores[scope] and b in scores[scope]):
                continue
            diff = rng.uniform(-0.1, 0.1)
            p = rng.uniform(0.0, 0.5)
            pairs.append({
                "scope": scope, "kind": kind, "a": a, "b": b, "n": 240, "mean_a": 0.6, "mean_b": 0.6 - diff,
                "diff": diff, "ci_low": diff - 0.04, "ci_high": diff + 0.04, "p_value": p,
                "test": "McNemar (exact)" if kind == "task" else "paired permutation", "significant": p < 0.05,
            })
    return pairs


def _prompt_text(rng: random.Random, task: str, prompt_id: str, doc: int) -> str:
    if (task, prompt_id, doc) == ("xcopa_et", "lmeval", 0):
        return INJECTION
    if (task, prompt_id, doc) == ("xcopa_it", "lmeval", 3):
        return f"The ferry to {SEARCH_WORD} was late, so"
    if (task, prompt_id, doc) == ("squad_gen", "mcq", 1):
        return "\n".join(f"Context line {i}: the river rises in spring." for i in range(12)) + "\nQuestion: when?"
    return f"{task} question {doc} ({prompt_id}): which option follows {rng.randint(1000, 9999)}?"


def _item(rng: random.Random, task: str, prompt_id: str, doc: int, runners: list[str]) -> dict[str, Any]:
    multiple_choice = task.startswith("xcopa")
    choices = [f"option one {doc}", f"option two {doc}"] if multiple_choice else None
    target = choices[doc % 2] if choices else f"answer {doc}"
    answers = {}
    for i, m in enumerate(runners):
        verdict = rng.choices(VERDICTS, weights=(50, 35, 10, 5))[0]
        response = f"I think it is {target if verdict == 'correct' else 'something else'}."
        if (task, prompt_id, doc, i) == ("squad_gen", "lmeval", 2, 0):
            response = f"The feathered serpent {RESPONSE_WORD.upper()} knows."
        if (task, prompt_id, doc, i) == ("xcopa_sw", "mcq", 4, 0):
            response = IMG_INJECTION
        answers[m] = {
            "response": response, "extracted": None if verdict == "no answer" else str(doc % 2),
            "score": 1.0 if verdict == "correct" else 0.0, "verdict": verdict,
        }
    verdicts = {a["verdict"] for a in answers.values()}
    return {"task": task, "prompt_id": prompt_id, "doc_id": str(doc), "prompt": _prompt_text(rng, task, prompt_id, doc),
            "target": target, "choices": choices, "answers": answers, "disagree": len(verdicts) > 1}


def _task_entry(name: str, family: str, language: str | None, dataset: str, metric: str, percent: bool,
                models: list[str]) -> dict[str, Any]:
    return {
        "name": name, "family": family, "language": language, "dataset": dataset, "metric": metric,
        "percent": percent, "description": f"{dataset} ({language or 'en'})",
        "hash": hashlib.sha256(name.encode()).hexdigest()[:16], "version": 1, "prompts": {p: f"{p}-hash-{i}" for i, p in enumerate(PROMPTS)},
        "chat_formats": {m: {p: "none (-)" for p in PROMPTS} for m in _runners(name, models)}, "group": [dataset],
    }


def sample_doc(n_models: int, docs_per_prompt: int = 6, seed: int = 7) -> dict[str, Any]:
    """A valid report document: 2 families, a 3-language dataset, 2 prompts per dataset, mixed verdicts.

    With the default 6 documents per (task, prompt) it holds 5 × 2 × 6 = 60 items.
    """
    rng = random.Random(seed)
    models = MODELS[:n_models]
    scores = _scores(rng, models)
    boards = _leaderboards(models, scores)
    xcopa = [(t, lang) for t, _, lang, ds, *_ in TASKS if ds == "xcopa"]
    items = [_item(rng, t, p, d, _runners(t, models)) for t, *_ in TASKS for p in PROMPTS for d in range(docs_per_prompt)]
    return {
        "title": "assay report: " + " vs ".join(models), "created": "2026-11-24 00:10 UTC",
        "runs": [{"dir": "runs/demo", "created": "2026-11-23 21:02 UTC", "scored": "2026-11-23 21:30 UTC",
                  "tasks": [t for t, *_ in TASKS], "models": models,
                  "environment": {"python": "3.11.7", "assay": "0.1.0", "torch": "2.13.0+cpu"},
                  "config": {"limit": 100, "chat_format": None, "prompts": []}}],
        "models": [{"id": m, "name": m, "backend": "llamacpp", "fingerprint": f"{i:024x}", "run": 0,
                    "args": {"path": f"/models/{m}.gguf", "sha256": f"{i:064x}"}} for i, m in enumerate(models)],
        "tasks": [_task_entry(*spec, models) for spec in TASKS],
        "scores": scores,
        "leaderboards": boards,
        "languages": [{"dataset": "xcopa", "languages": [lang for _, lang in xcopa], "tasks": {lang: t for t, lang in xcopa},
                       "values": {m: {lang: scores[t][m]["value"] for t, lang in xcopa} for m in models}, "percent": True}],
        "pairs": _pairs(rng, models, boards, scores),
        "summary": [f"Overall, {boards[0]['rows'][0]['model']} leads.", MARKUP_SENTENCE],
        "items": items,
    }


@cache
def _report(n_models: int, docs_per_prompt: int, folder: str) -> tuple[Path, str]:
    doc = sample_doc(n_models, docs_per_prompt)
    path = write_html(doc, Path(folder) / f"report-{n_models}-{docs_per_prompt}.html")
    return path, path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("html-report"))


def load(driver: Any, report_dir: str, n_models: int, docs_per_prompt: int = 6) -> dict[str, Any]:
    """Render (once per document), open it fresh and return the document it came from."""
    path, _ = _report(n_models, docs_per_prompt, report_dir)
    open_page(driver, path)
    return sample_doc(n_models, docs_per_prompt)


# --------------------------------------------------------------------------- page helpers


def js(driver: Any, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


def shown_cards(driver: Any) -> list[tuple[str, str, str]]:
    return [tuple(x) for x in js(driver, """
        return Array.from(document.querySelectorAll('#item-list .item'))
            .map(c => [c.dataset.task, c.dataset.prompt, c.dataset.doc]);""")]


def set_filters(driver: Any, task: str = "", verdict: str = "", disagree: bool = False, search: str = "") -> None:
    """Set every control the way a reader would and fire the events the page listens to."""
    js(driver, """
        const [task, verdict, disagree, search] = arguments;
        const fire = (el, type) => el.dispatchEvent(new Event(type, {bubbles: true}));
        const t = document.getElementById('filter-task'); t.value = task; fire(t, 'change');
        const v = document.getElementById('filter-verdict'); v.value = verdict; fire(v, 'change');
        const d = document.getElementById('filter-disagree'); d.checked = disagree; fire(d, 'change');
        const s = document.getElementById('search'); s.value = search; fire(s, 'input');""",
       task, verdict, disagree, search)


def key(item: dict[str, Any]) -> tuple[str, str, str]:
    return (item["task"], item["prompt_id"], item["doc_id"])


def expect_shown(driver: Any, doc: dict[str, Any], selected: list[dict[str, Any]]) -> None:
    """The count reads 'N of M items' and the first page of cards is exactly the first N matches."""
    total = len(doc["items"])
    assert driver.find_element("id", "item-count").text == f"{len(selected)} of {total} items"
    assert shown_cards(driver) == [key(it) for it in selected[:50]]


# --------------------------------------------------------------------------- without a browser


def test_values_follow_the_percent_rule() -> None:
    assert fmt_value(0.59, True) == "59.0"
    assert fmt_value(0.59, False) == "0.590"
    assert fmt_value(None, True) == "—"
    assert fmt_value(float("nan"), False) == "—"
    assert fmt_stderr(0.049, True) == "± 4.9"
    assert fmt_stderr(None, True) == ""


def test_items_json_cannot_close_its_script_element() -> None:
    items = [{"prompt": INJECTION + " <!-- x"}]
    text = items_json(items)
    assert "</" not in text and "<!--" not in text
    assert json.loads(text) == items


def test_bad_document_names_the_field() -> None:
    doc = sample_doc(2)
    del doc["leaderboards"]
    with pytest.raises(ValueError, match="'leaderboards'"):
        render_html(doc)
    doc = sample_doc(2)
    del doc["items"][3]["doc_id"]
    with pytest.raises(ValueError, match=r"items\[3\]\.doc_id"):
        render_html(doc)


def test_write_html_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.html"
    assert write_html(sample_doc(1), target) == target
    write_html(sample_doc(2), target)  # overwrite
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]  # no temp file left behind
    text = target.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and MODELS[1] in text


def test_html_has_no_external_references(report_dir: str) -> None:
    for n in (1, 2, 5):
        _, text = _report(n, 6, report_dir)
        external = re.findall(r"""(?:\b(?:src|href)\s*=\s*["']?|url\(\s*["']?)\s*(?:https?:)?//""", text, re.I)
        assert external == [], external
        assert "@import" not in text and "<link rel=\"stylesheet\"" not in text
        assert "Content-Security-Policy" in text


# --------------------------------------------------------------------------- in Chromium


@pytest.mark.parametrize("n_models", [1, 2, 5])
def test_page_loads_without_errors_and_shows_every_section(chrome: Any, report_dir: str, n_models: int) -> None:
    doc = load(chrome, report_dir, n_models)
    assert_no_console_errors(chrome)
    for section in SECTIONS:
        assert js(chrome, "return document.querySelector(arguments[0]) !== null", f"section#{section} > h2")
        assert js(chrome, "return document.querySelector(`nav a[href='#${arguments[0]}']`) !== null", section)
    counts = chrome.find_element("css selector", "#summary .counts").text
    assert counts == f"{n_models} model{'s' if n_models > 1 else ''} · {len(TASKS)} tasks · 1 run"
    sentences = [li.text for li in chrome.find_elements("css selector", "#summary li")]
    assert sentences == doc["summary"]  # the markup in a sentence is text, not a <b> element
    assert js(chrome, "return document.querySelectorAll('#summary b').length") == 0
    kinds = js(chrome, "return Array.from(document.querySelectorAll('#charts figure.chart')).map(f => f.dataset.kind)")
    # bars per family (percent and raw reading comprehension apart), the language heatmap, prompt spread, profile
    assert set(kinds) == {"bar", "heatmap", "spread", "profile"}
    assert js(chrome, "return document.querySelectorAll('#charts figure.chart svg').length") == len(kinds)
    pair_rows = chrome.find_elements("css selector", "#pairs-table tr.pair")
    assert len(pair_rows) == len(doc["pairs"])


@pytest.mark.parametrize("n_models", [1, 2, 5])
def test_leaderboards_and_per_task_table_match_the_document(chrome: Any, report_dir: str, n_models: int) -> None:
    doc = load(chrome, report_dir, n_models)
    for lb in doc["leaderboards"]:
        table = chrome.find_element("css selector", f"table.leaderboard[data-scope='{lb['scope']}']")
        rows = table.find_elements("css selector", "tbody tr")
        assert [r.get_attribute("data-model") for r in rows] == [r["model"] for r in lb["rows"]]
        assert [r.find_element("css selector", "td").text for r in rows] == [str(r["rank"]) for r in lb["rows"]]
        assert len(rows) == n_models

    task_rows = chrome.find_elements("css selector", "table#per-task tr.task-row")
    assert [r.get_attribute("data-task") for r in task_rows] == [t["name"] for t in doc["tasks"]]
    cells = {r.get_attribute("data-task"): [c.text for c in r.find_elements("css selector", "td.num")] for r in task_rows}
    assert cells[PARTIAL_TASK].count("—") == n_models - len(doc["scores"][PARTIAL_TASK])
    assert all(re.fullmatch(r"\d+\.\d ± 4\.5", c) for c in cells["xcopa_it"]), cells["xcopa_it"]
    assert all(re.fullmatch(r"0\.\d{3} ± 0\.045", c) for c in cells["squad_gen"]), cells["squad_gen"]

    bold = js(chrome, """return Array.from(document.querySelectorAll('#per-task tr.task-row'))
        .map(r => [r.dataset.task, Array.from(r.querySelectorAll('td.num')).findIndex(c => c.querySelector('strong'))]);""")
    for task, index in bold:
        scores = doc["scores"][task]
        if len(scores) < 2:
            assert index == -1  # nothing to compare against
        else:
            best = max(scores, key=lambda m: scores[m]["value"])
            assert MODELS[index] == best


@pytest.mark.parametrize("n_models", [1, 2, 5])
def test_item_filters_and_search(chrome: Any, report_dir: str, n_models: int) -> None:
    doc = load(chrome, report_dir, n_models)
    items = doc["items"]
    assert len(items) == 60
    expect_shown(chrome, doc, items)
    assert len(shown_cards(chrome)) == 50

    set_filters(chrome, task="squad_gen")
    expect_shown(chrome, doc, [it for it in items if it["task"] == "squad_gen"])

    set_filters(chrome, verdict="no answer")
    no_answer = [it for it in items if any(a["verdict"] == "no answer" for a in it["answers"].values())]
    assert 0 < len(no_answer) < len(items)
    expect_shown(chrome, doc, no_answer)

    set_filters(chrome, disagree=True)
    expect_shown(chrome, doc, [it for it in items if it["disagree"]])

    set_filters(chrome, search=SEARCH_WORD.lower())
    expect_shown(chrome, doc, [it for it in items if SEARCH_WORD in it["prompt"]])
    assert len(shown_cards(chrome)) == 1

    set_filters(chrome, search=RESPONSE_WORD)  # lower case finds the upper-case response
    expect_shown(chrome, doc, [it for it in items
                               if any(RESPONSE_WORD.upper() in a["response"] for a in it["answers"].values())])
    assert len(shown_cards(chrome)) == 1

    set_filters(chrome, task="xcopa_it", verdict="correct")
    expect_shown(chrome, doc, [it for it in items if it["task"] == "xcopa_it"
                               and any(a["verdict"] == "correct" for a in it["answers"].values())])

    set_filters(chrome)
    expect_shown(chrome, doc, items)
    assert_no_console_errors(chrome)


def test_verdict_options_list_the_verdicts_present(chrome: Any, report_dir: str) -> None:
    doc = load(chrome, report_dir, 5)
    options = js(chrome, "return Array.from(document.querySelectorAll('#filter-verdict option')).map(o => o.value)")
    present = {a["verdict"] for it in doc["items"] for a in it["answers"].values()}
    assert options == ["", "correct", "wrong", *sorted(present - {"correct", "wrong"})]
    tasks = js(chrome, "return Array.from(document.querySelectorAll('#filter-task option')).map(o => o.value)")
    assert tasks == ["", *[t for t, *_ in TASKS]]


def test_show_more_pages_fifty_at_a_time(chrome: Any, report_dir: str) -> None:
    doc = load(chrome, report_dir, 2, docs_per_prompt=12)
    items = doc["items"]
    assert len(items) == 120
    more = chrome.find_element("id", "show-more")
    assert len(shown_cards(chrome)) == 50 and more.is_displayed()
    more.click()
    assert len(shown_cards(chrome)) == 100
    more.click()
    assert shown_cards(chrome) == [key(it) for it in items]
    assert not more.is_displayed()
    assert chrome.find_element("id", "item-count").text == "120 of 120 items"
    set_filters(chrome, task="xcopa_et")  # a new filter starts again from the first page
    assert shown_cards(chrome) == [key(it) for it in items if it["task"] == "xcopa_et"]
    assert not more.is_displayed()


def test_markup_in_items_is_shown_as_text(chrome: Any, report_dir: str) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    doc = load(chrome, report_dir, 2)
    with pytest.raises(NoAlertPresentException):
        chrome.switch_to.alert  # noqa: B018  (reading it is the check)
    assert js(chrome, "return window.__pwned === undefined")
    assert js(chrome, "return document.querySelectorAll('#item-list img, #item-list script').length") == 0
    first = chrome.find_element("css selector", "#item-list .item[data-task='xcopa_et'][data-doc='0'][data-prompt='lmeval']")
    assert first.find_element("css selector", "pre.prompt").get_attribute("textContent") == INJECTION
    responses = js(chrome, "return Array.from(document.querySelectorAll('#item-list pre.response')).map(p => p.textContent)")
    assert IMG_INJECTION in responses
    # the data script survived intact: the page parsed every item
    assert js(chrome, "return JSON.parse(document.getElementById('items-data').textContent).length") == len(doc["items"])
    assert_no_console_errors(chrome)


def test_long_prompts_collapse_and_expand(chrome: Any, report_dir: str) -> None:
    load(chrome, report_dir, 2)
    set_filters(chrome, search="context line 11")
    card = chrome.find_element("css selector", "#item-list .item")
    pre = card.find_element("css selector", "pre.prompt")
    assert "collapsed" in pre.get_attribute("class")
    collapsed_height = pre.size["height"]
    card.find_element("css selector", "button.toggle-prompt").click()
    assert "collapsed" not in pre.get_attribute("class")
    assert pre.size["height"] > collapsed_height


def test_pairs_filter_by_kind(chrome: Any, report_dir: str) -> None:
    doc = load(chrome, report_dir, 5)
    select = chrome.find_element("id", "filter-pair-kind")
    for kind in ("task", "family", "overall", ""):
        js(chrome, "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change'));", select, kind)
        visible = js(chrome, """return Array.from(document.querySelectorAll('#pairs-table tr.pair'))
            .filter(r => r.offsetParent !== null).map(r => r.dataset.kind)""")
        assert visible == [p["kind"] for p in doc["pairs"] if not kind or p["kind"] == kind]
    verdicts = [c.text for c in chrome.find_elements("css selector", "#pairs-table tr.pair td:nth-child(8)")]
    assert verdicts == ["significant" if p["significant"] else "too close" for p in doc["pairs"]]
    # Δ is in points where every task of the scope is a percentage, raw otherwise
    percent = {t: pct for t, *_, pct in TASKS}
    scope_tasks = {lb["scope"]: lb["tasks"] for lb in doc["leaderboards"]}
    deltas = [c.text for c in chrome.find_elements("css selector", "#pairs-table tr.pair td:nth-child(5)")]
    for p, shown in zip(doc["pairs"], deltas, strict=True):
        tasks = [p["scope"]] if p["kind"] == "task" else scope_tasks[p["scope"]]
        text = f"{p['diff'] * 100:+.1f} pts" if all(percent[t] for t in tasks) else f"{p['diff']:+.3f}"
        assert shown == text.replace("-", "\u2212")


def test_page_fetches_nothing(chrome: Any, report_dir: str) -> None:
    load(chrome, report_dir, 5)
    assert js(chrome, "return performance.getEntriesByType('resource').map(e => e.name)") == []
    assert not [e for e in console_entries(chrome) if "Content Security Policy" in str(e.get("message"))]


@pytest.mark.parametrize("n_models", [1, 2, 5])
def test_section_screenshots(chrome: Any, report_dir: str, n_models: int, request: pytest.FixtureRequest) -> None:
    load(chrome, report_dir, n_models)
    paths = save_section_screenshots(chrome, request.node.name, SECTIONS)
    assert [p.parent for p in paths] == [output_dir()] * len(SECTIONS)
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000, path
    assert_no_console_errors(chrome)


def test_empty_sections_degrade_to_messages(chrome: Any, tmp_path: Path) -> None:
    doc = sample_doc(2)
    doc.update(items=[], languages=[], pairs=[])
    open_page(chrome, write_html(doc, tmp_path / "empty.html"))
    assert_no_console_errors(chrome)
    assert chrome.find_element("id", "item-count").text == "0 of 0 items"
    assert shown_cards(chrome) == [] and not chrome.find_element("id", "show-more").is_displayed()
    kinds = js(chrome, "return Array.from(document.querySelectorAll('#charts figure.chart')).map(f => f.dataset.kind)")
    assert "heatmap" not in kinds and "bar" in kinds
    assert "No pairs" in chrome.find_element("id", "pairs").text


def test_narrow_screen_does_not_scroll_sideways(chrome: Any, report_dir: str) -> None:
    """Wide tables scroll inside their own box; the page itself stays as wide as the phone."""
    load(chrome, report_dir, 5)
    chrome.set_window_size(420, 900)
    try:
        widths = js(chrome, "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], widths
        per_task = chrome.find_element("css selector", "#per-task")
        assert per_task.size["width"] > widths[1]  # the table is wider than the screen, its wrapper scrolls
    finally:
        chrome.set_window_size(1280, 900)
