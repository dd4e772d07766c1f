"""Built-in SuperGLUE (CB, RTE, BoolQ, WiC, WSC), ANLI and XNLI tasks: every prompt renders
on the real data, every file is read whole (the MANIFEST's row counts and hashes), and the
`lmeval` prompts give exactly the text lm-evaluation-harness gives. Fast: no model runs."""

from __future__ import annotations

import re

import pytest

from assay.config import RunConfig
from assay.plan import plan_tasks
from assay.instances import build_instances
from assay.tasks.registry import builtin_index
from conftest import manifest

SUPERGLUE = {"cb": "superglue/CB/val.jsonl", "rte": "superglue/RTE/val.jsonl", "boolq": "superglue/BoolQ/val.jsonl",
             "wic": "superglue/WiC/val.jsonl", "wsc": "superglue/WSC/val.jsonl"}
ANLI = {f"anli_r{r}": f"anli/ANLI_analysis_r{r}_dev.csv" for r in (1, 2, 3)}
XNLI_LANGS = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
XNLI = {f"xnli_{lang}": f"xnli/dev-{lang}.tsv" for lang in XNLI_LANGS}
FILES = {**SUPERGLUE, **ANLI, **XNLI}
NATIVE = ("fr", "de", "es", "ru", "zh")  # XNLI languages with prompts written in the language itself




def _plan(task: str, limit: int | None = 3, prompts: tuple[str, ...] = ()):
    (plan,) = plan_tasks(RunConfig(models=("x",), tasks=(task,), limit=limit, prompts=prompts))
    return plan


def test_groups_and_names():
    idx = builtin_index()
    assert set(SUPERGLUE) | {"copa"} <= set(idx.groups["superglue"])
    assert set(idx.groups["anli"]) == set(ANLI)
    assert set(idx.groups["xnli"]) == set(XNLI)
    for t in FILES:
        assert idx.descriptions[t], t


@pytest.mark.parametrize("task", list(FILES))
def test_task_renders_every_prompt_on_the_whole_file(task, data_dir):
    plan = _plan(task)
    spec = plan.spec
    sha, count = manifest(data_dir)[FILES[task]]
    assert spec.dataset.local is not None and spec.dataset.local.path == FILES[task]
    assert spec.dataset.local.sha256 == sha
    assert spec.dataset.hub is not None
    assert len(plan.docs.rows) == count  # every row of the file was read
    assert len({r["_id"] for r in plan.docs.rows}) == count
    ids = [p.id for p in spec.prompts]
    assert "lmeval" in ids and len(set(ids)) >= 3
    assert {i.prompt_id for i in plan.instances} == set(ids)
    assert len(plan.instances) == 3 * len(ids)
    for inst in plan.instances:
        assert len(inst.choices) >= 2 and len(set(inst.choices)) == len(inst.choices)
        assert isinstance(inst.target, int) and 0 <= inst.target < len(inst.choices)
        assert inst.query.strip() or (task.startswith("xnli_") and inst.prompt_id == "lmeval")
    assert spec.family and spec.description and spec.language and spec.metrics[0].name == "acc"


@pytest.mark.parametrize("task", ["cb", "rte", "anli_r1", "xnli_en"])
def test_labels_are_balanced_as_published(task, data_dir):
    from collections import Counter

    (plan,) = plan_tasks(RunConfig(models=("x",), tasks=(task,), prompts=("lmeval",)))
    got = Counter(i.target for i in plan.instances)
    want = {"cb": {0: 23, 1: 28, 2: 5}, "rte": {0: 146, 1: 131}, "anli_r1": {0: 334, 1: 333, 2: 333},
            "xnli_en": {0: 830, 1: 830, 2: 830}}[task]
    assert got == want


# --- the lmeval prompts, written out by hand from lm-evaluation-harness's task definitions ---


def test_rte_lmeval_exact(data_dir):
    # super_glue/rte/default.yaml: "{{premise}}\nQuestion: {{hypothesis}} True or False?\nAnswer:", choices True/False
    (inst,) = _plan("rte", limit=1, prompts=("lmeval",)).instances
    assert inst.query == (
        "Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44, according to the "
        "Christopher Reeve Foundation.\nQuestion: Christopher Reeve had an accident. True or False?\nAnswer:"
    )
    assert inst.choices == ("True", "False") and inst.target == 1  # not_entailment


