"""Tests for assay.prompts.chat (chat templates, format policy, stop strings)."""

from __future__ import annotations

import pytest

from assay.errors import TaskError, UnknownNameError
from assay.prompts.chat import ChatTemplate, FormatChoice, apply_format, choose_format, render_chat
from assay.prompts.template import END_MARKERS

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# written over several lines, as real templates are: trim_blocks/lstrip_blocks must apply
CHATML_MULTILINE = """\
{% for message in messages %}
    {% if message['role'] == 'system' %}
<|im_start|>system
{{ message['content'] }}<|im_end|>
    {% else %}
<|im_start|>{{ message['role'] }}
{{ message['content'] }}<|im_end|>
    {% endif %}
{% endfor %}
{% if add_generation_prompt %}
<|im_start|>assistant
{% endif %}
"""

TPL = ChatTemplate(CHATML, bos_token="", eos_token="<|endoftext|>")
MODEL = FormatChoice("model", TPL.hash, "test")
NONE = FormatChoice("none", "-", "test")


def test_render_chat_chatml():
    out = render_chat(TPL, [{"role": "user", "content": "Hi there"}])
    assert out == "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"


def test_render_chat_without_generation_prompt():
    out = render_chat(TPL, [{"role": "user", "content": "Hi"}], add_generation_prompt=False)
    assert out == "<|im_start|>user\nHi<|im_end|>\n"


def test_render_chat_multiline_template_matches():
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    a = render_chat(ChatTemplate(CHATML_MULTILINE), msgs)
    b = render_chat(TPL, msgs)
    assert a == b == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_render_chat_bos_and_eos_tokens():
    tpl = ChatTemplate("{{ bos_token }}{% for m in messages %}{{ m['content'] }}{{ eos_token }}{% endfor %}", "<s>", "</s>")
    assert render_chat(tpl, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]) == "<s>a</s>b</s>"


def test_render_chat_tojson_filter():
    tpl = ChatTemplate("{{ messages[0]['content'] | tojson }}")
    assert render_chat(tpl, [{"role": "user", "content": 'say "é"'}]) == '"say \\"é\\""'


