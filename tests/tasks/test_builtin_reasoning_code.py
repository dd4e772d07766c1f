"""Built-in reasoning and code tasks (GSM8K, BIG-Bench Hard, AGIEval, HumanEval, MBPP) on the
real data: every task loads and renders, the few-shot examples never appear among the evaluated
items, targets are well formed, row counts match the MANIFEST, the tasks' own extraction reads
their example answers back as the gold answers, and the reference solutions of HumanEval and
MBPP pass through the same scoring path (run store → extraction → sandbox) a model's answer
takes. One slow test runs the embedded SmolLM2 end to end."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest
from conftest import manifest, run_cli

from assay.errors import TaskError
from assay.config import RunConfig
from assay.plan import plan_tasks
from assay.requests import GenerateRequest, GenerateResult, request_key
from assay.scoring.extract import extract
from assay.results import read_results
from assay.scoring.score import score_task
from assay.store.runs import RunStore
from assay.tasks.loader import load_task
from assay.tasks.registry import BUILTIN, builtin_index

pytestmark = pytest.mark.usefixtures("data_dir")

BBH_TASKS = (
    "boolean_expressions causal_judgement date_understanding disambiguation_qa dyck_languages formal_fallacies "
    "geometric_shapes hyperbaton logical_deduction_five_objects logical_deduction_seven_objects "
    "logical_deduction_three_objects movie_recommendation multistep_arithmetic_two navigate object_counting "
    "penguins_in_a_table reasoning_about_colored_objects ruin_names salient_translation_error_detection snarks "
    "sports_understanding temporal_sequences tracking_shuffled_objects_five_objects "
    "tracking_shuffled_objects_seven_objects tracking_shuffled_objects_three_objects web_of_lies word_sorting"
).split()
BBH_SHOTS = {"date_understanding": ("0", "1", "3"), "geometric_shapes": ("0", "1", "3"),
             "salient_translation_error_detection": ("0", "2", "4")}
AGIEVAL = ("aqua-rat gaokao-biology gaokao-chemistry gaokao-chinese gaokao-english gaokao-geography gaokao-history "
           "gaokao-mathcloze gaokao-mathqa gaokao-physics jec-qa-ca jec-qa-kd logiqa-en logiqa-zh lsat-ar lsat-lr "
           "lsat-rc math sat-en-without-passage sat-en sat-math").split()
AGIEVAL_MULTI = {"gaokao-mathqa", "gaokao-physics", "jec-qa-ca", "jec-qa-kd"}
AGIEVAL_CLOZE = {"math", "gaokao-mathcloze"}

# task -> (data file, rows left out of the evaluation)
FILES: dict[str, tuple[str, int]] = {
    "gsm8k": ("gsm8k/test.jsonl", 0),
    "gsm8k_5shot": ("gsm8k/test.jsonl", 5),
    **{f"bbh_{t}": (f"bbh/{t}.json", 3) for t in BBH_TASKS},
    **{f"agieval_{s.replace('-', '_')}": (f"agieval/{s}.jsonl", 1 if s == "jec-qa-kd" else 0) for s in AGIEVAL},
    "humaneval": ("humaneval/HumanEval.jsonl.gz", 0),
    "humaneval_sampled": ("humaneval/HumanEval.jsonl.gz", 0),
    "humaneval_n200": ("humaneval/HumanEval.jsonl.gz", 0),
    "mbpp": ("mbpp/mbpp.jsonl", 974 - 500),
}
# BBH rows whose published target is not one of the options (the option lists were split on commas)
BBH_TEXT_TARGETS = {("movie_recommendation", "163"), ("ruin_names", "99"), ("ruin_names", "144")}




@cache
def _plan(task: str, limit: int | None = 3, prompts: tuple[str, ...] = ()):
    (plan,) = plan_tasks(RunConfig(models=("x",), tasks=(task,), limit=limit, prompts=prompts))
    return plan


def _extract(spec, answer: str, target=None):
    return extract(spec.extract, answer, task_vars=spec.vars, target=target, task=spec.task)


def test_groups_and_families():
    idx = builtin_index()
    assert set(idx.groups["bbh"]) == {f"bbh_{t}" for t in BBH_TASKS} and len(BBH_TASKS) == 27
    assert set(idx.groups["agieval"]) == {f"agieval_{s.replace('-', '_')}" for s in AGIEVAL} and len(AGIEVAL) == 21
    assert set(idx.groups["code"]) >= {"humaneval", "mbpp"}
    assert set(FILES) <= set(idx.tasks)
    assert (BUILTIN / "bbh" / "_bbh.yaml").is_file()


@pytest.mark.parametrize("task", list(FILES))
def test_task_renders_on_the_whole_file(task, data_dir):
    plan = _plan(task)
    spec = plan.spec
    path, left_out = FILES[task]
    sha, count = manifest(data_dir)[path]
    assert spec.dataset.local is not None and spec.dataset.local.path == path and spec.dataset.local.sha256 == sha
    assert len(plan.docs.rows) == count - left_out
    assert len({r["_id"] for r in plan.docs.rows}) == len(plan.docs.rows)
    ids = [p.id for p in spec.prompts]
    assert {i.prompt_id for i in plan.instances} == set(ids) and len(plan.instances) == 3 * len(ids)
    assert all(i.query.strip() for i in plan.instances)
    assert spec.family in ("reasoning", "code generation") and spec.description and spec.output_type == "generate"
    assert spec.card_info()["type"] in ("gsm8k", "bbh", "agieval", "openai_humaneval", "mbpp")
    if task.startswith(("bbh_", "gsm8k_5shot", "mbpp")):
        assert all(len(i.shots) == spec.fewshot.k > 0 for i in plan.instances)
    else:
        assert all(not i.shots for i in plan.instances)


@pytest.mark.parametrize("task", [t for t in FILES if t.startswith("bbh_")] + ["gsm8k_5shot", "mbpp"])
def test_examples_are_never_evaluated(task, data_dir):
    plan = _plan(task, limit=None, prompts=(_plan(task).spec.prompts[0].id,))
    spec = plan.spec
    assert spec.fewshot.sampler == "first_n" and spec.fewshot.split
    evaluated = {i.doc_id for i in plan.instances}
    queries = {i.query for i in plan.instances}
    shots = {s for i in plan.instances for s in i.shots}
    assert len(shots) == spec.fewshot.k  # first_n: the same examples for every item
    assert not {q for q, _ in shots} & queries  # no example is also an evaluated item
    if task.startswith("bbh_"):
        name = task.removeprefix("bbh_")
        want = BBH_SHOTS.get(name, ("0", "1", "2"))
        assert not evaluated & set(want) and len(evaluated) == len(plan.docs.rows)
        rows = json.loads((data_dir / f"bbh/{name}.json").read_text())["examples"]
        assert {q for q, _ in shots} == {f"Q: {rows[int(r)]['input']}\nA:" for r in want}
    elif task == "gsm8k_5shot":
        assert min(int(d) for d in evaluated) == 5
        for _, answer in shots:
            assert "<<" not in answer and re.search(r"\n#### -?[\d,]+$", answer)
    else:
        assert {int(d) for d in evaluated} == set(range(11, 511))
        assert all(a.startswith("```python\n") and "\ndef " in a and a.endswith("\n```") and "\r" not in a for _, a in shots)


@pytest.mark.parametrize("name", BBH_TASKS)
def test_bbh_targets_and_extraction_of_the_examples(name):
    plan = _plan(f"bbh_{name}", limit=None, prompts=("direct",))
    spec = plan.spec
    steps = [s.name for s in spec.extract.steps]
    for inst in plan.instances:
        t = inst.target
        assert isinstance(t, str) and t == t.strip() and t
        if steps == ["letter"]:
            letters = spec.extract.steps[0].args["letters"]
            if (name, inst.doc_id) in BBH_TEXT_TARGETS:
                assert len(t) > 1
            else:
                assert len(t) == 1 and t in letters, (inst.doc_id, t)
                assert f"({t})" in inst.query
    # a model that answers like the examples is read back as the gold answer, in both styles
    cot = _plan(f"bbh_{name}", prompts=("cot",)).instances[0]
    direct = _plan(f"bbh_{name}", prompts=("direct",)).instances[0]
    rows = json.loads((Path(plan.docs.origin)).read_text())["examples"]
    gold = [re.sub(r"^\(([A-Z])\)$", r"\1", rows[int(r)]["target"]) for r in BBH_SHOTS.get(name, ("0", "1", "2"))]
    for shots in (cot.shots, direct.shots):
        got = [_extract(spec, a) for _, a in shots]
        assert [str(g) for g in got] == gold, (name, got)
    for _, a in cot.shots:
        assert re.search(r"\. So the answer is \S.*\.$", a) and "Let's think step by step." in cot.query
    # and a wrong answer is not
    wrong = {"True": "False", "False": "True", "Yes": "No", "No": "Yes", "yes": "no", "no": "yes", "valid": "invalid",
             "invalid": "valid"}
    first = gold[0]
    if first in wrong:
        other = wrong[first]
    elif re.fullmatch(r"[A-Z]", first):
        other = "B" if first == "A" else "A"
    else:
        other = str(int(first) + 1) if re.fullmatch(r"-?\d+", first) else first + " )"
    assert str(_extract(spec, f"So the answer is {other}.")) != first


def test_gsm8k_targets_are_numbers_and_extraction_reads_the_solutions(data_dir):
    plan = _plan("gsm8k", limit=None, prompts=("cot",))
    targets = [i.target for i in plan.instances]
    assert len(targets) == 1319 and all(re.fullmatch(r"-?\d+", t) for t in targets)
    assert sum(t.startswith("-") for t in targets) == 2
    rows = [json.loads(x) for x in (data_dir / "gsm8k/test.jsonl").read_text().splitlines() if x.strip()]
    assert targets[:3] == ["18", "3", "70000"]
    i = next(n for n, r in enumerate(rows) if r["answer"].endswith("#### 2,125"))
    assert targets[i] == "2125"  # thousands separators dropped
    spec = plan.spec
    # the reference solutions, as a model would write them, are read back as their targets
    for row, t in zip(rows[:200], targets[:200]):
        assert _extract(spec, row["answer"]) == t
    assert _extract(spec, "Let me think. 3 + 4 = 7 apples, so 7 * 2 = 14.\n#### 14") == "14"
    assert _extract(spec, "She makes $1,250 per week.") == "1250"
    five = _plan("gsm8k_5shot", prompts=("cot",)).instances[0]
    assert [a.rsplit("#### ", 1)[1] for _, a in five.shots] == [r["answer"].rsplit("#### ", 1)[1] for r in rows[:5]]


@pytest.mark.parametrize("sub", AGIEVAL)
def test_agieval_targets_are_well_formed(sub):
    plan = _plan(f"agieval_{sub.replace('-', '_')}", limit=None, prompts=("agieval",))
    spec = plan.spec
    for inst in plan.instances:
        t = inst.target
        assert isinstance(t, str) and t.strip() == t and t, (sub, inst.doc_id, t)
        if sub in AGIEVAL_CLOZE:
            assert "$" not in t
            assert inst.query.endswith("A: The answer is")
        elif sub in AGIEVAL_MULTI:
            assert re.fullmatch(r"[A-D]+", t) and "".join(sorted(set(t))) == t
        else:
            assert re.fullmatch(r"[A-E]", t) and t in spec.extract.steps[0].args.get("letters", "ABCD")
            assert inst.query.endswith(f"A: Among A through {spec.extract.steps[0].args.get('letters', 'ABCD')[-1]}, the answer is")
            assert f"({t})" in inst.query
            for n, o in enumerate(inst.doc["options"]):  # shown as "(X)text", the file's own "(X)" not doubled
                label = f"({'ABCDE'[n]})"
                if o.strip().startswith(label):
                    assert " " + label + o.strip().removeprefix(label).strip()[:20] in inst.query
    t = plan.instances[0].target
    assert str(_extract(spec, f"Let's see. So the answer is {t}.")) == t
    assert str(_extract(spec, f" {t}")) == t


def test_agieval_multi_answers_need_every_letter():
    spec = _plan("agieval_jec_qa_kd").spec
    assert _extract(spec, "A is wrong; B and D hold. So the answer is BD.") == "BD"
    assert _extract(spec, "So the answer is (B).") == "B"  # partial: not "BD", scored wrong
    plan = _plan("agieval_gaokao_mathqa", limit=None, prompts=("agieval",))
    assert sum(len(i.target) > 1 for i in plan.instances) == 7  # "A B D", "AC", …: as letters together


# --- code: the reference solutions pass through the real scoring path, wrong answers fail ---


def _score(tmp_path, plan, answers: dict[str, list[str]]):
    """Store the plan's instances with the given answers as responses, then score them."""
    store = RunStore(tmp_path)
    rows, results = [], []
    spec = plan.spec
    for inst in plan.instances:
        if inst.doc_id not in answers:
            continue
        keys = []
        for n, text in enumerate(answers[inst.doc_id]):
            req = GenerateRequest(f"{spec.task}:{inst.doc_id}", max_tokens=spec.generation.max_tokens, sample_index=n,
                                  temperature=spec.generation.temperature)
            keys.append(request_key(req))
            results.append((keys[-1], req, GenerateResult(text, 1, "stop")))
        rows.append((inst.prompt_id, inst.doc_id, json.loads(json.dumps({"prompt": inst.query, "target": inst.target, "choices": []})), keys))
    store.put_task("m", spec.task, spec.model_dump(mode="json"), {}, rows)
    store.put_results("fp", results, "s")
    try:
        return score_task(store, "m", "fp", spec)
    finally:
        store.close()


