"""The report's Judges section, from real runs: three mock models whose answers differ only in
length (one of them is markup), judged by the mock judge's rules (`judge=longer` prefers the
longer answer, `first` always the answer shown first, `garbage` never gives a verdict) and by
a judge that replies with markup (`answer=`). Checked in the document, the Markdown and the
HTML, and once in a real browser."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from assay.reports.compare import build, write_reports
from assay.reports.html import render_html
from assay.reports.markdown import render_markdown
from browser import assert_no_console_errors, chrome, open_page  # noqa: F401  (chrome: a fixture)
from conftest import run_cli

N = 8
ANSWER_MARKUP = "<script>alert(1)</script>"
REPLY_MARKUP = "<script>alert(2)</script> [[A]]"
MODELS = ["mock:long,answer=one two three four five six seven eight nine", "mock:mid,answer=one two three four five", f"mock:short,answer={ANSWER_MARKUP}"]
WARNING = "this judge prefers the answer shown first: its pairwise verdicts are unreliable"
# one task graded pass/fail against its reference and in pairs, one rated 1-10 without a reference and in pairs
FACTS = """\
task: facts
output_type: generate
dataset:
  local: {path: q.jsonl}
target: a
judge: {mode: both}
prompts:
  - id: p
    template: "{{ q }}"
metrics: [exact_match]
"""
OPINIONS = """\
task: opinions
output_type: generate
dataset:
  local: {path: q.jsonl}
target: a
judge: {mode: both, scale: 1-10, reference: none}
prompts:
  - id: p
    template: "Opinion: {{ q }}"
metrics: [exact_match]
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("judged")
    # the mid model's answer is the reference: exact_match and the pass/fail judge agree on every answer
    (root / "q.jsonl").write_text("".join(json.dumps({"q": f"Question {i}?", "a": "one two three four five"}) + "\n" for i in range(N)))
    (root / "facts.yaml").write_text(FACTS)
    (root / "opinions.yaml").write_text(OPINIONS)
    out = {}
    for key, judge in (("longer", "mock:judge,judge=longer"), ("first", "mock:judge,judge=first"),
                       ("garbage", "mock:judge,judge=garbage"), ("echo", f"mock:echo,answer={REPLY_MARKUP}")):
        out[key] = root / key
        p = run_cli("run", *[a for m in MODELS for a in ("-m", m)], "-t", f"{root / 'facts.yaml'},{root / 'opinions.yaml'}",
                    "-o", str(out[key]), "--no-cache", "--judge", judge, "-q", cwd=root)
        assert p.returncode == 0, p.stderr[-2000:]
    return out


def _section(md: str) -> str:
    return md.split("## Judges", 1)[1].split("## Provenance", 1)[0]


def _html_judges(page: str) -> str:
    return page.split('<section id="judges">', 1)[1].split("</section>", 1)[0]


def test_bradley_terry_ranks_in_order_and_single_grades(runs):
    doc = build([runs["longer"]])
    (j,) = doc["judges"]
    assert j["id"] == "judge" and j["backend"] == "mock" and not j["flagged"]
    res = json.loads((runs["longer"] / "results.json").read_text())
    assert j["fingerprint"] == res["judges"]["judge"]["fingerprint"]
    assert {(p["mode"], p["name"]) for p in j["prompts"]} == {("single", "single-v1"), ("pairwise", "pairwise-v1")}
    assert all(len(p["hash"]) == 12 for p in j["prompts"])
    # over all tasks, then each of the two tasks
    assert [s["scope"] for s in j["pairwise"]] == ["all", "facts", "opinions"]
    assert [b["model"] for b in j["pairwise"][0]["bradley_terry"]] == ["long", "mid", "short"]
    single = {(s["task"], s["model"]): s for s in j["single"]}
    assert single[("facts", "mid")]["scale"] == "pass/fail" and single[("facts", "mid")]["value"] == 1.0
    assert single[("facts", "mid")]["agreement"]["agree"] == 1.0
    assert single[("opinions", "long")]["scale"] == "1-10" and single[("opinions", "long")]["value"] == 5.0  # 1 + 9 words // 2
    assert not any(WARNING in s for s in doc["summary"])

    md = _section(render_markdown(doc))
    ranks = [md.index(f"| {k} | {m} |") for k, m in ((1, "long"), (2, "mid"), (3, "short"))]
    assert ranks == sorted(ranks)
    assert "single-v1" in md and "pairwise-v1" in md and j["fingerprint"][:12] in md
    assert "| facts | mid | pass/fail | 100.0% ± 0.0 | 8 | 0 | 0 | 100.0% | 1.00 |" in md
    assert "| opinions | long | 1-10 | 5.00/10 ± 0.00 | 8 | 0 | 0 | — | — |" in md
    assert "| long | mid | 8 | 8 | 0 | 0 | 100.0% |" in md  # within one task
    assert WARNING not in md and "flagged" not in md
    assert "unparseable judgements: 0; missing: 0" in md

    page = _html_judges(render_html(doc))
    bt = page.split('class="judge-bt"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr data-model="([^"]+)"><td class="num">(\d+)</td>', bt)
    assert rows == [("long", "1"), ("mid", "2"), ("short", "3")]
    assert WARNING not in page and 'class="warning"' not in page


def test_a_judge_that_prefers_the_first_answer_is_flagged(runs):
    doc = build([runs["first"]])
    (j,) = doc["judges"]
    assert j["flagged"] and j["pairwise"][0]["position_bias"]["flagged"]
    assert any(WARNING in s for s in doc["summary"])
    md = _section(render_markdown(doc))
    assert f"**Warning — position bias:** {WARNING}." in md and "**flagged**" in md
    page = _html_judges(render_html(doc))
    assert f'<p class="warning" role="alert"><strong>Position bias:</strong> {WARNING}.</p>' in page


