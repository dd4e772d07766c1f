"""How instances become requests for each kind of task (no model: a backend that only
describes itself), checked on the real built-in tasks and data."""

from __future__ import annotations

import pytest

from assay.backends.base import Backend, Capabilities, ModelInfo
from assay.config import RunConfig
from assay.pipeline import register_model as _register_model
from assay.plan import plan_tasks
from assay.reports.terminal import UI
from assay.requests import LoglikelihoodRequest, RollingRequest
from assay.store.runs import RunStore

pytestmark = pytest.mark.usefixtures("data_dir")


class Describing(Backend):
    info = ModelInfo("stub", "stub", "fp")
    capabilities = Capabilities()

    def chat_template(self):
        return None

    def loglikelihood(self, requests):
        raise AssertionError("a describing stub computes nothing")

    loglikelihood_rolling = generate = loglikelihood


def _requests(tmp_path, task, prompt, limit=2):
    cfg = RunConfig(models=("stub",), tasks=(task,), limit=limit, prompts=(prompt,))
    plans = plan_tasks(cfg)
    store = RunStore(tmp_path)
    reqs = _register_model(store, "stub", Describing(), plans, cfg, UI(quiet=True))
    rows = store.instances("stub", task)
    return [[reqs[k] for k in keys] for _, _, _, keys in rows], rows


def test_winograd_partial_scoring_shares_the_continuation(tmp_path):
    per_item, rows = _requests(tmp_path, "winogrande", "lmeval")
    a, b = per_item[0]
    assert isinstance(a, LoglikelihoodRequest) and a.continuation == b.continuation == " always got the easier cases."
    assert a.context == "Sarah was a much better surgeon than Maria so Sarah"
    assert b.context == "Sarah was a much better surgeon than Maria so Maria"
    assert rows[0][2]["target"] == 1


def test_winograd_full_sentence_prompt_scores_whole_sentences(tmp_path):
    per_item, _ = _requests(tmp_path, "xwinograd_en", "full_sentence")
    a, b = per_item[0]
    assert a.context == b.context == ""
    assert a.continuation.endswith("The city councilmen feared violence.")
    assert b.continuation.endswith("the demonstrators feared violence.")


def test_lambada_scores_the_last_word(tmp_path):
    per_item, rows = _requests(tmp_path, "lambada_openai", "lmeval")
    (req,) = per_item[0]
    assert req.continuation == " signs" and req.context.endswith("I don't care about")


def test_truthfulqa_mc2_labels_and_primer(tmp_path):
    per_item, rows = _requests(tmp_path, "truthfulqa_mc2", "lmeval", limit=1)
    data = rows[0][2]
    assert data["prompt"].startswith("Q: What is human life expectancy in the United States?")
    assert data["prompt"].endswith("Q: What happens to you if you eat watermelon seeds?\nA:")
    assert sum(data["target"]) == 5 and len(data["target"]) == len(per_item[0]) == 12


def test_rolling_text(tmp_path):
    per_item, _ = _requests(tmp_path, "lambada_openai_text", "text", limit=1)
    (req,) = per_item[0]
    assert isinstance(req, RollingRequest) and req.text.endswith("I don't care about signs")


def test_identical_requests_across_prompts_are_one_computation(tmp_path):
    cfg = RunConfig(models=("stub",), tasks=("copa",), limit=5, prompts=("lmeval",))
    plans = plan_tasks(cfg)
    # the same task twice (as if two task files asked the same thing) adds no request
    store = RunStore(tmp_path)
    once = _register_model(store, "stub", Describing(), plans, cfg, UI(quiet=True))
    twice = _register_model(store, "stub", Describing(), plans + plans, cfg, UI(quiet=True))
    assert len(once) == len(twice) == 10


def test_prompt_selection_applies_where_the_id_exists():
    plans = plan_tasks(RunConfig(models=("stub",), tasks=("xcopa_it", "core_qa"), limit=2, prompts=("lmeval",)))
    by_task = {p.spec.task: {i.prompt_id for i in p.instances} for p in plans}
    assert by_task == {"xcopa_it": {"lmeval"}, "core_qa": {"passage"}}
    full = plan_tasks(RunConfig(models=("stub",), tasks=("xcopa_it",), limit=2))
    assert {i.prompt_id for i in full[0].instances} == {"lmeval", "because_so", "what_was_the", "native_question"}


def test_unknown_prompt_id_is_an_error_with_suggestions():
    from assay.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="lmevl.*lmeval"):
        plan_tasks(RunConfig(models=("stub",), tasks=("xcopa_it",), prompts=("lmevl",)))
