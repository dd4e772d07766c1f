"""The scoring stage on a hand-filled run store: each metric from stored responses only."""

from __future__ import annotations

import math

import pytest

from assay.requests import GenerateRequest, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult, request_key
from assay.scoring.score import score_task
from assay.store.runs import RunStore
from assay.tasks.spec import TaskSpec

FP = "model-fp"


def _spec(**kw) -> TaskSpec:
    base = dict(task="t", dataset={"local": {"path": "x.jsonl"}}, prompts=[{"id": "p", "template": "{{ q }}"}])
    return TaskSpec.model_validate(base | kw)


def _fill(store: RunStore, spec: TaskSpec, items: list[tuple[dict, list]]) -> None:
    rows, results = [], []
    for n, (data, pairs) in enumerate(items):
        keys = []
        for req, res in pairs:
            k = request_key(req)
            keys.append(k)
            results.append((k, req, res))
        rows.append(("p", str(n), {"prompt": f"prompt {n}", **data}, keys))
    store.put_task("m", spec.task, spec.model_dump(mode="json"), {}, rows)
    store.put_results(FP, results, "s")


def _mc(n: int, lps: list[float], target: int, choices: list[str]):
    pairs = [(LoglikelihoodRequest(f"ctx{n}", c), LoglikelihoodResult(lp, False, 1)) for c, lp in zip(choices, lps)]
    return {"choices": choices, "target": target}, pairs


def test_acc_and_acc_norm(tmp_path):
    spec = _spec(output_type="multiple_choice", choices="['a', 'b']", target="0", metrics=["acc", "acc_norm"])
    store = RunStore(tmp_path)
    # item 0: raw picks the short choice (wrong), per-char picks the long one (right)
    _fill(store, spec, [_mc(0, [-2.0, -3.0], 1, ["x", "xxxxxx"]), _mc(1, [-1.0, -5.0], 0, ["yy", "yy"])])
    res, samples = score_task(store, "m", FP, spec)
    assert res.metrics["acc"].value == pytest.approx(0.5)
    assert res.metrics["acc_norm"].value == pytest.approx(1.0)
    assert res.metrics["acc"].stderr == pytest.approx(0.5)
    assert [s["verdict"] for s in samples] == ["wrong", "correct"]


def _gen(n: int, texts: list[str], target):
    pairs = [(GenerateRequest(f"ctx{n}", sample_index=i, temperature=0.5 if len(texts) > 1 else 0.0), GenerateResult(t, 3, "stop")) for i, t in enumerate(texts)]
    return {"target": target, "choices": []}, pairs


def test_label_mapping_accuracy_and_macro_f1(tmp_path):
    spec = _spec(output_type="generate", target="label", metrics=["label_acc", "macro_f1"],
                 extract={"name": "label", "args": {"labels": {"positive": ["good"], "negative": ["bad"]}}})
    store = RunStore(tmp_path)
    _fill(store, spec, [
        _gen(0, ["The review seems to be positive overall."], "positive"),
        _gen(1, ["Sentiment: Negative."], "negative"),
        _gen(2, ["Mixed feelings, both good and bad."], "negative"),
        _gen(3, ["It is good."], "negative"),
    ])
    res, samples = score_task(store, "m", FP, spec)
    assert res.metrics["label_acc"].value == pytest.approx(0.5)
    assert [s["extracted"] for s in samples] == ["positive", "negative", None, "positive"]
    # positive: P=1/2 R=1 F1=2/3; negative: P=1 R=1/3 F1=1/2 -> macro 7/12
    assert res.metrics["macro_f1"].value == pytest.approx(7 / 12)
    assert res.metrics["macro_f1"].stderr > 0


def test_squad_metrics_on_verbose_answers(tmp_path):
    spec = _spec(output_type="generate", target="answers", metrics=["f1", "exact_match"], extract="span")
    store = RunStore(tmp_path)
    _fill(store, spec, [_gen(0, ["The answer is 1889."], ["1889"]), _gen(1, ["the Eiffel Tower in Paris"], ["Eiffel Tower"])])
    res, _ = score_task(store, "m", FP, spec)
    assert res.metrics["exact_match"].value == pytest.approx(0.5)
    assert res.metrics["f1"].value == pytest.approx((1 + 2 * (2 / 4 * 1) / (2 / 4 + 1)) / 2)


def test_entity_micro_f1(tmp_path):
    spec = _spec(output_type="generate", target="entities", metrics=["entity_f1", "entity_precision", "entity_recall"], extract="entities")
    store = RunStore(tmp_path)
    gold = [{"text": "Ada Lovelace", "type": "PER"}, {"text": "London", "type": "LOC"}]
    _fill(store, spec, [_gen(0, ["- Ada Lovelace (PER)\n- London (LOC)\n- the city (LOC)"], gold), _gen(1, ["No entities."], gold[:1])])
    res, _ = score_task(store, "m", FP, spec)
    p, r = res.metrics["entity_precision"].value, res.metrics["entity_recall"].value
    assert p == pytest.approx(2 / 3) and r == pytest.approx(2 / 3)
    assert res.metrics["entity_f1"].value == pytest.approx(2 / 3)


