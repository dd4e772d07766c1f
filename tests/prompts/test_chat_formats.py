"""Tests for assay.prompts.formats: the named chat formats, their exact strings, the OpenChat
token ids, the choice policy with format names, and how a run records the format."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from assay.backends.base import Backend, Capabilities, ModelInfo
from assay.errors import TaskError, UnknownNameError
from assay.prompts.chat import apply_format, choose_format, render_chat
from assay.prompts.formats import FORMATS, check_format_name, check_policy, get_format, known_formats
from assay.tasks.spec import PromptSpec

SHOTS = (("What is 2+2?", "4"), ("What is 3+1?", "4"))
QUERY = "What is 1+1?"
SYSTEM = "Be brief."

# system + 2-shot + query, exactly as each model card lays it out
EXPECTED = {
    "openchat-llama2-v1": (
        "Be brief.<|end_of_turn|>"
        "User: What is 2+2?<|end_of_turn|>Assistant: 4<|end_of_turn|>"
        "User: What is 3+1?<|end_of_turn|>Assistant: 4<|end_of_turn|>"
        "User: What is 1+1?<|end_of_turn|>Assistant:"
    ),
    "openchat-llama2-v1-gpt4": (
        "Be brief.<|end_of_turn|>"
        "GPT4 User: What is 2+2?<|end_of_turn|>GPT4 Assistant: 4<|end_of_turn|>"
        "GPT4 User: What is 3+1?<|end_of_turn|>GPT4 Assistant: 4<|end_of_turn|>"
        "GPT4 User: What is 1+1?<|end_of_turn|>GPT4 Assistant:"
    ),
    "alpaca": (
        "Be brief.\n\n"
        "### Instruction:\nWhat is 2+2?\n\n### Response:\n4\n\n"
        "### Instruction:\nWhat is 3+1?\n\n### Response:\n4\n\n"
        "### Instruction:\nWhat is 1+1?\n\n### Response:\n"
    ),
    "chatml": (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n"
        "<|im_start|>user\nWhat is 3+1?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n"
        "<|im_start|>user\nWhat is 1+1?<|im_end|>\n<|im_start|>assistant\n"
    ),
    "oasst": (
        "<|system|>Be brief.<|endoftext|>"
        "<|prompter|>What is 2+2?<|endoftext|><|assistant|>4<|endoftext|>"
        "<|prompter|>What is 3+1?<|endoftext|><|assistant|>4<|endoftext|>"
        "<|prompter|>What is 1+1?<|endoftext|><|assistant|>"
    ),
    "falcon": (
        "System: Be brief.\n"
        "User: What is 2+2?\nFalcon: 4\n"
        "User: What is 3+1?\nFalcon: 4\n"
        "User: What is 1+1?\nFalcon:"
    ),
    "idefics-instruct": (
        "System: Be brief.<end_of_utterance>\n"
        "User: What is 2+2?<end_of_utterance>\nAssistant: 4<end_of_utterance>\n"
        "User: What is 3+1?<end_of_utterance>\nAssistant: 4<end_of_utterance>\n"
        "User: What is 1+1?<end_of_utterance>\nAssistant:"
    ),
}

# the query alone, without a system prompt
EXPECTED_ZERO_SHOT = {
    "openchat-llama2-v1": "User: What is 1+1?<|end_of_turn|>Assistant:",
    "openchat-llama2-v1-gpt4": "GPT4 User: What is 1+1?<|end_of_turn|>GPT4 Assistant:",
    "alpaca": (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nWhat is 1+1?\n\n### Response:\n"
    ),
    "chatml": "<|im_start|>user\nWhat is 1+1?<|im_end|>\n<|im_start|>assistant\n",
    "oasst": "<|prompter|>What is 1+1?<|endoftext|><|assistant|>",
    "falcon": "User: What is 1+1?\nFalcon:",
    "idefics-instruct": "User: What is 1+1?<end_of_utterance>\nAssistant:",
}


def test_every_format_has_expected_strings():
    assert set(EXPECTED) == set(FORMATS) == set(EXPECTED_ZERO_SHOT)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_system_and_two_shots(name):
    choice = choose_format("auto", "generate", None, name)
    assert apply_format(choice, None, QUERY, SHOTS, "\n\n", " ", system=SYSTEM) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_ZERO_SHOT))
def test_zero_shot_without_system(name):
    choice = choose_format("auto", "generate", None, name)
    assert apply_format(choice, None, QUERY, (), "\n\n", " ") == EXPECTED_ZERO_SHOT[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reply_ends_at_a_stop_string(name):
    """The reply after the shots' answer is cut by one of the format's stop strings: what the
    model would write next if it ran on into another turn contains a stop."""
    fmt = FORMATS[name]
    rendered = EXPECTED[name]
    # the text the format puts after an answer, up to the next user turn
    after_answer = rendered.split("4", 1)[1].split("What is 3+1?")[0]
    assert any(s in after_answer for s in fmt.stop), (name, after_answer, fmt.stop)


def test_template_hash_is_the_hash_of_the_source_rendered():
    for f in FORMATS.values():
        assert f.hash == hashlib.sha256(f.template.encode()).hexdigest()[:12]
        choice = choose_format("auto", "generate", None, f.name)
        assert (choice.name, choice.template_hash, choice.stop) == (f.name, f.hash, f.stop)
        assert choice.template is not None and choice.template.source == f.template
    assert len({f.hash for f in FORMATS.values()}) == len(FORMATS)


def test_preamble_goes_into_the_first_user_turn():
    choice = choose_format("auto", "generate", None, "falcon")
    out = apply_format(choice, None, "Q2", (("Q1", "A1"),), "\n\n", " ", preamble="Maths.\n")
    assert out == "User: Maths.\nQ1\nFalcon: A1\nUser: Q2\nFalcon:"


def test_alpaca_system_must_come_first():
    tpl = FORMATS["alpaca"].chat_template
    with pytest.raises(TaskError, match="system message must come first"):
        render_chat(tpl, [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_unknown_role_is_an_error(name):
    with pytest.raises(TaskError, match="unknown role: tool"):
        render_chat(FORMATS[name].chat_template, [{"role": "tool", "content": "x"}])


# --------------------------------------------------------------------------- names and policy


def test_known_formats_and_did_you_mean():
    assert known_formats()[:2] == ("none", "model")
    assert set(known_formats()) == {"none", "model", *FORMATS}
    assert check_format_name("chatml") == "chatml" and check_format_name("none") == "none"
    with pytest.raises(UnknownNameError, match="Did you mean: chatml"):
        check_format_name("chatlm")
    with pytest.raises(UnknownNameError, match="Did you mean: openchat-llama2-v1"):
        get_format("openchat-llama2")
    with pytest.raises(UnknownNameError, match="unknown chat format 'chatlm'"):
        choose_format("auto", "generate", None, "chatlm")


def test_task_policy_may_name_a_format():
    c = choose_format("alpaca", "multiple_choice", None, None)
    assert (c.name, c.template_hash, c.reason) == ("alpaca", FORMATS["alpaca"].hash, "the task asks for format alpaca")
    # --chat-format overrides the task's format
    assert choose_format("alpaca", "generate", None, "chatml").name == "chatml"
    assert choose_format("alpaca", "generate", None, "none").name == "none"
    assert choose_format("none", "generate", None, None).name == "none"


def test_check_policy_and_spec_validation():
    for v in ("auto", "never", "always", "none", "model", "chatml", "openchat-llama2-v1"):
        assert check_policy(v) == v
        assert PromptSpec(id="p", template="t", chat=v).chat == v
    with pytest.raises(ValidationError, match="Did you mean: alpaca"):
        PromptSpec(id="p", template="t", chat="alpacca")


# --------------------------------------------------------------------------- OpenChat token ids


@pytest.fixture(scope="module")
def llama_tok():
    pytest.importorskip("transformers")
    from llama_layout import llama_layout_tokenizer

    return llama_layout_tokenizer()


def _check_eot_ids(tok, text: str) -> list[int]:
    from llama_layout import EOT, EOT_ID

    ids = tok(text)["input_ids"]
    # BOS once, then every piece between markers tokenised on its own, with 32000 in between
    expected = [tok.bos_token_id]
    for k, piece in enumerate(text.split(EOT)):
        if k:
            expected.append(EOT_ID)
        expected += tok(piece, add_special_tokens=False)["input_ids"]
    assert ids == expected
    assert ids.count(EOT_ID) == text.count(EOT) > 0
    vocab = tok.get_vocab()
    pieces = {vocab[p] for p in ("<", "|", "end_of_turn", ">")}
    assert not pieces & set(ids), "the marker was split into pieces"
    assert tok.unk_token_id not in ids
    return ids


def test_openchat_layout_tokenizer(llama_tok):
    from llama_layout import EOT, EOT_ID

    assert len(llama_tok) == 32001 and llama_tok.convert_tokens_to_ids(EOT) == EOT_ID
    assert (llama_tok.unk_token_id, llama_tok.bos_token_id, llama_tok.eos_token_id) == (0, 1, 2)
    # the negative control: read as plain text, the marker is pieces, never 32000
    split = llama_tok(EOT, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    assert EOT_ID not in split and len(split) == 5


def test_openchat_card_single_turn_token_ids(llama_tok):
    # the card's "GPT4 User: {prompt}<|end_of_turn|>GPT4 Assistant:"
    choice = choose_format("auto", "generate", None, "openchat-llama2-v1-gpt4")
    text = apply_format(choice, None, "Hello", (), "\n\n", " ")
    assert text == "GPT4 User: Hello<|end_of_turn|>GPT4 Assistant:"
    v = llama_tok.get_vocab()
    ids = _check_eot_ids(llama_tok, text)
    assert ids == [1, v["GPT4"], v["User"], v[":"], v["Hello"], 32000, v["GPT4"], v["Assistant"], v[":"]]


def test_openchat_card_multi_turn_token_ids(llama_tok):
    # the card's multi-turn example: the 32000s sit exactly after each turn
    choice = choose_format("auto", "generate", None, "openchat-llama2-v1")
    text = apply_format(choice, None, "How are you today?", (("Hello", "Hi"),), "\n\n", " ")
    assert text == "User: Hello<|end_of_turn|>Assistant: Hi<|end_of_turn|>User: How are you today?<|end_of_turn|>Assistant:"
    v = llama_tok.get_vocab()
    ids = _check_eot_ids(llama_tok, text)
    assert ids == [
        1, v["User"], v[":"], v["Hello"], 32000, v["Assistant"], v[":"], v["Hi"], 32000,
        v["User"], v[":"], v["How"], v["are"], v["you"], v["today"], v["?"], 32000, v["Assistant"], v[":"],
    ]


def test_openchat_system_form_token_ids(llama_tok):
    choice = choose_format("auto", "generate", None, "openchat-llama2-v1")
    text = apply_format(choice, None, "What is 2+3?", (("What is 1+1?", "2"),), "\n\n", " ", system="Be brief.")
    assert text.startswith("Be brief.<|end_of_turn|>User: What is 1+1?<|end_of_turn|>Assistant: 2<|end_of_turn|>")
    ids = _check_eot_ids(llama_tok, text)
    assert ids.count(32000) == 4


# --------------------------------------------------------------------------- what a run records


class _Describing(Backend):
    """A backend that only describes itself (no model)."""

    info = ModelInfo("stub", "stub", "fp")
    capabilities = Capabilities()

    def chat_template(self):
        return None

    def loglikelihood(self, requests):
        raise AssertionError("a describing stub computes nothing")

    loglikelihood_rolling = generate = loglikelihood


def _register(tmp_path, chat_format):
    from assay.config import RunConfig
    from assay.pipeline import register_model as _register_model
    from assay.plan import plan_tasks
    from assay.reports.terminal import UI
    from assay.store.runs import RunStore

    cfg = RunConfig(models=("stub",), tasks=("core_qa",), limit=2, chat_format=chat_format, system_prompt="Be brief.")
    store = RunStore(tmp_path / (chat_format or "auto"))
    reqs = _register_model(store, "stub", _Describing(), plan_tasks(cfg), cfg, UI(quiet=True))
    (row,) = [r for r in store.tasks() if r[1] == "core_qa"]
    rows = store.instances("stub", "core_qa")
    store.close()
    return reqs, row[3]["chat_format"], rows


@pytest.mark.usefixtures("data_dir")
def test_a_run_records_the_format_and_hash(tmp_path):
    reqs_a, rec_a, rows_a = _register(tmp_path, "chatml")
    reqs_b, rec_b, _ = _register(tmp_path, "openchat-llama2-v1")
    reqs_n, rec_n, _ = _register(tmp_path, None)  # the stub has no template: plain text
    assert rec_a["passage"] == {"name": "chatml", "template_hash": FORMATS["chatml"].hash, "reason": "--chat-format"}
    assert rec_b["passage"]["name"] == "openchat-llama2-v1" and rec_b["passage"]["template_hash"] == FORMATS["openchat-llama2-v1"].hash
    assert rec_n["passage"] == {"name": "none", "template_hash": "-", "reason": "model has no chat template"}
    # different formats never share a request
    assert not set(reqs_a) & set(reqs_b) and not set(reqs_a) & set(reqs_n)
    gen = next(iter(reqs_a.values()))
    assert gen.context.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nRead the passage")
    assert gen.until == ("\n\n", "<|im_end|>") and gen.special
    assert next(iter(reqs_b.values())).until == ("\n\n", "<|end_of_turn|>")
    assert rows_a[0][2]["chat_format"] == "chatml"


# --------------------------------------------------------------------------- the command line


def test_cli_lists_formats():
    from conftest import run_cli

    proc = run_cli("ls", "formats")
    assert proc.returncode == 0, proc.stderr
    for name in ("none", "model", *FORMATS):
        assert name in proc.stdout, name
    assert FORMATS["openchat-llama2-v1"].hash in proc.stdout


def test_cli_unknown_chat_format_fails_before_any_model_loads(tmp_path):
    from conftest import run_cli

    proc = run_cli("run", "-m", "no-such-model.gguf", "-t", "core_qa", "--chat-format", "chatlm", "-o", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("assay: error: unknown chat format 'chatlm'. Did you mean: chatml")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