def test_humaneval_reference_solutions_pass_and_wrong_answers_fail(tmp_path):
    plan = _plan("humaneval", limit=None)
    docs = {i.doc_id: i.doc for i in plan.instances}
    assert len(docs) == 164
    ids = list(docs)
    # the body alone (a completion of the prompt), as the reference gives it
    answers = {d: [docs[d]["canonical_solution"]] for d in ids}
    res, samples = _score(tmp_path / "ok", plan, answers)
    assert res.n_items == 164 and res.metrics["pass@1"].value == 1.0, [s["exec"] for s in samples if s["verdict"] != "correct"][:3]
    # a whole function in a chat answer, and wrong answers: another problem's body, a stub
    few = ids[:12]
    answers = {}
    for n, d in enumerate(few):
        if n % 3 == 0:
            answers[d] = ["Here you go:\n\n```python\n" + docs[d]["prompt"] + docs[d]["canonical_solution"] + "```\n\nDone."]
        elif n % 3 == 1:
            answers[d] = [docs[ids[(ids.index(d) + 1) % len(ids)]]["canonical_solution"]]
        else:
            answers[d] = ["    return None\n"]
    res, samples = _score(tmp_path / "mixed", plan, answers)
    by_id = {s["doc_id"]: s for s in samples}
    for n, d in enumerate(few):
        assert by_id[d]["verdict"] == ("correct" if n % 3 == 0 else "wrong"), (d, by_id[d]["exec"])
    assert res.metrics["pass@1"].value == pytest.approx(4 / 12)