def test_pass_at_k_from_several_samples(tmp_path):
    spec = _spec(output_type="generate", extract="code", target="{'kind': 'function', 'test': 'def check(f):\\n    assert f(2) == 4', 'entry_point': 'sq'}",
                 metrics=[{"name": "pass_at_k", "args": {"k": 1}}, {"name": "pass_at_k", "args": {"k": 2}}],
                 generation={"n": 3, "temperature": 0.5})  # pass@2 needs n >= 2 (checked at load)
    store = RunStore(tmp_path)
    target = {"kind": "function", "test": "def check(f):\n    assert f(2) == 4", "entry_point": "sq"}
    good = "```python\ndef sq(x):\n    return x * x\n```"
    bad = "def sq(x):\n    return x + 1"
    _fill(store, spec, [_gen(0, [good, bad, bad], target)])
    res, samples = score_task(store, "m", FP, spec)
    assert res.metrics["pass@1"].value == pytest.approx(1 / 3)
    assert res.metrics["pass@2"].value == pytest.approx(1 - (2 * 1) / (3 * 2))
    assert samples[0]["verdict"] == "partial" and len(samples[0]["exec"]) == 3


def test_incomplete_items_are_counted_not_scored(tmp_path):
    spec = _spec(output_type="multiple_choice", choices="['a', 'b']", target="0", metrics=["acc"])
    store = RunStore(tmp_path)
    data, pairs = _mc(0, [-1.0, -2.0], 0, ["a", "b"])
    _fill(store, spec, [(data, pairs)])
    # a second instance whose responses were never computed
    store.put_task("m", "t", spec.model_dump(mode="json"), {}, [("p", "0", {"prompt": "x", **data}, [request_key(r) for r, _ in pairs]), ("p", "1", {"prompt": "y", **data}, ["r1:missing"])])
    res, _ = score_task(store, "m", FP, spec)
    assert res.n_items == 1 and res.n_incomplete == 1 and not math.isnan(res.metrics["acc"].value)


def test_mc2_and_multilabel_acc(tmp_path):
    spec = _spec(output_type="multiple_choice", choices="['t1', 't2', 'f1']", target="[1, 1, 0]", metrics=["mc2", "acc"])
    store = RunStore(tmp_path)
    lps = [math.log(0.2), math.log(0.3), math.log(0.5)]
    _fill(store, spec, [({"choices": ["t1", "t2", "f1"], "target": [1, 1, 0]}, [(LoglikelihoodRequest("c", c), LoglikelihoodResult(lp, False, 1)) for c, lp in zip(["t1", "t2", "f1"], lps)])])
    res, samples = score_task(store, "m", FP, spec)
    assert res.metrics["mc2"].value == pytest.approx(0.5)
    assert res.metrics["acc"].value == 0.0  # the most likely answer is false


def test_loglikelihood_accuracy_is_greedy_and_perplexity_is_per_item(tmp_path):
    spec = _spec(output_type="loglikelihood", target="w", metrics=["acc", "perplexity"])
    store = RunStore(tmp_path)
    items = []
    for n, (lp, greedy) in enumerate([(-1.0, True), (-3.0, False)]):
        req = LoglikelihoodRequest(f"ctx{n}", " word")
        items.append(({"target": "word", "choices": []}, [(req, LoglikelihoodResult(lp, greedy, 1))]))
    _fill(store, spec, items)
    res, _ = score_task(store, "m", FP, spec)
    assert res.metrics["acc"].value == pytest.approx(0.5)
    assert res.metrics["perplexity"].value == pytest.approx(math.exp(2.0))


def test_aggregation_over_prompts_median_max_spread(tmp_path):
    spec = _spec(output_type="multiple_choice", choices="['a', 'b']", target="0", metrics=["acc"],
                 prompts=[{"id": p, "template": "{{ q }}"} for p in ("p1", "p2", "p3")])
    store = RunStore(tmp_path)
    rows, results = [], []
    # p1 gets 1/4 right, p2 2/4, p3 4/4
    right = {"p1": 1, "p2": 2, "p3": 4}
    for pid, n_right in right.items():
        for n in range(4):
            good = n < n_right
            keys = []
            for c, lp in zip(["a", "b"], [-1.0, -2.0] if good else [-2.0, -1.0]):
                req = LoglikelihoodRequest(f"{pid}-{n}", c)
                keys.append(request_key(req))
                results.append((keys[-1], req, LoglikelihoodResult(lp, False, 1)))
            rows.append((pid, str(n), {"prompt": "x", "choices": ["a", "b"], "target": 0}, keys))
    store.put_task("m", "t", spec.model_dump(mode="json"), {}, rows)
    store.put_results(FP, results, "s")
    res, _ = score_task(store, "m", FP, spec)
    acc = res.metrics["acc"]
    assert acc.value == pytest.approx(0.5) and acc.max == 1.0 and acc.min == 0.25
    assert acc.mean == pytest.approx(7 / 12) and acc.n_prompts == 3
    assert acc.std == pytest.approx(0.3818813, rel=1e-5)
    assert {k: v.value for k, v in acc.per_prompt.items()} == {"p1": 0.25, "p2": 0.5, "p3": 1.0}
    assert acc.stderr == acc.per_prompt["p2"].stderr  # the median prompt's
    assert res.n_items == 12 and res.n_docs == 4  # instances (documents × prompts) and documents
