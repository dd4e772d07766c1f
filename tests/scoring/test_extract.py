"""Extraction steps and pipelines (assay.scoring.extract, the number/letter/label parts of text)."""

from __future__ import annotations

import json
import textwrap
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from assay.errors import TaskError
from assay.requests import GenerateRequest, GenerateResult, request_key
from assay.scoring import metrics as M
from assay.scoring.extract import STEPS, check_extract, check_pipeline, extract, label_map, vote
from assay.scoring.score import score_task
from assay.scoring.answers import extract_letter, extract_number, normalize_number
from assay.scoring.entities import parse_entities
from assay.scoring.labels import LABEL_PRESETS, map_label
from assay.store.runs import RunStore
from assay.tasks.loader import load_task
from assay.tasks.spec import ExtractSpec, ExtractStep, TaskSpec


def run(extract_yaml, answer, *, target=None, task_vars=None):
    spec = ExtractSpec.model_validate(extract_yaml)
    check_extract(spec, task_vars or {}, "t")
    return extract(spec, answer, task_vars=task_vars or {}, target=target, task="t")


# --------------------------------------------------------------------------- numbers

GSM8K_COT = (
    "Janet's ducks lay 16 eggs per day. She eats 3 and bakes with 4, so 16 - 3 - 4 = 9 eggs are left.\n"
    "She sells them for $2 each: 9 * 2 = $18.\n#### 18"
)


@pytest.mark.parametrize(
    ("text", "mode", "expected"),
    [
        (GSM8K_COT, "gsm8k", "18"),
        ("First 12 + 30 = 42 then 42 / 6 = 7.\n#### 7\nHope this helps! Step 2 of 3.", "gsm8k", "7"),
        ("#### 1,234", "gsm8k", "1234"),
        ("#### $1,234,567.00", "gsm8k", "1234567"),
        ("Step 1: 5 + 5 = 10. The answer is 42. (That is 6 * 7.)", "gsm8k", "42"),
        ("We get \\boxed{-12} since 3 - 15 = -12, checked with 4 numbers.", "gsm8k", "-12"),
        ("The final answer is: $3.50 per cup, i.e. 2 cups cost 7", "gsm8k", "3.5"),
        ("She has 5 apples, eats 2, buys 10. Total: 13 apples.", "gsm8k", "13"),  # no marker: last number
        ("The temperature dropped to -3.5 degrees.", "last", "-3.5"),
        ("It costs −5 dollars (a unicode minus).", "last", "-5"),
        ("He counted 16-3 = 13 sheep", "last", "13"),  # "-3" after a digit is subtraction
        ("The result is 18.0.", "last", "18"),
        ("0.50", "last", "0.5"),
        ("Answer: -0", "gsm8k", "0"),
        ("In 2023 she earned $45,000 and in 2024 $50,500.", "first", "2023"),
        ("In 2023 she earned $45,000 and in 2024 $50,500.", "last", "50500"),
        ("About 50% of 200 is 100.", "last", "100"),
        ("I do not know.", "last", None),
        ("", "gsm8k", None),
        ("#### no number after the mark, but 12 before", "gsm8k", "12"),
    ],
)
def test_extract_number(text, mode, expected):
    assert extract_number(text, mode) == expected
    assert run({"name": "number", "args": {"mode": mode}}, text) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("$1,234.50", "1234.5"), ("-3.50", "-3.5"), ("18.", "18"), ("1e3", "1000"), ("007", "7"), ("-0.0", "0"), ("abc", None), ("", None)],
)
def test_normalize_number(raw, expected):
    assert normalize_number(raw) == expected


def test_number_mode_default_is_last_and_bad_mode_is_rejected():
    assert run("number", "3 apples and 4 pears: #### 5 hmm 9") == "9"
    with pytest.raises(TaskError, match="task t: extract step 1 'number': mode must be one of gsm8k, last, first"):
        check_extract(ExtractSpec.model_validate({"name": "number", "args": {"mode": "final"}}), {}, "t")