def test_humaneval_sampled_pass_at_k(tmp_path):
    plan = _plan("humaneval_sampled", limit=2)
    assert plan.spec.generation.n == 20 and plan.spec.generation.temperature > 0
    a, b = (i.doc for i in plan.instances)
    # problem a: 5 of 20 samples right; problem b: none
    answers = {a["task_id"]: [a["canonical_solution"]] * 5 + ["    return None\n"] * 15, b["task_id"]: ["    pass\n"] * 20}
    res, _ = _score(tmp_path, plan, answers)
    from assay.scoring.code import pass_at_k

    assert res.metrics["pass@1"].value == pytest.approx((5 / 20 + 0) / 2)
    assert res.metrics["pass@10"].value == pytest.approx((pass_at_k(20, 5, 10) + 0) / 2)


def test_pass_at_k_beyond_the_samples_is_a_load_error(tmp_path):
    base = BUILTIN / "humaneval" / "_humaneval.yaml"
    f = tmp_path / "he.yaml"
    f.write_text(f"include: {base}\ntask: he\ngeneration: {{n: 20, temperature: 0.8}}\nmetrics:\n  - {{name: pass_at_k, args: {{k: 100}}}}\n")
    with pytest.raises(TaskError, match=r"pass@100 needs at least 100 samples.*generation.n >= 100 \(it is 20\)"):
        load_task(f)
    assert {m.args["k"] for m in load_task(BUILTIN / "humaneval" / "humaneval_n200.yaml").metrics} == {1, 10, 100}