def test_unparseable_judgements_are_shown(runs):
    doc = build([runs["garbage"]])
    (j,) = doc["judges"]
    pairs = 3 * 2  # model pairs × tasks
    assert j["pairwise"][0]["n_unparseable"] == 2 * pairs * N and j["pairwise"][0]["n_judged"] == 0
    assert all(s["n_unparseable"] == N and s["n"] == 0 and s["value"] is None for s in j["single"])
    total = 2 * pairs * N + 3 * 2 * N
    assert j["n_unparseable"] == total
    md = _section(render_markdown(doc))
    assert f"unparseable judgements: {total}; missing: 0" in md
    assert f"0 item pair(s) with a verdict; {2 * pairs * N} unparseable; 0 missing." in md
    assert f"| facts | long | pass/fail | — | 0 | {N} | 0 |" in md
    page = _html_judges(render_html(doc))
    assert f'<dd class="judge-n-unparseable">{total}</dd>' in page
    assert f'<span class="lost">{2 * pairs * N} unparseable</span>' in page
    assert any(f"{total} unparseable" in s for s in doc["summary"])
    # each answer's judgements say why there is no verdict
    item = doc["items"][0]
    assert {jj["verdict"] for a in item["answers"].values() for jj in a["judgements"]} == {"no verdict (unparseable)"}


class _Scripts(HTMLParser):
    """The page's elements as a browser's tokenizer sees them (script content is raw text)."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.data: dict[str, str] = {}
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            a = dict(attrs)
            self.scripts.append(a)
            self._in = a.get("id") or "inline"
            self.data[self._in] = ""

    def handle_endtag(self, tag):
        if tag == "script":
            self._in = None

    def handle_data(self, data):
        if self._in:
            self.data[self._in] += data


def test_markup_in_answers_and_replies_stays_text(runs):
    doc = build([runs["echo"]])
    page = render_html(doc)
    assert ANSWER_MARKUP not in page and "<script>alert(2)</script>" not in page
    parsed = _Scripts()
    parsed.feed(page)
    # only the page's own three script elements
    assert [s.get("id") for s in parsed.scripts] == ["items-data", "report-meta", None]
    items = json.loads(parsed.data["items-data"])
    short = [it["answers"]["short"] for it in items]
    assert all(a["response"] == ANSWER_MARKUP for a in short)
    replies = {r["text"] for a in short for jj in a["judgements"] for r in jj["replies"]}
    assert replies == {REPLY_MARKUP}
    # the single grading's reply has no pass/fail verdict; each pair's always-A verdicts are a tie
    verdicts = {jj["mode"]: jj["verdict"] for jj in short[0]["judgements"]}
    assert verdicts["single"] == "no verdict (unparseable)" and verdicts["pairwise"].startswith("tie vs ")
    assert doc["judges"][0]["flagged"]


def test_judges_of_several_runs_are_told_apart(runs):
    doc = build([runs["longer"], runs["first"], runs["echo"]])
    assert [j["id"] for j in doc["judges"]] == ["judge (run 1)", "judge (run 2)", "echo"]
    assert [j["flagged"] for j in doc["judges"]] == [False, True, True]
    md = _section(render_markdown(doc))
    assert "### Judge judge (run 1)" in md and "### Judge judge (run 2)" in md and "### Judge echo" in md
    # the item viewer's judgements name the judge of the run the answers come from (the last one)
    assert {jj["judge"] for it in doc["items"] for a in it["answers"].values() for jj in a["judgements"]} == {"echo"}


def test_judged_report_in_chromium(runs, tmp_path, chrome):
    """The judged report in headless Chromium: no console error, the Judges section with its
    warning, and each answer's judgements in the item viewer, the raw reply collapsed and
    shown as text."""
    from selenium.webdriver.common.by import By

    html, _ = write_reports([runs["echo"]], tmp_path / "report.html")
    open_page(chrome, html)
    assert_no_console_errors(chrome)
    assert chrome.find_element(By.CSS_SELECTOR, "#judges .warning").is_displayed()
    assert chrome.execute_script("return document.scripts.length") == 3
    row = chrome.find_element(By.CSS_SELECTOR, "#item-list .item tr[data-model='short']")
    assert row.find_element(By.CSS_SELECTOR, "pre.response").get_attribute("textContent") == ANSWER_MARKUP
    judgements = row.find_elements(By.CSS_SELECTOR, ".judgement")
    assert [j.get_attribute("data-mode") for j in judgements] == ["single", "pairwise", "pairwise"]
    details = judgements[0].find_element(By.CSS_SELECTOR, "details")
    reply = details.find_element(By.CSS_SELECTOR, "pre.reply")
    assert not reply.is_displayed()  # collapsed until asked for
    details.find_element(By.CSS_SELECTOR, "summary").click()
    assert reply.is_displayed() and reply.text == REPLY_MARKUP
    assert judgements[0].find_element(By.CSS_SELECTOR, ".badge").text == "no verdict (unparseable)"
    assert len(judgements[1].find_elements(By.CSS_SELECTOR, "pre.reply")) == 2
    assert chrome.execute_script("return document.querySelectorAll('#item-list script').length") == 0
    assert_no_console_errors(chrome)


def test_long_replies_keep_their_verdict():
    from assay.reports.compare import MAX_REPLY, _reply

    long = "x " * 5000 + "Rating: [[7]]"
    cut = _reply("reply", long)["text"]
    assert cut.endswith("Rating: [[7]]") and len(cut) < MAX_REPLY + 120 and "whole reply" in cut
    assert _reply("reply", None)["text"] is None