_sentence = st.sampled_from(["So the total is {} dollars.", "#### {}", "She pays {} in all", "{}", "Answer: {}."])


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-10**12, max_value=10**12), st.booleans(), st.booleans(), _sentence)
def test_number_round_trips_formatted_ints(n, commas, dollar, sentence):
    body = f"{abs(n):,}" if commas else str(abs(n))
    written = ("-" if n < 0 else "") + ("$" if dollar else "") + body
    text = "First 3 + 4 = 7. " + sentence.format(written)
    assert extract_number(text, "last") == str(n)
    assert extract_number(text, "gsm8k") == str(n)


@settings(max_examples=300, deadline=None)
@given(st.decimals(min_value=-10**9, max_value=10**9, places=2, allow_nan=False, allow_infinity=False))
def test_number_round_trips_formatted_decimals(d):
    written = f"{d:,.2f}"
    got = extract_number(f"The answer is {written}.", "gsm8k")
    assert got is not None and Decimal(got) == d
    assert not got.endswith(".0") and got != "-0"


# --------------------------------------------------------------------------- letters

BBH_COT = (
    "Let's think step by step. Today is 12/24/1937, so tomorrow is 12/25/1937. "
    "Option (A) is 12/11/1937, which is wrong. Option (D) is also wrong. So the answer is (B)."
)


@pytest.mark.parametrize(
    ("text", "letters", "expected"),
    [
        ("(B)", "ABCD", "B"),
        ("B)", "ABCD", "B"),
        ("B", "ABCD", "B"),
        ("b", "ABCD", "B"),  # a lone lower-case letter is unambiguous
        ("**C**", "ABCD", "C"),
        ("Answer: B", "ABCD", "B"),
        ("Answer: b", "ABCD", "B"),
        ("the answer is (C).", "ABCD", "C"),
        ("B. Paris", "ABCD", "B"),
        ("(D) 12/04/1937", "ABCDEF", "D"),
        ("The correct answer is: **(B) Paris**", "ABCD", "B"),
        (BBH_COT, "ABCDEF", "B"),  # BBH chain of thought: the statement beats (A), (D)
        ("The answer is B. Wait, on reflection the answer is D.", "ABCD", "D"),  # the last statement wins
        ("A good choice would be option C", "ABCD", "C"),  # "A good" is prose, not a letter
        ("Among A through E, the answer is D", "ABCDE", "D"),  # AGIEval's CoT prompt
        ("答案是 B", "ABCD", "B"),  # AGIEval Chinese
        ("故选C。", "ABCD", "C"),
        ("（Ｂ）", "ABCD", "B"),  # full-width
        ("I choose B because it fits.", "ABCD", "B"),
        ("Option C is correct.", "ABCD", "C"),
        ("I think the answer is a bit unclear.", "ABCD", None),  # "a" is a word here
        ("(A) 12/11/1937\n(B) 12/25/1937", "ABCD", None),  # an echoed option list, no choice
        ("Choose A, B, C or D.", "ABCD", None),
        ("The answer is (E).", "ABCD", None),  # not one of the options
        ("The answer is (E).", "ABCDE", "E"),
        ("I don't know.", "ABCD", None),
        ("", "ABCD", None),
    ],
)
def test_extract_letter(text, letters, expected):
    assert extract_letter(text, letters) == expected
    assert run({"name": "letter", "args": {"letters": letters}}, text) == expected


def test_letter_args_n_and_format():
    assert run({"name": "letter", "args": {"n": 6}}, "So the answer is (F).") == "F"
    assert run({"name": "letter", "args": {"n": 5}}, "So the answer is (F).") is None
    assert run({"name": "letter", "args": {"format": "({})"}}, "Answer: c") == "(C)"  # BBH's target form
    assert run("letter", "Answer: E") is None  # default ABCD


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"n": 0}, "n must be a number of options from 1 to 26"),
        ({"letters": "AB1"}, "letters must be distinct letters"),
        ({"letters": "ABA"}, "letters must be distinct letters"),
        ({"letters": "ABC", "n": 3}, "give letters or n, not both"),
        ({"format": "()"}, "format must be a string with one"),
        ({"choices": 4}, r"takes no argument\(s\) choices \(it takes: letters, n, format\)"),
    ],
)
def test_letter_bad_args_are_task_errors(args, message):
    with pytest.raises(TaskError, match=message):
        check_extract(ExtractSpec.model_validate({"name": "letter", "args": args}), {}, "t")