def test_anli_lmeval_exact(data_dir):
    # anli/anli_r1.yaml: "{{premise}}\nQuestion: {{hypothesis}} True, False, or Neither?\nAnswer:",
    # choices True/Neither/False (entailment/neutral/contradiction)
    (inst,) = _plan("anli_r2", limit=1, prompts=("lmeval",)).instances
    assert inst.query.startswith("Clear Hearts Grey Flowers is the second full-length and final album by Jack Off Jill.")
    assert inst.query.endswith("\nQuestion: Risk Records released Jack Off Jill's initial album. True, False, or Neither?\nAnswer:")
    assert inst.choices == ("True", "Neither", "False") and inst.target == 1  # n


def test_wsc_lmeval_exact(data_dir):
    # super_glue/wsc/preprocess_wsc.py default_doc_to_text on wsc.fixed: the pronoun marked *it*,
    # the noun's case fixed to the text's ("The table" -> "the table")
    plan = _plan("wsc", limit=6, prompts=("lmeval",))
    inst = next(i for i in plan.instances if i.doc_id == "5")
    assert inst.query == (
        "Passage: The large ball crashed right through the table because *it* was made of styrofoam.\n"
        'Question: In the passage above, does the pronoun "*it*" refer to "*the table*"?\nAnswer:'
    )
    assert inst.choices == ("no", "yes") and inst.target == 1
    first = next(i for i in plan.instances if i.doc_id == "0")
    assert first.query == (
        "Passage: Bernard, who had not told the government official that he was less than 21 when he filed for a "
        "homestead claim, did not consider that he had done anything dishonest. Still, anyone who knew that he was "
        "19 years old could take his claim away from *him*.\n"
        'Question: In the passage above, does the pronoun "*him*" refer to "*anyone*"?\nAnswer:'
    )


def _harness_wsc(x: dict) -> str:
    """lm-evaluation-harness's WSC prompt (on wsc.fixed), in Python, to compare every row."""

    def detok(s: str) -> str:
        s = s.replace(" n't", "n't").replace(" )", ")").replace("( ", "(").replace('" ', '"').replace(' "', '"')
        return re.sub(r" (['.,])", r"\1", s)

    def fix(k: str) -> str:  # datasets' super_glue _fix_wst
        text, index = x[k + "_text"], x[k + "_index"]
        if text in x["text"] or text in ("Kamenev and Zinoviev", "Kamenev, Zinoviev, and Stalin"):
            return text
        text = (text[0].lower() if x["text"].split()[index][0].islower() else text[0].upper()) + text[1:]
        return text.rstrip(".").replace("\n", " ")

    x = {**x, **x["target"]}
    noun, pronoun = fix("span1"), fix("span2")
    pre = " ".join(x["text"].split()[: x["span2_index"]])
    post = x["text"][len(pre) + len(pronoun) + 1:]
    passage = detok(pre + f" *{pronoun}*" + post)
    return f'Passage: {passage}\nQuestion: In the passage above, does the pronoun "*{pronoun}*" refer to "*{noun}*"?\nAnswer:'


def test_wsc_lmeval_matches_the_harness_on_every_row(data_dir):
    plan = _plan("wsc", limit=None, prompts=("lmeval",))
    assert len(plan.instances) == 104
    for inst in plan.instances:
        assert inst.query == _harness_wsc(inst.doc), inst.doc_id


def test_xnli_lmeval_exact(data_dir):
    # xnli/utils.py: doc_to_text "" and each choice premise + ", right? Yes|Also|No, " + hypothesis;
    # the harness scores " " + choice after the empty context (its default target delimiter)
    plan = _plan("xnli_en", limit=1, prompts=("lmeval",))
    (inst,) = plan.instances
    assert inst.query == ""
    h = "He called his mom as soon as the school bus dropped him off."
    assert inst.choices == tuple(f"And he said, Mama, I'm home., right? {w}, {h}" for w in ("Yes", "Also", "No"))
    assert inst.target == 1  # neutral
    assert plan.spec.target_delimiter == " "
    (de,) = _plan("xnli_de", limit=1, prompts=("lmeval",)).instances
    assert [c.split(", richtig? ")[1].split(",")[0] for c in de.choices] == ["Ja", "Auch", "Nein"]


