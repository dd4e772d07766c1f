"""The judge's prompts: built-in, named and versioned, rendered in a Jinja2 sandbox; the name,
version and content hash of the one used are recorded with every judgement.

Single grading sees ``question``, ``answer``, ``reference`` (or nothing) and ``scale``
("1-10" or "pass/fail"); pairwise grading sees ``question``, ``answer_a``, ``answer_b`` and
``reference``. The verdict forms the parser reads (``verdicts``) are asked for in the last
line: ``Rating: [[N]]``, ``[[PASS]]``/``[[FAIL]]``, or ``[[A]]``/``[[B]]``/``[[C]]`` (a tie).
A task may give its own template (any Jinja text that asks for the same forms).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from assay.errors import TaskError

# the answer blocks' markers (the mock judge of the tests finds the answers by them)
ANSWER_A, END_A = "### Answer A", "### End of answer A"
ANSWER_B, END_B = "### Answer B", "### End of answer B"
ANSWER, END = "### Answer", "### End of answer"


@dataclass(frozen=True)
class JudgePrompt:
    name: str
    version: int
    mode: str  # single | pairwise
    text: str

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:12]

    def render(self, **values: Any) -> str:
        try:
            return _compile(self.text).render(**values).strip() + "\n"
        except jinja2.TemplateError as exc:
            raise TaskError(f"judge prompt {self.name}: {exc}") from None


SINGLE = JudgePrompt("single-v1", 1, "single", """\
You are grading one answer that an AI assistant gave to a user. {% if reference -%}
Compare it with the reference answer: {% if scale == "pass/fail" %}the answer passes when it reaches the same result as the reference (wording, extra explanation and formatting do not matter), and fails when its result is different, missing or contradicts the reference.{% else %}rate how well it reaches the reference's result, and how clear and relevant it is.{% endif %}
{%- else -%}
Rate how helpful, correct, relevant and clear it is for this request. Length is not a merit by itself.
{%- endif %}

### Request
{{ question }}
### End of request
{% if reference %}
### Reference answer
{{ reference }}
### End of reference answer
{% endif %}
""" + ANSWER + """
{{ answer }}
""" + END + """

Explain your judgement in at most three sentences. Then, on the last line, write {% if scale == "pass/fail" %}exactly [[PASS]] or [[FAIL]].{% else %}your rating from 1 (useless) to 10 (excellent) in exactly this form: Rating: [[N]]{% endif %}
""")

PAIRWISE = JudgePrompt("pairwise-v1", 1, "pairwise", """\
You are comparing two answers that two AI assistants gave to the same user request. Decide which answer serves the user better: correct, helpful, relevant and clear. {% if reference %}A reference answer is given: an answer that reaches a different result is worse. {% endif %}Ignore which answer comes first and do not prefer an answer for being longer.

### Request
{{ question }}
### End of request
{% if reference %}
### Reference answer
{{ reference }}
### End of reference answer
{% endif %}
""" + ANSWER_A + """
{{ answer_a }}
""" + END_A + """

""" + ANSWER_B + """
{{ answer_b }}
""" + END_B + """

Explain your judgement in at most three sentences. Then, on the last line, write exactly [[A]] if answer A is better, [[B]] if answer B is better, or [[C]] if they are equally good.
""")

BUILTIN = {p.name: p for p in (SINGLE, PAIRWISE)}


@lru_cache(maxsize=64)
def _compile(text: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(text)


def judge_prompt(mode: str, given: str | None, task: str) -> JudgePrompt:
    """The prompt a task's judging uses: a built-in by name, the task's own template, or the
    built-in one for the mode."""
    if given is None:
        return SINGLE if mode == "single" else PAIRWISE
    if given in BUILTIN:
        p = BUILTIN[given]
        if p.mode != mode:
            raise TaskError(f"task {task}: judge prompt {given} is for {p.mode} grading, not {mode}")
        return p
    if "{{" not in given:
        raise TaskError(f"task {task}: unknown judge prompt '{given}' (built-in: {', '.join(BUILTIN)}; or write a Jinja template)")
    try:
        _compile(given)
    except jinja2.TemplateSyntaxError as exc:
        raise TaskError(f"task {task}: judge template: {exc.message} (line {exc.lineno})") from None
    return JudgePrompt(f"{task}-{mode}", 0, mode, given)