# --------------------------------------------------------------------------- regex


def test_regex_all_takes_the_last_match_and_flags_apply():
    cot = "The answer is 3? No. Recount: the answer is 5.\nTHE ANSWER IS 7"
    assert run({"name": "regex", "args": {"pattern": r"answer is (\d+)"}}, cot) == "3"
    assert run({"name": "regex", "args": {"pattern": r"answer is (\d+)", "all": True}}, cot) == "5"
    assert run({"name": "regex", "args": {"pattern": r"answer is (\d+)", "all": True, "flags": "i"}}, cot) == "7"
    assert run({"name": "regex", "args": {"pattern": r"answer is (\d+)", "all": True, "flags": ["IGNORECASE"]}}, cot) == "7"
    assert run({"name": "regex", "args": {"pattern": r"^(\w+)$", "flags": "m"}}, "x y\nword\n") == "word"
    assert run({"name": "regex", "args": {"pattern": r"answer is (\d+)"}}, "nothing") == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "needs args.pattern"),
        ({"pattern": "("}, "does not compile"),
        ({"pattern": "a", "flags": "q"}, "flag 'q'"),
        ({"pattern": "(a)", "group": 2}, "group 2 is not a group"),
    ],
)
def test_regex_bad_args(args, message):
    with pytest.raises(TaskError, match=message):
        check_extract(ExtractSpec.model_validate({"name": "regex", "args": args}), {}, "t")


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Positive", "positive"),
        ("The sentiment of this tweet is negative.", "negative"),
        ("Neutral.", "neutral"),
        ("Le sentiment est négatif.", "negative"),  # fr
        ("Das ist eher positiv.", "positive"),  # de
        ("Es negativo.", "negative"),  # es
        ("Neutro", "neutral"),  # es/pt/it
        ("O sentimento é positivo.", "positive"),  # pt
        ("Il sentimento è negativo", "negative"),  # it
        ("Non è positivo", None),  # it, negated
        ("Não é negativo", None),  # pt, negated
        ("سلبي", "negative"),  # ar
        ("المشاعر إيجابية", "positive"),  # ar
        ("محايد", "neutral"),
        ("यह सकारात्मक है", "positive"),  # hi
        ("तटस्थ", "neutral"),
        ("It is not positive.", None),
        ("Mixed: partly positive, partly negative.", None),
    ],
)
def test_sentiment3_preset_in_several_languages(text, expected):
    assert run({"name": "label", "args": {"preset": "sentiment3"}}, text) == expected


@pytest.mark.parametrize(
    ("preset", "text", "expected"),
    [
        ("agnews", "Sci/Tech", "Sci/Tech"),
        ("agnews", "This article is about science and technology.", "Sci/Tech"),
        ("agnews", "Category: Sports", "Sports"),
        ("agnews", "business news", "Business"),
        ("agnews", "World", "World"),
        ("emotion4", "The emotion expressed is joy.", "joy"),
        ("emotion4", "The author sounds angry.", "anger"),
        ("emotion4", "Optimism", "optimism"),
        ("tweeteval_emotion", "sadness", "sadness"),
        ("hate", "Yes, this is hate speech.", "hate"),
        ("hate", "No, it is not hateful.", "not-hate"),
        ("irony", "non-ironic", "non_irony"),
        ("irony", "Yes, it is sarcastic.", "irony"),
        ("offensive", "not offensive", "not-offensive"),
        ("offensive", "Offensive.", "offensive"),
        ("sentiment2", "neutral", None),  # a hedge where there is no neutral label
        ("xlmt", "positivo", "positive"),
    ],
)
def test_label_presets(preset, text, expected):
    assert run({"name": "label", "args": {"preset": preset}}, text) == expected