def test_mbpp_reference_solutions_pass_and_wrong_answers_fail(tmp_path):
    plan = _plan("mbpp", limit=None)
    docs = {i.doc_id: i.doc for i in plan.instances}
    assert len(docs) == 500
    sample = sorted(docs, key=int)[::5]  # 100 problems, deterministic (both setup-code tasks are elsewhere)
    with_setup = [d for d in docs if docs[d]["test_setup_code"]]
    chosen = sample + with_setup
    answers = {d: ["```python\n" + docs[d]["code"] + "\n```"] for d in chosen}
    res, samples = _score(tmp_path / "ok", plan, answers)
    assert res.n_items == len(chosen) and res.metrics["pass@1"].value == 1.0, [s["exec"] for s in samples if s["verdict"] != "correct"][:3]
    # another task's code, and code that defines the function with a wrong result
    d0, d1 = sample[:2]
    name = re.search(r"def (\w+)", docs[d0]["code"]).group(1)
    answers = {d0: [f"def {name}(*args):\n    return None\n"], d1: [docs[d0]["code"]]}
    res, samples = _score(tmp_path / "bad", plan, answers)
    assert res.metrics["pass@1"].value == 0.0 and all(s["verdict"] == "wrong" for s in samples)
    assert all(s["exec"] != "passed" for s in samples)


