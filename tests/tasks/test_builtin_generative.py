"""Built-in generative task families on the real data: extractive QA (SQuAD, XQuAD), NER
(CoNLL-2003, WikiANN, WNUT-17) and classification by generation and by label likelihood
(SST-2, AG News, IMDB, TweetEval, XLM-T).

Fast tests (no model): every task plans on its whole pinned file (MANIFEST's hashes and row
counts), renders every prompt, and has well-formed targets on every row. One slow test runs
the embedded SmolLM2 through the real CLI on a QA, an NER and a classification task."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import manifest, run_cli

from assay.data.sources import load_documents
from assay.config import RunConfig
from assay.plan import plan_tasks
from assay.instances import build_instances
from assay.scoring import metrics as M
from assay.scoring.extract import label_map
from assay.scoring.metrics import display_name
from assay.tasks.registry import builtin_index, resolve

XQUAD_LANGS = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
WIKIANN_LANGS = ("de", "en", "fr", "nl", "pt")
TWEETEVAL = ("sentiment", "emotion", "hate", "irony", "offensive")
XLMT = {"ar": "arabic", "de": "german", "en": "english", "es": "spanish", "fr": "french", "hi": "hindi", "it": "italian", "pt": "portuguese"}

# task -> its data file (the first one, for line files)
QA = {"squad": "squad/dev-v1.1.json.zip", **{f"xquad_{lang}": f"xquad/xquad.{lang}.json" for lang in XQUAD_LANGS}}
NER = {"conll2003": "conll2003/test.txt", "wnut17": "wnut17/emerging.test.annotated",
       **{f"wikiann_{lang}": f"wikiann/{lang}/test" for lang in WIKIANN_LANGS}}
CLS = {"sst2": "sst2/dev.tsv", "ag_news": "ag_news/test.csv", "imdb": "imdb/test_subset100.jsonl",
       **{f"tweeteval_{s}": f"tweeteval/{s}/test_text.txt" for s in TWEETEVAL},
       **{f"xlmt_{lang}": f"xlmt_sentiment/{folder}/test_text.txt" for lang, folder in XLMT.items()}}
CHOICE = {f"{t}_choice": path for t, path in CLS.items()}
ALL = {**QA, **NER, **CLS, **CHOICE}
NER_TYPES = {"conll2003": {"PER", "LOC", "ORG", "MISC"}, "wnut17": {"PER", "LOC", "ORG", "MISC"},
             **{f"wikiann_{lang}": {"PER", "LOC", "ORG"} for lang in WIKIANN_LANGS}}




def _plan(task: str, limit: int | None = 3):
    (plan,) = plan_tasks(RunConfig(models=("x",), tasks=(task,), limit=limit))
    return plan


def _all_targets(task: str, data_dir: Path) -> tuple[object, list]:
    """(spec, instances of the first prompt on every row): each row's target."""
    ((spec, _),) = resolve([task])
    docs = load_documents(spec.dataset, spec.split, data_dir, f"task {task}")
    return spec, build_instances(spec, docs.rows, spec.prompts[:1], None)


# --------------------------------------------------------------------------- names and groups


def test_groups_and_families():
    idx = builtin_index()
    assert set(idx.groups["xquad"]) == {f"xquad_{lang}" for lang in XQUAD_LANGS}
    assert set(idx.groups["wikiann"]) == {f"wikiann_{lang}" for lang in WIKIANN_LANGS}
    assert set(idx.groups["tweeteval"]) == {f"tweeteval_{s}" for s in TWEETEVAL}
    assert set(idx.groups["tweeteval_choice"]) == {f"tweeteval_{s}_choice" for s in TWEETEVAL}
    assert set(idx.groups["xlmt"]) == {f"xlmt_{lang}" for lang in XLMT}
    assert set(idx.groups["xlmt_choice"]) == {f"xlmt_{lang}_choice" for lang in XLMT}
    specs = {spec.task: spec for spec, _ in resolve(list(ALL))}
    assert set(specs) == set(ALL)
    for task, spec in specs.items():
        family = "extractive QA" if task in QA else "named-entity recognition" if task in NER else "text classification"
        assert spec.family == family and spec.description and spec.language, task
        assert len(spec.prompts) >= 2, task
    cards = [tuple(spec.card_info().values()) for spec in specs.values()]
    assert len(set(cards)) == len(cards)  # no two tasks share a model-index identity


# --------------------------------------------------------------------------- every task, real data