def test_label_preset_rename_and_extra_words():
    args = {"preset": "agnews", "rename": {"Sci/Tech": "sci_tech", "World": "world"}, "labels": {"sci_tech": ["computing"]}}
    assert run({"name": "label", "args": args}, "It is about computing.") == "sci_tech"
    assert run({"name": "label", "args": args}, "World news") == "world"
    assert set(label_map(ExtractSpec.model_validate({"name": "label", "args": args}), {}, "t")) == {"world", "Sports", "Business", "sci_tech"}
    with pytest.raises(TaskError, match="unknown label preset 'sentiment9'"):
        check_extract(ExtractSpec.model_validate({"name": "label", "args": {"preset": "sentiment9"}}), {}, "t")
    with pytest.raises(TaskError, match="rename maps preset labels"):
        check_extract(ExtractSpec.model_validate({"name": "label", "args": {"preset": "hate", "rename": {"x": "y"}}}), {}, "t")
    with pytest.raises(TaskError, match="labels_var 'nope'"):
        check_extract(ExtractSpec.model_validate({"name": "label", "args": {"labels_var": "nope"}}), {}, "t")


def test_every_preset_maps_its_own_labels():
    for name, labels in LABEL_PRESETS.items():
        for label in labels:
            assert map_label(label, labels) == label, (name, label)
            assert map_label(f"The answer is {label}.", labels) == label, (name, label)


# --------------------------------------------------------------------------- entities


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The people mentioned are John Smith and Mary.", [("John Smith", "PER"), ("Mary", "PER")]),
        (
            "The organizations are Google and the United Nations, and the location is Paris.",
            [("Google", "ORG"), ("United Nations", "ORG"), ("Paris", "LOC")],
        ),
        ("John Smith is a person and Paris is a location.", [("John Smith", "PER"), ("Paris", "LOC")]),
        ("Yesterday, the Bank of America is a company that sued Acme.", [("Bank of America", "ORG")]),
        ("The text mentions two people: Alice and Bob.", [("Alice", "PER"), ("Bob", "PER")]),
        ("PER: John Smith, Mary\nLOC: Paris\nORG: Acme Corp", [("John Smith", "PER"), ("Mary", "PER"), ("Paris", "LOC"), ("Acme Corp", "ORG")]),
        ("1. John Smith (person)\n2. Paris (place)\n3. EU (MISC)", [("John Smith", "PER"), ("Paris", "LOC"), ("EU", "MISC")]),
        ("John Smith - PER\nAcme Corp - company", [("John Smith", "PER"), ("Acme Corp", "ORG")]),
        ("Company: Acme, Initech and Globex", [("Acme", "ORG"), ("Initech", "ORG"), ("Globex", "ORG")]),
        ('[{"name": "Berlin", "type": "location"}]', [("Berlin", "LOC")]),
        ("There are no entities in this sentence.", []),
    ],
)
def test_entities_step(text, expected):
    assert parse_entities(text) == expected
    assert run("entities", text) == [list(e) for e in expected]


def test_extractors_stay_linear_on_long_adversarial_answers():
    import time

    long = "A B " * 6000 + "(" * 4000 + "1," * 4000 + " the answer is " * 2000
    t0 = time.perf_counter()
    parse_entities(long), extract_letter(long, "ABCD"), extract_number(long, "gsm8k")
    assert time.perf_counter() - t0 < 3.0  # a quadratic name scan took ~16 s here


def test_entities_custom_types_arg():
    types = {"DRUG": ["drug", "medication"]}
    assert run({"name": "entities", "args": {"types": types}}, "- Aspirin (medication)") == [["Aspirin", "DRUG"]]


# --------------------------------------------------------------------------- pipelines and the spec


