"""The built-in leaderboard tasks: HellaSwag, ARC, PIQA, CommonsenseQA and MMLU (0- and 5-shot).

Fast, no model: every prompt renders, row counts match the data manifest, groups resolve,
and each `lmeval` prompt gives exactly what lm-evaluation-harness builds from the same rows.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from assay.data.sources import load_documents
from assay.instances import build_instances
from assay.prompts.chat import FormatChoice, apply_format
from assay.scoring.metrics import check_metrics
from assay.tasks.registry import builtin_index, resolve

PLAIN = FormatChoice("none", "-", "test")
SINGLE = ["hellaswag", "arc_easy", "arc_challenge", "piqa", "commonsense_qa"]
ROWS = {"hellaswag": 1000, "arc_easy": 2376, "arc_challenge": 1172, "piqa": 1838, "commonsense_qa": 1221}
MMLU_TEST_ROWS = 14042


def _subjects(data_dir: Path) -> list[str]:
    return sorted(p.name.removesuffix("_test.csv") for p in (data_dir / "mmlu" / "test").glob("*_test.csv"))


def _mmlu_tasks() -> list[str]:
    return sorted(t for t in builtin_index().tasks if t.startswith("mmlu_"))


def _build(name: str, data_dir: Path, limit: int | None = None, prompts: tuple[str, ...] = ()):
    """Instances of one task as a run plans them: the few-shot pool is the declared split.

    (Built here rather than through evaluate.plan_tasks, which refuses a k-shot task whose
    separate few-shot split has exactly k rows, MMLU's case; see test_mmlu_5shot_plans.)"""
    (spec, _path), = resolve([name])
    check_metrics(spec.task, spec.output_type, spec.metrics)
    docs = load_documents(spec.dataset, spec.split, data_dir, f"task {spec.task}")
    pool = None
    if spec.fewshot.k:
        src = spec.splits[spec.fewshot.split] if spec.fewshot.split else spec.dataset
        pool = load_documents(src, spec.fewshot.split or spec.split, data_dir, f"task {spec.task} few-shot").rows
    rows = docs.rows[:limit] if limit else docs.rows
    selected = [p for p in spec.prompts if not prompts or p.id in prompts]
    return spec, docs, build_instances(spec, rows, selected, pool)


def _context(spec, inst) -> str:
    return apply_format(PLAIN, None, inst.query, inst.shots, spec.fewshot.separator, spec.target_delimiter, preamble=inst.preamble)


# --------------------------------------------------------------------------- every task renders


@pytest.mark.parametrize("name", SINGLE + _mmlu_tasks())
def test_every_prompt_renders(name, data_dir):
    spec, _docs, insts = _build(name, data_dir, limit=3)
    ids = [p.id for p in spec.prompts]
    assert "lmeval" in ids and len(ids) >= 3
    assert spec.output_type == "multiple_choice" and [m.name for m in spec.metrics] == ["acc", "acc_norm"]
    assert spec.language == "en" and spec.family and spec.description and spec.group
    for p in spec.prompts:
        assert p.description.split(":")[0] in ("cloze", "letters", "options"), p.id
    assert len(insts) == 3 * len(ids)
    for i in insts:
        assert i.query.strip() and len(i.choices) >= 2 and all(c.strip() for c in i.choices)
        assert isinstance(i.target, int) and 0 <= i.target < len(i.choices)
        assert len(i.shots) == spec.fewshot.k
    # the prompts really differ
    first = [i for i in insts if i.doc_id == insts[0].doc_id]
    assert len({(i.preamble, i.query, i.choices) for i in first}) == len(ids)


# --------------------------------------------------------------------------- data and groups


@pytest.mark.parametrize("name", SINGLE)
def test_row_counts_match_the_manifest(name, data_dir):
    (spec, _), = resolve([name])
    assert len(load_documents(spec.dataset, spec.split, data_dir, name).rows) == ROWS[name]


def test_mmlu_row_counts(data_dir):
    total = 0
    for spec, _ in resolve(["mmlu"]):
        total += len(load_documents(spec.dataset, spec.split, data_dir, spec.task).rows)
    assert total == MMLU_TEST_ROWS
    for spec, _ in resolve(["mmlu_5shot"]):
        assert len(load_documents(spec.splits["dev"], "dev", data_dir, spec.task).rows) == 5


def test_groups_resolve(data_dir):
    subjects = _subjects(data_dir)
    assert len(subjects) == 57
    zero = resolve(["mmlu"])
    five = resolve(["mmlu_5shot"])
    assert [s.task for s, _ in zero] == [f"mmlu_{s}" for s in subjects]
    assert [s.task for s, _ in five] == [f"mmlu_{s}_5shot" for s in subjects]
    assert all(s.fewshot.k == 0 for s, _ in zero)
    assert all(s.fewshot.k == 5 and s.fewshot.split == "dev" and s.fewshot.sampler == "first_n" for s, _ in five)
    assert sorted(s.task for s, _ in resolve(["arc"])) == ["arc_challenge", "arc_easy"]
    assert sorted(s.task for s, _ in resolve(["leaderboard"])) == sorted(SINGLE)
    for s, _ in zero:  # the harness's subject name: underscores as spaces
        assert s.vars["subject"] == s.task.removeprefix("mmlu_").replace("_", " ")


# --------------------------------------------------------------------------- lm-evaluation-harness parity


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _mmlu_doc(r: dict[str, str]) -> str:
    # lm_eval/tasks/mmlu/default/_default_template_yaml, doc_to_text
    return f"{r['question'].strip()}\nA. {r['choice0']}\nB. {r['choice1']}\nC. {r['choice2']}\nD. {r['choice3']}\nAnswer:"


def test_mmlu_5shot_lmeval_context_is_the_harness_string(data_dir):
    dev = _csv(data_dir / "mmlu/dev/abstract_algebra_dev.csv")
    test = _csv(data_dir / "mmlu/test/abstract_algebra_test.csv")
    # description + first_n dev examples (each + " " + gold letter), joined and ended by "\n\n", then the question
    expected = "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
    expected += "".join(_mmlu_doc(d) + " " + "ABCD"[int(d["answer"])] + "\n\n" for d in dev)
    expected += _mmlu_doc(test[0])

    spec, _docs, (inst,) = _build("mmlu_abstract_algebra_5shot", data_dir, limit=1, prompts=("lmeval",))
    assert _context(spec, inst) == expected
    assert inst.choices == ("A", "B", "C", "D") and inst.target == int(test[0]["answer"])

    spec0, _docs, (inst0,) = _build("mmlu_abstract_algebra", data_dir, limit=1, prompts=("lmeval",))
    assert _context(spec0, inst0) == expected.split("\n\n")[0] + "\n\n" + _mmlu_doc(test[0])


def test_mmlu_5shot_examples_are_the_dev_rows_in_file_order(data_dir):
    dev = _csv(data_dir / "mmlu/dev/anatomy_dev.csv")
    want = tuple((_mmlu_doc(d), "ABCD"[int(d["answer"])]) for d in dev)
    _spec, _docs, insts = _build("mmlu_anatomy_5shot", data_dir, prompts=("lmeval",))
    assert all(i.shots == want for i in insts)


def test_mmlu_5shot_plans(data_dir):
    from assay.config import RunConfig
    from assay.plan import plan_tasks

    (plan,) = plan_tasks(RunConfig(models=("x",), tasks=("mmlu_anatomy_5shot",), limit=2))
    assert all(len(i.shots) == 5 for i in plan.instances)


def _hellaswag_preprocess(text: str) -> str:
    # lm_eval/tasks/hellaswag/utils.py
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    text = text.replace("  ", " ")
    return text


def test_hellaswag_lmeval_matches_the_harness_preprocessing(data_dir):
    rows = [json.loads(line) for line in (data_dir / "hellaswag/hellaswag_val_subset1000.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    _spec, _docs, insts = _build("hellaswag", data_dir, prompts=("lmeval",))
    assert len(insts) == len(rows)
    for r, i in zip(rows, insts):
        assert i.query == _hellaswag_preprocess(r["activity_label"] + ": " + r["ctx_a"] + " " + r["ctx_b"].capitalize())
        assert i.choices == tuple(_hellaswag_preprocess(e) for e in r["endings"])
        assert i.target == int(r["label"])
    assert any("[" in r["ctx"] for r in rows)  # the WikiHow markers are exercised


@pytest.mark.parametrize(
    ("name", "path", "harness_query"),
    [
        # lm_eval/tasks/arc/arc_easy.yaml: "Question: {{question}}\nAnswer:"
        ("arc_easy", "arc/llmfoundry_arc_easy.jsonl", lambda q: q + "\nAnswer:"),
        ("arc_challenge", "arc/llmfoundry_arc_challenge.jsonl", lambda q: q + "\nAnswer:"),
        # lm_eval/tasks/piqa/piqa.yaml: "Question: {{goal}}\nAnswer:" (llm-foundry's query is "Question: <goal>\n")
        ("piqa", "piqa/llmfoundry_piqa.jsonl", lambda q: q + "Answer:"),
        # lm_eval/tasks/commonsense_qa/default.yaml: "Question: …\nA. …\nAnswer:" (no "Choices:" line)
        ("commonsense_qa", "commonsense_qa/llmfoundry_commonsense_qa.jsonl", lambda q: q.replace("\nChoices:\n", "\n")),
    ],
)
def test_llmfoundry_tasks_lmeval_matches_the_harness(name, path, harness_query, data_dir):
    rows = [json.loads(line) for line in (data_dir / path).read_text(encoding="utf-8").splitlines() if line.strip()]
    _spec, _docs, insts = _build(name, data_dir, prompts=("lmeval",))
    assert len(insts) == len(rows)
    for r, i in zip(rows, insts):
        assert i.query == harness_query(r["query"])
        assert list(i.choices) == r["choices"] and i.target == r["gold"]


# --------------------------------------------------------------------------- the hub fallback's fields


HUB_ROWS = {
    "arc_challenge": {"id": "x", "question": "Which is a gas?", "choices": {"text": ["ice", "steam", "rock"], "label": ["A", "B", "C"]}, "answerKey": "B"},
    "piqa": {"goal": "Open a jar", "sol1": "twist the lid", "sol2": "eat the lid", "label": 0},
    "commonsense_qa": {"id": "x", "question": "Where is bread sold?", "question_concept": "bread",
                       "choices": {"label": ["A", "B", "C", "D", "E"], "text": ["bakery", "moon", "sea", "sky", "void"]}, "answerKey": "A"},
    "hellaswag": {"ind": 7, "activity_label": "Cooking", "ctx_a": "A man cuts bread.", "ctx_b": "he", "ctx": "A man cuts bread. he",
                  "endings": ["eats it.", "[step] flies.", "sings.", "sleeps."], "label": "0", "split": "val", "split_type": "indomain", "source_id": "x"},
    "mmlu_anatomy": {"question": " What is bone? ", "subject": "anatomy", "choices": ["a", "b", "c", "d"], "answer": 2},
}
HUB_LMEVAL = {
    "arc_challenge": ("Question: Which is a gas?\nAnswer:", ("ice", "steam", "rock"), 1),
    "piqa": ("Question: Open a jar\nAnswer:", ("twist the lid", "eat the lid"), 0),
    "commonsense_qa": ("Question: Where is bread sold?\nA. bakery\nB. moon\nC. sea\nD. sky\nE. void\nAnswer:", tuple("ABCDE"), 0),
    "hellaswag": ("Cooking: A man cuts bread. He", ("eats it.", " flies.", "sings.", "sleeps."), 0),
    "mmlu_anatomy": ("What is bone?\nA. a\nB. b\nC. c\nD. d\nAnswer:", tuple("ABCD"), 2),
}


@pytest.mark.parametrize("name", sorted(HUB_ROWS))
def test_prompts_accept_the_hub_fields(name):
    """Without the local file a task reads the hub dataset, whose fields differ from llm-foundry's."""
    (spec, _), = resolve([name])
    doc = {**HUB_ROWS[name], "_id": "0"}
    insts = build_instances(spec, [doc], spec.prompts, None)
    assert len(insts) == len(spec.prompts)
    for i in insts:
        assert i.query.strip() and 0 <= i.target < len(i.choices)
    lm = next(i for i in insts if i.prompt_id == "lmeval")
    assert (lm.query, lm.choices, lm.target) == HUB_LMEVAL[name]