@pytest.mark.parametrize("task", list(ALL))
def test_task_plans_on_the_whole_pinned_file_and_renders_every_prompt(task, data_dir):
    plan = _plan(task)
    spec = plan.spec
    sha, count = manifest(data_dir)[ALL[task]]
    local = spec.dataset.local
    assert local is not None and local.path == ALL[task] and local.sha256 == sha
    for par in local.parallel:  # line files: the labels file is pinned too, with as many lines
        assert (par.sha256, manifest(data_dir)[par.path][1]) == (manifest(data_dir)[par.path][0], count)
    assert len(plan.docs.rows) == count
    assert len({r["_id"] for r in plan.docs.rows}) == count
    ids = [p.id for p in spec.prompts]
    assert {i.prompt_id for i in plan.instances} == set(ids) and len(plan.instances) == 3 * len(ids)
    for inst in plan.instances:
        assert inst.query.strip(), (task, inst.prompt_id)
        assert "{{" not in inst.query and "<br />" not in inst.query and "#39;" not in inst.query
    # the prompts really differ on one document
    first = [i for i in plan.instances if i.doc_id == plan.instances[0].doc_id]
    assert len({i.query for i in first}) == len(ids)
    if task in CHOICE:
        assert spec.output_type == "multiple_choice" and [m.name for m in spec.metrics] == ["acc", "macro_f1"]
    else:
        assert spec.output_type == "generate"
        limit = {**dict.fromkeys(QA, 32), **dict.fromkeys(NER, 128), **dict.fromkeys(CLS, 16)}[task]
        assert spec.generation.max_tokens == limit


@pytest.mark.parametrize("task", list(QA))
def test_qa_targets_are_non_empty_answer_lists_found_in_the_context(task, data_dir):
    spec, insts = _all_targets(task, data_dir)
    assert [m.name for m in spec.metrics] == ["f1", "exact_match"] and spec.extract.name == "span"
    for inst in insts:
        assert isinstance(inst.target, list) and inst.target and all(isinstance(a, str) and a.strip() for a in inst.target)
        assert any(a in inst.doc["context"] for a in inst.target), inst.doc_id


@pytest.mark.parametrize("task", list(NER))
def test_ner_targets_have_known_types_and_occur_in_the_text(task, data_dir):
    spec, insts = _all_targets(task, data_dir)
    types = NER_TYPES[task]
    names = [display_name(m.name, m.args) for m in spec.metrics]
    per_type = [f"{m}[{t}]" for t in types for m in ("entity_f1", "entity_precision", "entity_recall")]
    assert sorted(names) == sorted(["entity_f1", "entity_precision", "entity_recall", "entity_f1_typed", *per_type])
    assert names[0] == "entity_f1"
    seen: set[str] = set()
    n_entities = 0
    for inst in insts:
        for e in inst.target:
            assert set(e) == {"text", "type"} and e["type"] in types and e["text"] in inst.doc["text"], (inst.doc_id, e)
            seen.add(e["type"])
            n_entities += 1
    assert seen == types
    assert n_entities > len(insts) / 2


def test_ner_prompts_vague_and_explicit(data_dir):
    core = {p.id: p.template for p in resolve(["core_ner"])[0][0].prompts}
    for task, types in NER_TYPES.items():
        spec = resolve([task])[0][0]
        prompts = {p.id: p.template for p in spec.prompts}
        assert set(prompts) == {"vague", "explicit"}
        assert prompts["vague"] == core["vague"]
        explicit = prompts["explicit"]
        assert '"name - type"' in explicit and set(re.findall(r"\b(PER|LOC|ORG|MISC)\b", explicit)) == types


def test_entity_counts_per_file_match_the_tags(data_dir):
    # conll2003 test: B- tags per type (IOB2 in this copy), counted straight from the file
    counts: dict[str, int] = {}
    for line in (data_dir / "conll2003" / "test.txt").read_text(encoding="utf-8").splitlines():
        tag = line.split()[-1] if line.strip() else "O"
        if tag.startswith("B-"):
            counts[tag[2:]] = counts.get(tag[2:], 0) + 1
    _, insts = _all_targets("conll2003", data_dir)
    got: dict[str, int] = {}
    for inst in insts:
        for e in inst.target:
            got[e["type"]] = got.get(e["type"], 0) + 1
    assert got == counts


def test_per_type_entity_scores_on_real_targets(data_dir):
    """Per-type P/R/F1: predict CoNLL's gold entities, but every LOC as ORG and no MISC."""
    _, insts = _all_targets("conll2003", data_dir)
    items = []
    for inst in insts[:300]:
        pred = [[e["text"], "ORG" if e["type"] == "LOC" else e["type"]] for e in inst.target if e["type"] != "MISC"]
        items.append(M.Item("generate", inst.target, extracted=(pred,)))
    gold = [e for inst in insts[:300] for e in inst.target]
    n = {t: sum(e["type"] == t for e in gold) for t in ("PER", "LOC", "ORG", "MISC")}
    assert all(n.values())

    def score(name: str, **args) -> float:
        met = M.metric(name)
        return met.aggregate([met.item(it, args) for it in items], args)[0]

    assert score("entity_recall") == pytest.approx((n["PER"] + n["LOC"] + n["ORG"]) / len(gold))
    assert score("entity_precision") == 1.0  # surfaces only
    assert score("entity_f1_typed") < score("entity_f1")
    assert score("entity_f1", type="PER") == 1.0
    assert score("entity_recall", type="LOC") == 0.0 and score("entity_f1", type="LOC") == 0.0
    assert score("entity_recall", type="ORG") == 1.0
    assert score("entity_precision", type="ORG") == pytest.approx(n["ORG"] / (n["ORG"] + n["LOC"]))
    assert score("entity_recall", type="misc") == 0.0  # the type compares case-insensitively
    assert display_name("entity_f1", {"type": "PER"}) == "entity_f1[PER]"