# --- the embedded model, end to end ---


@pytest.mark.llamacpp
def test_smollm2_runs_reasoning_and_code_tasks(tmp_path):
    pytest.importorskip("llama_cpp")
    out = tmp_path / "run"
    tasks = "gsm8k,bbh_boolean_expressions,humaneval"
    proc = run_cli("run", "-m", "smollm2-135m-instruct", "-t", tasks, "--limit", "2", "-o", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = read_results(out)  # the typed results contract
    res = doc.results["smollm2-135m-instruct"]
    assert set(res) == set(tasks.split(","))
    want = {"gsm8k": ("number_match", 2, {"cot", "direct"}), "bbh_boolean_expressions": ("exact_match", 2, {"direct", "cot"}),
            "humaneval": ("pass@1", 1, {"complete"})}
    for task, (metric, n_prompts, prompts) in want.items():
        r = res[task]
        assert r.primary == metric and r.n_incomplete == 0 and r.n_items == 2 * n_prompts and r.n_docs == 2
        m = r.metrics[metric]
        assert 0.0 <= m.value <= 1.0 and set(m.per_prompt) == prompts
        assert doc.tasks[task].family in ("reasoning", "code generation")
    rows = [json.loads(x) for x in (out / "samples" / "smollm2-135m-instruct" / "humaneval.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all("exec" in r and r["verdict"] in ("correct", "wrong") for r in rows)
    bbh = [json.loads(x) for x in (out / "samples" / "smollm2-135m-instruct" / "bbh_boolean_expressions.jsonl").read_text().splitlines()]
    assert all(r["target"] in ("True", "False") for r in bbh)
    assert any("So the answer is" in r["prompt"] for r in bbh)  # the chain-of-thought examples