def test_harness_prompts_for_the_other_superglue_tasks(data_dir):
    (cb,) = _plan("cb", limit=1, prompts=("lmeval",)).instances
    assert cb.query.endswith("Did he think he was helping?\nQuestion: Valence was helping. True, False, or Neither?\nAnswer:")
    assert cb.choices == ("True", "False", "Neither") and cb.target == 1  # contradiction
    (bq,) = _plan("boolq", limit=1, prompts=("lmeval",)).instances
    assert bq.query.startswith("Ethanol fuel -- All biomass goes through")
    assert bq.query.endswith("producing gasoline.\nQuestion: does ethanol take more energy make that produces?\nAnswer:")
    assert bq.choices == ("no", "yes") and bq.target == 0
    wic = _plan("wic", limit=2, prompts=("lmeval",)).instances[1]
    assert wic.query == (
        "Sentence 1: Businessmen of every stripe joined in opposition to the proposal.\n"
        "Sentence 2: They earned their stripes in Kuwait.\n"
        "Question: Is the word 'stripe' used in the same way in the two sentences above?\nAnswer:"
    )
    assert wic.choices == ("no", "yes") and wic.target == 0


# --- XNLI prompt metadata ---


def test_xnli_prompt_languages(data_dir):
    shared = {p.id: p for p in _plan("xnli_en", limit=1).spec.prompts}
    assert shared["lmeval"].language is None  # its words are the task's language (vars)
    for pid, p in shared.items():
        if pid != "lmeval":
            assert (p.language, p.translation) == ("en", "original")
    for lang in XNLI_LANGS:
        spec = _plan(f"xnli_{lang}", limit=1).spec
        own = {p.id: p for p in spec.prompts}
        for pid, p in shared.items():  # the shared prompts, identical in every language
            assert own[pid] == p, (lang, pid)
        native = [p for p in spec.prompts if p.id not in shared]
        if lang in NATIVE:
            assert len(native) >= 2
            assert all(p.language == lang and p.translation == "machine" for p in native)
        else:
            assert not native, lang
        assert set(spec.vars) == {"question", "entailment", "neutral", "contradiction"}


# --- the hub copies have other field names and label types: the same prompts must read them ---


def _hub_row(task: str, doc: dict) -> dict:
    d = {k: v for k, v in doc.items() if k != "_id"}
    if task in ("cb", "rte"):
        names = ["entailment", "contradiction", "neutral"] if task == "cb" else ["entailment", "not_entailment"]
        d["label"] = names.index(d["label"])
    elif task in ("boolq", "wic", "wsc"):
        d["label"] = int(d["label"])
        if task == "wsc":
            d.update(d.pop("target"))
    elif task.startswith("anli"):
        d = {"uid": d["uid"], "premise": d["context"], "hypothesis": d["statement"], "reason": d["reason"],
             "label": {"e": 0, "n": 1, "c": 2}[d["gold_label"]]}
    else:
        d["label"] = ["entailment", "neutral", "contradiction"].index(d["label"])
    d["_id"] = doc["_id"]
    return d


@pytest.mark.parametrize("task", ["cb", "rte", "boolq", "wic", "wsc", "anli_r1", "xnli_fr"])
def test_prompts_read_hub_rows_alike(task, data_dir):
    plan = _plan(task, limit=6)
    docs = plan.docs.rows[:6]
    hub = build_instances(plan.spec, [_hub_row(task, d) for d in docs], list(plan.spec.prompts))
    local = build_instances(plan.spec, docs, list(plan.spec.prompts))
    assert [(i.prompt_id, i.query, i.choices, i.target) for i in hub] == [(i.prompt_id, i.query, i.choices, i.target) for i in local]