@pytest.mark.parametrize("task", list(CLS))
def test_generated_classification_targets_are_labels_the_extraction_knows(task, data_dir):
    spec, insts = _all_targets(task, data_dir)
    assert [m.name for m in spec.metrics] == ["label_acc", "macro_f1"] and spec.extract.name == "label"
    labels = set(label_map(spec.extract, spec.vars, task))
    targets = [i.target for i in insts]
    assert set(targets) == labels  # every label occurs, and nothing outside the label set
    choice_spec, choice_insts = _all_targets(f"{task}_choice", data_dir)
    assert len(choice_insts) == len(insts)
    for gen, ch in zip(insts, choice_insts):
        assert 0 <= ch.target < len(ch.choices)
        # the two variants agree on every row's label
        assert ch.choices[ch.target].lower() == _word(task, gen.target)


def _word(task: str, label: str) -> str:
    """The likelihood variant's choice for a generation label."""
    return {"not-hate": "no", "hate": "yes", "non_irony": "no", "irony": "yes", "not-offensive": "no", "offensive": "yes"}.get(label, label).lower()


@pytest.mark.parametrize("sub", TWEETEVAL)
def test_tweeteval_label_names_follow_mapping_txt(sub, data_dir):
    mapping = [line.split("\t")[1].strip() for line in (data_dir / "tweeteval" / sub / "mapping.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    spec = resolve([f"tweeteval_{sub}"])[0][0]
    assert spec.vars["names"] == mapping
    assert list(label_map(spec.extract, spec.vars, spec.task)) == mapping


def test_ag_news_classes_follow_classes_txt(data_dir):
    classes = (data_dir / "ag_news" / "classes.txt").read_text(encoding="utf-8").split()
    spec = resolve(["ag_news"])[0][0]
    assert list(label_map(spec.extract, spec.vars, spec.task)) == classes
    (plan,) = plan_tasks(RunConfig(models=("x",), tasks=("ag_news_choice",), limit=1))
    assert list(plan.instances[0].choices) == classes


def test_native_prompts_are_marked_machine_translated():
    for task in [f"xquad_{lang}" for lang in XQUAD_LANGS] + [f"xlmt_{lang}" for lang in XLMT]:
        spec = resolve([task])[0][0]
        for p in spec.prompts:
            if p.id.endswith("_native"):
                assert p.language == spec.language and p.translation == "machine", (task, p.id)
            else:
                assert p.language == "en", (task, p.id)


# --------------------------------------------------------------------------- a real model


@pytest.mark.llamacpp
def test_smollm2_runs_qa_ner_and_classification(tmp_path, data_dir):
    out = tmp_path / "run"
    proc = run_cli("run", "-m", "smollm2-135m-instruct", "-t", "squad,conll2003,sst2,sst2_choice", "--limit", "3", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    res = doc["results"]["smollm2-135m-instruct"]
    assert set(res) == {"squad", "conll2003", "sst2", "sst2_choice"}
    for task, r in res.items():
        assert r["n_items"] == 3 * len(doc["tasks"][task]["prompts"]) and r["n_incomplete"] == 0
        primary = r["metrics"][r["primary"]]
        assert set(primary["per_prompt"]) == set(doc["tasks"][task]["prompts"])
        assert all(0.0 <= v["value"] <= 1.0 and v["n"] == 3 for v in primary["per_prompt"].values())
    # NER: the score per instruction, and the spread between the vague and the explicit one
    ner = res["conll2003"]["metrics"]
    for name in ("entity_f1", "entity_precision", "entity_recall", "entity_f1_typed"):
        m = ner[name]
        vague, explicit = m["per_prompt"]["vague"]["value"], m["per_prompt"]["explicit"]["value"]
        assert m["min"] == min(vague, explicit) and m["max"] == max(vague, explicit)
        assert m["std"] == pytest.approx(abs(vague - explicit) / 2 ** 0.5)
    assert {f"entity_f1[{t}]" for t in ("PER", "LOC", "ORG", "MISC")} <= set(ner)
    samples = [json.loads(line) for line in (out / "samples" / "smollm2-135m-instruct" / "conll2003.jsonl").read_text().splitlines()]
    assert len(samples) == 6 and all(isinstance(s["target"], list) and isinstance(s["extracted"], list) for s in samples)
    assert doc["tasks"]["squad"]["dataset"]["revision"] == manifest(data_dir)["squad/dev-v1.1.json.zip"][0]
    assert "squad" in proc.stdout and "conll2003" in proc.stdout