def test_spec_forms_and_backward_compatible_dump():
    one = ExtractSpec.model_validate("number")
    assert one.name == "number" and one.args == {} and not one.majority
    step = ExtractSpec.model_validate({"name": "label", "args": {"preset": "sentiment3"}})
    # a one-step pipeline dumps as the step it always was (task hashes do not move)
    assert step.model_dump() == {"name": "label", "args": {"preset": "sentiment3"}}
    assert ExtractSpec(name="none").model_dump() == {"name": "none", "args": {}}
    pipe = ExtractSpec.model_validate([{"name": "regex", "args": {"pattern": "answer is (.*)"}}, "number", "majority"])
    assert [s.name for s in pipe.steps] == ["regex", "number", "majority"]
    assert pipe.name == "number" and pipe.majority and pipe.step("regex").args == {"pattern": "answer is (.*)"}
    assert ExtractSpec.model_validate(json.loads(pipe.model_dump_json())) == pipe
    assert ExtractSpec.model_validate(json.loads(step.model_dump_json())) == step


def test_pipelines_feed_each_step_the_previous_output():
    cot = "Let me compute: 2 * 3 = 6, plus 1,000 gives 1,006.\nThe answer is 1,006 apples. (checked 3 times)"
    regex = {"name": "regex", "args": {"pattern": r"answer is (.*)"}}
    assert run([regex, {"name": "number", "args": {"mode": "first"}}], cot) == "1006"
    assert run([regex, "number"], cot) == "3"  # the regex kept "1,006 apples. (checked 3 times)"
    assert run({"name": "number", "args": {"mode": "first"}}, cot) == "2"  # without the regex
    assert run(["first_line", "letter"], "(C) Paris\nThe answer is (A).") == "C"
    assert run(["first_line", {"name": "label", "args": {"preset": "sentiment2"}}], "Negative\nbut positive too") == "negative"
    # nothing found early passes None on
    assert run(["number", "strip"], "no digits") is None
    assert run([{"name": "regex", "args": {"pattern": "answer is (.*)"}}, "letter"], "no statement here: B") is None


def _task(extract_yaml: str) -> str:
    return textwrap.dedent(
        """\
        task: pipe_task
        output_type: generate
        dataset: {local: {path: x.jsonl}}
        prompts: [{id: p, template: "{{ q }}"}]
        target: answer
        metrics: [exact_match]
        """
    ) + f"extract: {extract_yaml}\n"


@pytest.mark.parametrize(
    ("extract_yaml", "message"),
    [
        ("[entities, strip]", "task pipe_task: extract step 2 'strip' reads text, but step 1 'entities' gives a list of entities"),
        ("[{name: label, args: {preset: hate}}, number]", "step 2 'number' reads text, but step 1 'label' gives a label"),
        ("[majority, number]", "task pipe_task: extract step 1 'majority' must be the last step"),
        ("[strip, code]", "'code' runs the raw answer and cannot be part of a pipeline"),
        ("[numbr]", "extract.steps.0.name': unknown extraction step 'numbr'. Did you mean: number"),
    ],
)
def test_bad_pipeline_is_a_load_error_naming_the_task(tmp_path, extract_yaml, message):
    path = tmp_path / "pipe_task.yaml"
    path.write_text(_task(extract_yaml), encoding="utf-8")
    with pytest.raises(TaskError, match=message) as exc:
        load_task(path)
    assert f"{path}:7" in str(exc.value)  # the file and the line of `extract:`


def test_good_pipelines_load(tmp_path):
    path = tmp_path / "pipe_task.yaml"
    path.write_text(_task("[{name: regex, args: {pattern: 'answer is (.*)', all: true}}, number, majority]"), encoding="utf-8")
    spec = load_task(path)
    assert [s.name for s in spec.extract.steps] == ["regex", "number", "majority"]
    path.write_text(_task("[{name: label, args: {preset: sentiment3}}, majority]"), encoding="utf-8")
    assert load_task(path).extract.name == "label"
    path.write_text(_task("code"), encoding="utf-8")
    assert load_task(path).extract.name == "code"


