"""Tests for assay.instances (documents x prompts -> instances, few-shot selection)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.errors import TaskError
from assay.instances import Instance, answer_text, build_instances
from assay.tasks.spec import TaskSpec


def make_spec(**kw) -> TaskSpec:
    data = {
        "task": "t",
        "output_type": "generate",
        "dataset": {"local": {"path": "x.jsonl"}},
        "prompts": [{"id": "p", "template": "Q{{ q }}"}],
        "target": "a",
        "metrics": ["exact_match"],
    }
    data.update(kw)
    return TaskSpec.model_validate(data)


def mc_spec(target: str = "label", **kw) -> TaskSpec:
    return make_spec(
        output_type="multiple_choice",
        choices="[c1, c2, c3]",
        target=target,
        prompts=[{"id": "p", "template": "{{ q }}"}],
        metrics=["acc"],
        **kw,
    )


def docs_n(n: int) -> list[dict]:
    return [{"_id": str(i), "q": i, "a": f"A{i}"} for i in range(n)]


MC_DOC = {"_id": "0", "q": "Pick", "c1": "red", "c2": "green", "c3": "blue", "label": 1}


# --------------------------------------------------------------------------- basic


def test_one_instance_per_doc_and_prompt():
    spec = make_spec(prompts=[{"id": "p", "template": "Q{{ q }}"}, {"id": "r", "template": "R{{ q }}"}])
    docs = docs_n(3)
    out = build_instances(spec, docs, spec.prompts)
    assert len(out) == 6
    assert {(i.prompt_id, i.doc_id) for i in out} == {(p, str(d)) for p in "pr" for d in range(3)}
    by = {(i.prompt_id, i.doc_id): i for i in out}
    assert by[("p", "2")].query == "Q2" and by[("r", "0")].query == "R0"
    assert by[("p", "1")].target == "A1"
    assert by[("p", "1")].task == "t"
    assert by[("p", "1")].doc == docs[1]
    assert all(i.shots == () and i.choices == () for i in out)


def test_only_selected_prompts():
    spec = make_spec(prompts=[{"id": "p", "template": "P"}, {"id": "r", "template": "R"}])
    out = build_instances(spec, docs_n(2), [spec.prompt("r")])
    assert {i.prompt_id for i in out} == {"r"} and len(out) == 2


def test_prompt_target_overrides_task_target():
    spec = make_spec(prompts=[{"id": "p", "template": "x", "target": "q * 10"}])
    assert [i.target for i in build_instances(spec, docs_n(2), spec.prompts)] == [0, 10]


def test_generation_target_may_be_a_list():
    spec = make_spec(target="answers")
    docs = [{"_id": "0", "q": 1, "answers": ["x", "y"]}]
    assert build_instances(spec, docs, spec.prompts)[0].target == ["x", "y"]


def test_no_target_is_none():
    spec = make_spec(target=None, output_type="rolling")
    assert build_instances(spec, docs_n(1), spec.prompts)[0].target is None


# --------------------------------------------------------------------------- multiple choice


def test_mc_target_as_index():
    inst = build_instances(mc_spec(), [MC_DOC], mc_spec().prompts)[0]
    assert inst.choices == ("red", "green", "blue")
    assert inst.target == 1


def test_mc_target_as_choice_text():
    spec = mc_spec(target="c3")
    assert build_instances(spec, [MC_DOC], spec.prompts)[0].target == 2


@pytest.mark.parametrize(("text", "index"), [("0", 0), ("2", 2), (" 1 ", 1)])
def test_mc_target_as_numeric_string(text, index):
    spec = mc_spec(target="label")
    doc = {**MC_DOC, "label": text}
    assert build_instances(spec, [doc], spec.prompts)[0].target == index


def test_mc_choices_as_list_of_templates():
    spec = make_spec(
        output_type="multiple_choice",
        choices=["{{ c1 | upper }}", "{{ c2 }}!"],
        target="0",
        metrics=["acc"],
    )
    inst = build_instances(spec, [MC_DOC], spec.prompts)[0]
    assert inst.choices == ("RED", "green!")
    assert inst.target == 0


def test_mc_choices_are_strings():
    spec = make_spec(output_type="multiple_choice", choices="[1, 2, 3]", target="2", metrics=["acc"])
    inst = build_instances(spec, [MC_DOC], spec.prompts)[0]
    assert inst.choices == ("1", "2", "3") and inst.target == 2


@pytest.mark.parametrize("label", [3, -1, "3", "-1", 99])
def test_mc_target_out_of_range(label):
    spec = mc_spec()
    with pytest.raises(TaskError, match="outside the 3 choices"):
        build_instances(spec, [{**MC_DOC, "label": label}], spec.prompts)


@pytest.mark.parametrize("label", ["purple", True, 1.0, None, [1]])
def test_mc_target_of_wrong_kind(label):
    spec = mc_spec()
    with pytest.raises(TaskError) as ei:
        build_instances(spec, [{**MC_DOC, "label": label}], spec.prompts)
    assert "row 0" in str(ei.value) and "prompt p" in str(ei.value)


@pytest.mark.parametrize("label", ["--1", "²"])
def test_mc_odd_numeric_target_is_a_task_error(label):
    spec = mc_spec()
    with pytest.raises(TaskError):
        build_instances(spec, [{**MC_DOC, "label": label}], spec.prompts)


NUMERIC_DOC = {"_id": "7", "q": "Count down", "choices": ["3", "2", "1", "0"]}


def test_mc_string_target_equal_to_a_choice_text_is_that_choice():
    # "7" is choice 1's text and, as an index, outside the three choices: only one reading
    # (the old rule read every digit string as an index and refused it)
    spec = make_spec(output_type="multiple_choice", choices="['10', '7', '5']", target="answer", metrics=["acc"])
    assert build_instances(spec, [{"_id": "0", "q": 1, "answer": "7"}], spec.prompts)[0].target == 1


@pytest.mark.parametrize("answer", ["3", "2", "1", "0"])
def test_mc_digit_target_readable_as_index_and_as_another_choice_is_refused(answer):
    # choices ["3","2","1","0"], target "2": choice 1's text, or index 2 (choice "1")
    spec = make_spec(output_type="multiple_choice", choices="choices", target="answer", metrics=["acc"])
    with pytest.raises(TaskError) as ei:
        build_instances(spec, [{**NUMERIC_DOC, "answer": answer}], spec.prompts)
    msg = str(ei.value)
    assert "task t, prompt p, row 7" in msg and "ambiguous" in msg and "target_type" in msg


def test_mc_digit_target_naming_the_same_choice_both_ways_is_not_ambiguous():
    spec = make_spec(output_type="multiple_choice", choices="['0', '1']", target="answer", metrics=["acc"])
    assert build_instances(spec, [{"_id": "0", "q": 1, "answer": "1"}], spec.prompts)[0].target == 1


@pytest.mark.parametrize(("answer", "gold"), [("2", 1), ("1", 2), ("0", 3), ("3", 0)])
def test_mc_target_type_text(answer, gold):
    spec = make_spec(output_type="multiple_choice", choices="choices", target="answer", target_type="text", metrics=["acc"])
    assert build_instances(spec, [{**NUMERIC_DOC, "answer": answer}], spec.prompts)[0].target == gold


@pytest.mark.parametrize(("answer", "gold"), [("2", 2), ("0", 0), (1, 1)])
def test_mc_target_type_index(answer, gold):
    spec = make_spec(output_type="multiple_choice", choices="choices", target="answer", target_type="index", metrics=["acc"])
    assert build_instances(spec, [{**NUMERIC_DOC, "answer": answer}], spec.prompts)[0].target == gold


def test_mc_target_type_text_needs_a_choice_text():
    spec = make_spec(output_type="multiple_choice", choices="choices", target="answer", target_type="text", metrics=["acc"])
    with pytest.raises(TaskError, match="not one of the choices"):
        build_instances(spec, [{**NUMERIC_DOC, "answer": "7"}], spec.prompts)


def test_mc_target_type_index_needs_an_index():
    spec = make_spec(output_type="multiple_choice", choices="choices", target="answer", target_type="index", metrics=["acc"])
    with pytest.raises(TaskError, match="target_type index"):
        build_instances(spec, [{**NUMERIC_DOC, "answer": "two"}], spec.prompts)


def test_prompt_target_type_overrides_the_tasks():
    spec = make_spec(
        output_type="multiple_choice", choices="choices", target="answer", target_type="index", metrics=["acc"],
        prompts=[{"id": "p", "template": "{{ q }}"}, {"id": "r", "template": "{{ q }}", "target_type": "text"}],
    )
    out = build_instances(spec, [{**NUMERIC_DOC, "answer": "2"}], spec.prompts)
    assert [(i.prompt_id, i.target) for i in out] == [("p", 2), ("r", 1)]


def test_target_type_is_left_out_of_the_hash_when_unset():
    # the built-in tasks' content hashes (recorded in results.json, compared by reports) stay as they were
    assert "target_type" not in mc_spec().model_dump_json()
    assert mc_spec().content_hash() != mc_spec(target_type="index").content_hash()


@pytest.mark.parametrize("choices", ["[]", "'abc'", "3"])
def test_mc_choices_must_be_a_nonempty_list(choices):
    spec = make_spec(output_type="multiple_choice", choices=choices, target="0", metrics=["acc"])
    with pytest.raises(TaskError, match="'choices' must give a non-empty list"):
        build_instances(spec, [MC_DOC], spec.prompts)


def test_render_error_names_task_prompt_and_row():
    spec = make_spec(prompts=[{"id": "pp", "template": "{{ missing }}"}])
    with pytest.raises(TaskError) as ei:
        build_instances(spec, [{"_id": "row-9", "q": 1}], spec.prompts)
    assert "task t, prompt pp, row row-9" in str(ei.value)


# --------------------------------------------------------------------------- answer_text


def test_answer_text():
    mc = mc_spec()
    assert answer_text(mc, ("x", "y"), 1) == "y"
    gen = make_spec()
    assert answer_text(gen, (), ["first", "second"]) == "first"
    assert answer_text(gen, (), ("t",)) == "t"
    assert answer_text(gen, (), []) == ""
    assert answer_text(gen, (), None) == ""
    assert answer_text(gen, (), 42) == "42"
    assert answer_text(gen, (), "plain") == "plain"


# --------------------------------------------------------------------------- few-shot


def shots_by_doc(instances: list[Instance]) -> dict[str, tuple]:
    return {i.doc_id: i.shots for i in instances}


def shot_ids(inst: Instance) -> list[str]:
    return [q.removeprefix("Q") for q, _ in inst.shots]


def test_fewshot_k_examples_never_the_doc_itself():
    spec = make_spec(fewshot={"k": 3})
    out = build_instances(spec, docs_n(12), spec.prompts)
    for inst in out:
        ids = shot_ids(inst)
        assert len(ids) == 3
        assert len(set(ids)) == 3
        assert inst.doc_id not in ids
        for q, a in inst.shots:  # each shot is (rendered prompt, gold answer)
            assert a == "A" + q.removeprefix("Q")


def test_fewshot_mc_shots_show_the_gold_choice():
    spec = mc_spec(fewshot={"k": 1})
    docs = [{**MC_DOC, "_id": "0", "q": "a", "label": 0}, {**MC_DOC, "_id": "1", "q": "b", "label": 2}]
    out = {i.doc_id: i for i in build_instances(spec, docs, spec.prompts)}
    assert out["0"].shots == (("b", "blue"),)
    assert out["1"].shots == (("a", "red"),)


def test_fewshot_needs_more_docs_than_k():
    spec = make_spec(fewshot={"k": 3})
    with pytest.raises(TaskError, match="3-shot needs more than 3 documents"):
        build_instances(spec, docs_n(3), spec.prompts)
    assert len(build_instances(spec, docs_n(4), spec.prompts)) == 4


def test_fewshot_deterministic_for_a_seed():
    spec = make_spec(fewshot={"k": 2, "seed": 7})
    a = build_instances(spec, docs_n(15), spec.prompts)
    b = build_instances(spec, docs_n(15), spec.prompts)
    assert [i.shots for i in a] == [i.shots for i in b]


def test_fewshot_different_seed_gives_different_shots():
    docs = docs_n(15)
    a = shots_by_doc(build_instances(make_spec(fewshot={"k": 2, "seed": 1}), docs, make_spec().prompts))
    b = shots_by_doc(build_instances(make_spec(fewshot={"k": 2, "seed": 2}), docs, make_spec().prompts))
    assert any(a[d] != b[d] for d in a)


def test_fewshot_separate_pool():
    spec = make_spec(fewshot={"k": 2})
    pool = [{"_id": f"train-{i}", "q": f"t{i}", "a": f"T{i}"} for i in range(5)]
    out = build_instances(spec, docs_n(3), spec.prompts, fewshot_pool=pool)
    for inst in out:
        assert len(inst.shots) == 2
        assert all(q.startswith("Qt") for q, _ in inst.shots)


def test_fewshot_small_separate_pool_gives_what_it_has():
    spec = make_spec(fewshot={"k": 5})
    pool = [{"_id": "x", "q": "t", "a": "T"}]
    out = build_instances(spec, docs_n(2), spec.prompts, fewshot_pool=pool)
    assert all(i.shots == (("Qt", "T"),) for i in out)


@settings(max_examples=30, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(min_value=1, max_value=19))
def test_fewshot_same_doc_same_shots_across_order_and_truncation(rnd, limit):
    """The evaluation pattern: the whole split is the pool, the evaluated docs are a limited or
    reordered part of it. The shots of a document must not change."""
    spec = make_spec(fewshot={"k": 3})
    full = docs_n(20)
    ref = shots_by_doc(build_instances(spec, full, spec.prompts, fewshot_pool=full))
    subset = full[:limit]
    rnd.shuffle(subset)
    got = shots_by_doc(build_instances(spec, subset, spec.prompts, fewshot_pool=full))
    assert set(got) == {d["_id"] for d in subset}
    for doc_id, shots in got.items():
        assert shots == ref[doc_id]


def test_fewshot_pool_of_the_same_split_never_contains_the_doc_itself():
    spec = make_spec(fewshot={"k": 3})
    full = docs_n(20)
    out = build_instances(spec, full, spec.prompts, fewshot_pool=full)  # as evaluate.py calls it
    assert all(inst.doc_id not in shot_ids(inst) for inst in out)


def test_fewshot_independent_of_doc_order_without_pool():
    spec = make_spec(fewshot={"k": 3})
    docs = docs_n(20)
    shuffled = docs[:]
    random.Random(0).shuffle(shuffled)
    a = shots_by_doc(build_instances(spec, docs, spec.prompts))
    b = shots_by_doc(build_instances(spec, shuffled, spec.prompts))
    assert a == b
