"""Chat formats: how an instance's text becomes the string a model reads.

Formats: ``none`` (plain text, as base-model harnesses send it), ``model`` (the model's own
chat template from its tokenizer or GGUF metadata, rendered in a sandboxed Jinja2 environment
exactly as transformers renders it) and the named formats of ``formats.py`` (chatml, alpaca,
openchat-llama2-v1, …), which are chat templates too and render the same way. Every result
records the format's name and the hash of the template source actually rendered.

Policy, per task prompt (``chat: auto|never|always`` or a format name): ``auto`` formats
generation tasks with the model's template when it has one, and leaves multiple-choice and
rolling tasks plain, which is what the established harnesses do by default, so numbers stay
comparable. ``--chat-format`` overrides the policy for every task.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from assay.errors import TaskError
from assay.prompts.formats import get_format
from assay.prompts.template import ChatTemplate


@dataclass(frozen=True)
class FormatChoice:
    name: str  # "none" | "model" | a named format
    template_hash: str  # hash of the template source rendered ("-" for plain text)
    reason: str
    template: ChatTemplate | None = None  # what is rendered (None: the model's, passed to apply_format)
    stop: tuple[str, ...] = ()  # strings that end a generated reply in this format


def _raise(msg: str) -> None:
    raise jinja2.TemplateError(msg)


@lru_cache(maxsize=32)
def _compile(source: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.Undefined)
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    env.filters["tojson"] = lambda x, indent=None, **kw: __import__("json").dumps(x, ensure_ascii=False, indent=indent)
    return env.from_string(source)


def render_chat(tpl: ChatTemplate, messages: list[dict[str, Any]], add_generation_prompt: bool = True) -> str:
    try:
        return _compile(tpl.source).render(
            messages=messages,
            add_generation_prompt=add_generation_prompt,
            bos_token=tpl.bos_token,
            eos_token=tpl.eos_token,
        )
    except jinja2.TemplateError as exc:
        raise TaskError(f"the chat template failed: {exc}") from None


def _model(tpl: ChatTemplate, reason: str) -> FormatChoice:
    return FormatChoice("model", tpl.hash, reason, tpl, tpl.stop_strings())


def _named(name: str, reason: str) -> FormatChoice:
    fmt = get_format(name)
    return FormatChoice(fmt.name, fmt.hash, reason, fmt.chat_template, fmt.stop)


def choose_format(policy: str, output_type: str, tpl: ChatTemplate | None, override: str | None) -> FormatChoice:
    """Which format a (model, task prompt) pair uses, and why (printed at the start of a run).

    ``policy`` is the prompt's ``chat:`` (auto, never, always, none, model or a format name);
    ``override`` is ``--chat-format`` (none, model or a format name)."""
    if override:
        if override == "none":
            return FormatChoice("none", "-", "--chat-format")
        if override == "model":
            if tpl is None:
                raise TaskError("--chat-format model: this model has no chat template")
            return _model(tpl, "--chat-format")
        return _named(override, "--chat-format")
    if policy in ("never", "none"):
        return FormatChoice("none", "-", "the task asks for plain text")
    if policy in ("always", "model"):
        if tpl is None:
            raise TaskError("the task needs a chat template and the model has none")
        return _model(tpl, "the task asks for the chat template")
    if policy != "auto":
        return _named(policy, f"the task asks for format {policy}")
    if output_type == "generate" and tpl is not None:
        return _model(tpl, "generation task, model has a chat template")
    if tpl is None:
        return FormatChoice("none", "-", "model has no chat template")
    return FormatChoice("none", "-", f"{output_type} task: plain text, as reference harnesses score it")


def apply_format(
    choice: FormatChoice,
    tpl: ChatTemplate | None,
    query: str,
    shots: tuple[tuple[str, str], ...],
    separator: str,
    delimiter: str,
    system: str | None = None,
    preamble: str = "",
) -> str:
    """The context string for one instance; few-shot examples become earlier chat turns.

    A preamble (e.g. "The following are multiple choice questions about X.") comes once,
    before everything in plain text, or at the start of the first user turn in chat."""
    if choice.name == "none":
        parts = [f"{q}{delimiter}{a}" for q, a in shots] + [query]
        return preamble + separator.join(parts)
    tpl = choice.template or tpl
    assert tpl is not None
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    turns = [(q, a) for q, a in shots] + [(query, None)]
    for i, (q, a) in enumerate(turns):
        messages.append({"role": "user", "content": preamble + q if i == 0 else q})
        if a is not None:
            messages.append({"role": "assistant", "content": a})
    return render_chat(tpl, messages)