def test_unknown_step_args_are_task_errors():
    with pytest.raises(TaskError, match="task t: extract step 2 'number' takes no argument"):
        check_extract(ExtractSpec.model_validate(["strip", {"name": "number", "args": {"pattern": "x"}}]), {}, "t")


def test_unknown_step_names_suggest_close_ones():
    with pytest.raises(ValidationError, match="unknown extraction step 'first_lines'. Did you mean: first_line"):
        ExtractSpec.model_validate(["strip", "first_lines"])
    # a spec built without validation is still checked before any model runs, and by name
    unchecked = ExtractSpec.model_construct(steps=(ExtractStep(name="strip"), ExtractStep.model_construct(name="lable", args={})))
    with pytest.raises(TaskError, match="task t: extract step 2: unknown extraction step 'lable'. Did you mean: label"):
        check_extract(unchecked, {}, "t")
    with pytest.raises(TaskError, match="task t: unknown extraction step 'lable'"):
        extract(unchecked, "x", task_vars={}, target=None, task="t")


def test_the_table_is_the_one_list_of_steps():
    """The spec accepts every step of ``STEPS`` by name, and a step whose ``gives`` is not text
    cannot feed a text step."""
    for name, step in STEPS.items():
        check_pipeline(ExtractSpec.model_validate(name), "t")
        if step.gives is not None and name != "code":  # code cannot be part of any pipeline
            with pytest.raises(ValueError, match=f"step 2 'strip' reads text, but step 1 '{name}' gives {step.gives}"):
                check_pipeline(ExtractSpec.model_validate([name, "strip"]), "t")


# --------------------------------------------------------------------------- majority vote


def test_vote_rules():
    assert vote(["3", "4", "4"]) == "4"
    assert vote(["3", "4"]) == "3"  # a tie goes to the earliest sample
    assert vote(["4", "3", "3", "4"]) == "4"
    assert vote([None, None, "5"]) == "5"  # None does not vote
    assert vote([None, None]) is None
    assert vote([[["Paris", "LOC"]], [["Rome", "LOC"]], [["Rome", "LOC"]]]) == [["Rome", "LOC"]]


FP = "model-fp"


def _spec(**kw) -> TaskSpec:
    base = dict(task="t", dataset={"local": {"path": "x.jsonl"}}, prompts=[{"id": "p", "template": "{{ q }}"}], output_type="generate", target="answer")
    return TaskSpec.model_validate(base | kw)


def _fill(store: RunStore, spec: TaskSpec, items: list[tuple[list[str], object]]) -> None:
    rows, results = [], []
    for n, (texts, target) in enumerate(items):
        keys = []
        for i, t in enumerate(texts):
            req = GenerateRequest(f"ctx{n}", sample_index=i, temperature=0.7)
            keys.append(request_key(req))
            results.append((keys[-1], req, GenerateResult(t, 5, "stop")))
        rows.append(("p", str(n), {"prompt": f"prompt {n}", "target": target, "choices": []}, keys))
    store.put_task("m", spec.task, spec.model_dump(mode="json"), {}, rows)
    store.put_results(FP, results, "s")


def test_majority_vote_through_the_scoring_stage(tmp_path):
    spec = _spec(extract=[{"name": "number", "args": {"mode": "gsm8k"}}, "majority"], metrics=["number_match", "exact_match"],
                 generation={"n": 3, "temperature": 0.7})
    store = RunStore(tmp_path)
    _fill(store, spec, [
        (["2 + 2 = 4\n#### 4", "I think #### 5", "So 4.\n#### 4"], "Two plus two.\n#### 4"),  # vote 4: right
        (["#### 7", "#### 8", "no idea"], "#### 8"),  # 7 and 8 tie: the earlier 7 wins, wrong
        (["nothing", "still nothing", "#### -1,500"], "#### -1,500"),  # only one sample votes
        (["x", "y", "z"], "#### 3"),  # nobody votes
    ])
    res, samples = score_task(store, "m", FP, spec)
    assert [s["vote"] for s in samples] == ["4", "7", "-1500", None]
    assert samples[0]["extracted"] == ["4", "5", "4"]  # every sample's answer is kept
    assert samples[2]["extracted"] == [None, None, "-1500"]
    assert res.metrics["number_match"].value == pytest.approx(2 / 4)