def test_apply_format_model_with_shots_and_system():
    shots = (("1+1?", "2"), ("2+2?", "4"))
    out = apply_format(MODEL, TPL, "3+3?", shots, "\n\n", " ", system="You add numbers.")
    assert out == (
        "<|im_start|>system\nYou add numbers.<|im_end|>\n"
        "<|im_start|>user\n1+1?<|im_end|>\n"
        "<|im_start|>assistant\n2<|im_end|>\n"
        "<|im_start|>user\n2+2?<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n"
        "<|im_start|>user\n3+3?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_apply_format_model_without_system_has_no_system_turn():
    out = apply_format(MODEL, TPL, "Q", (), "\n\n", " ")
    assert "system" not in out
    assert out == "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"


def test_apply_format_none():
    out = apply_format(NONE, None, "Q3", (("Q1", "A1"), ("Q2", "A2")), "\n\n", " ")
    assert out == "Q1 A1\n\nQ2 A2\n\nQ3"
    assert apply_format(NONE, TPL, "Q", (), "\n\n", " ", system="ignored") == "Q"


# --------------------------------------------------------------------------- policy


@pytest.mark.parametrize(
    ("policy", "output_type", "has_tpl", "override", "name"),
    [
        ("auto", "generate", True, None, "model"),
        ("auto", "generate", False, None, "none"),
        ("auto", "multiple_choice", True, None, "none"),
        ("auto", "multiple_choice", False, None, "none"),
        ("auto", "rolling", True, None, "none"),
        ("never", "generate", True, None, "none"),
        ("never", "multiple_choice", False, None, "none"),
        ("always", "generate", True, None, "model"),
        ("always", "multiple_choice", True, None, "model"),
        ("auto", "multiple_choice", True, "model", "model"),
        ("never", "generate", True, "model", "model"),
        ("always", "generate", True, "none", "none"),
        ("auto", "generate", False, "none", "none"),
    ],
)
def test_choose_format_table(policy, output_type, has_tpl, override, name):
    choice = choose_format(policy, output_type, TPL if has_tpl else None, override)
    assert choice.name == name
    assert choice.template_hash == (TPL.hash if name == "model" else "-")
    assert choice.reason
    if override:
        assert choice.reason == "--chat-format"


def test_choose_format_always_without_template():
    with pytest.raises(TaskError, match="needs a chat template"):
        choose_format("always", "generate", None, None)


def test_choose_format_override_model_without_template():
    with pytest.raises(TaskError, match="no chat template"):
        choose_format("auto", "generate", None, "model")


def test_choose_format_unknown_override():
    with pytest.raises(UnknownNameError, match="unknown chat format 'chatlm'. Did you mean: chatml"):
        choose_format("auto", "generate", TPL, "chatlm")


def test_choose_format_named_override_beats_the_model_template():
    choice = choose_format("auto", "generate", TPL, "alpaca")
    assert choice.name == "alpaca" and choice.template_hash != TPL.hash
    out = apply_format(choice, TPL, "Q", (), "\n\n", " ")
    assert out.endswith("### Instruction:\nQ\n\n### Response:\n") and "<|im_start|>" not in out


def test_choose_format_model_carries_template_and_stops():
    choice = choose_format("auto", "generate", TPL, None)
    assert choice.template is TPL and choice.stop == TPL.stop_strings() == ("<|im_end|>", "<|endoftext|>")
    assert choose_format("auto", "multiple_choice", TPL, None).stop == ()
    # "model" and "none" are also accepted as task policies
    assert choose_format("model", "multiple_choice", TPL, None).name == "model"
    assert choose_format("none", "generate", TPL, None).name == "none"


# --------------------------------------------------------------------------- template properties


def test_template_hash():
    assert TPL.hash == ChatTemplate(CHATML, "x", "y").hash  # the source decides
    assert TPL.hash != ChatTemplate(CHATML + " ").hash
    assert len(TPL.hash) == 12


def test_stop_strings():
    assert TPL.stop_strings() == ("<|im_end|>", "<|endoftext|>")
    # eos already among the markers is not repeated
    assert ChatTemplate(CHATML, eos_token="<|im_end|>").stop_strings() == ("<|im_end|>",)
    assert ChatTemplate("{{ messages }}").stop_strings() == ()
    gemma = ChatTemplate("<start_of_turn>user {{ x }}<end_of_turn>", eos_token="<eos>")
    assert gemma.stop_strings() == ("<end_of_turn>", "<eos>")
    assert all(ChatTemplate(m).stop_strings() == (m,) for m in END_MARKERS)


def test_raise_exception_becomes_task_error():
    tpl = ChatTemplate(
        "{% for m in messages %}{% if m['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}{{ m['content'] }}{% endfor %}"
    )
    assert render_chat(tpl, [{"role": "user", "content": "ok"}]) == "ok"
    with pytest.raises(TaskError) as ei:
        render_chat(tpl, [{"role": "system", "content": "x"}])
    assert "System role not supported" in str(ei.value)
    assert "chat template failed" in str(ei.value)


def test_template_syntax_error_becomes_task_error():
    with pytest.raises(TaskError, match="chat template failed"):
        render_chat(ChatTemplate("{% for m in messages %}"), [{"role": "user", "content": "x"}])


@pytest.mark.parametrize(
    "source",
    [
        "{{ messages.__class__.__mro__ }}",
        "{{ messages.__class__ }}",
        "{{ messages.__class__.__mro__[1].__subclasses__() }}",
        "{{ raise_exception.__globals__ }}",
        "{{ raise_exception.__globals__['jinja2'] }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    ],
)
def test_sandbox_blocks_escapes(source):
    msgs = [{"role": "user", "content": "x"}]
    try:
        out = render_chat(ChatTemplate(source), msgs)
    except TaskError as exc:
        assert "unsafe" in str(exc) or "undefined" in str(exc)
    else:
        # a lenient Undefined renders as nothing: nothing of Python's internals leaks out
        assert out == ""


def test_sandbox_is_immutable():
    msgs = [{"role": "user", "content": "x"}]
    with pytest.raises(TaskError):
        render_chat(ChatTemplate("{{ messages.append({'role': 'user'}) }}"), msgs)
    assert msgs == [{"role": "user", "content": "x"}]


def test_strftime_now_is_available():
    out = render_chat(ChatTemplate("{{ strftime_now('%Y') }}"), [])
    assert out.isdigit() and len(out) == 4