def test_without_majority_every_sample_is_scored_as_before(tmp_path):
    spec = _spec(extract={"name": "letter", "args": {"letters": "ABCD"}}, metrics=["label_acc"], target="answer")
    store = RunStore(tmp_path)
    _fill(store, spec, [(["So the answer is (B)."], "B"), (["Answer: c"], "(C)"), (["I am not sure."], "A"), (["(D)"], "A")])
    res, samples = score_task(store, "m", FP, spec)
    assert [s["extracted"] for s in samples] == ["B", "C", None, "D"]
    assert "vote" not in samples[0]
    assert res.metrics["label_acc"].value == pytest.approx(2 / 4)  # "C" matches BBH's "(C)"


# --------------------------------------------------------------------------- metrics


def _item(extracted, target) -> M.Item:
    return M.Item("generate", target, extracted=(extracted,))


def test_number_match_compares_numbers_not_squad_strings():
    nm, em = M.metric("number_match").item, M.metric("exact_match").item
    assert nm(_item("-3.5", "-3.50"), {}) == 1.0
    assert nm(_item("3.5", "-3.5"), {}) == 0.0
    assert em(_item("3.5", "-3.5"), {}) == 1.0  # why number_match exists: SQuAD drops "-" and "."
    assert nm(_item("1234", "She earns $1,234.\n#### 1,234"), {}) == 1.0  # a GSM8K answer as target
    assert nm(_item("18", 18), {}) == 1.0
    assert nm(_item("18", ["17", "18.0"]), {}) == 1.0
    assert nm(_item(None, "0"), {}) == 0.0
    assert nm(_item("", "0"), {}) == 0.0


def test_exact_match_and_label_acc_on_letters():
    em, acc = M.metric("exact_match").item, M.metric("label_acc").item
    # "A" is an article to SQuAD normalisation: "A" vs "(B)" must not both become ""
    assert em(_item("A", "(A)"), {}) == 1.0
    assert em(_item("A", "(B)"), {}) == 0.0
    assert em(_item(None, "(A)"), {}) == 0.0
    assert acc(_item("B", "(B)"), {}) == 1.0
    assert acc(_item("B", "B"), {}) == 1.0
    assert acc(_item("B", "(C)"), {}) == 0.0
    assert acc(_item(None, "None"), {}) == 0.0


# --------------------------------------------------------------------------- real data


def test_gsm8k_reference_answers_extract_to_their_marked_number(data_dir):
    rows = [json.loads(ln) for ln in (data_dir / "gsm8k" / "test.jsonl").read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert len(rows) == 1319
    for r in rows:
        marked = normalize_number(r["answer"].rsplit("####", 1)[1])
        assert marked is not None
        assert extract_number(r["answer"], "gsm8k") == marked
        # the reference rationale ends with its answer, so the last number is it too
        assert extract_number(r["answer"], "last") == marked, r["answer"]


def test_bbh_letter_targets_extract_to_their_letter(data_dir):
    n = 0
    for path in sorted((data_dir / "bbh").glob("*.json")):
        for ex in json.loads(path.read_text(encoding="utf-8"))["examples"]:
            t = ex["target"]
            if len(t) == 3 and t[0] == "(" and t[2] == ")":
                n += 1
                assert extract_letter(t, "ABCDEFGHIJKLMNOPQR") == t[1]
                assert extract_letter(f"Let's think step by step. (A) and (B) are out. So the answer is {t}.", "ABCDEFGHIJKLMNOPQR") == t[1]
    assert n > 2000
