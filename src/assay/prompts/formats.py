"""Named chat formats: the prompt layouts of the seed models, as data.

Each format is a small chat template (Jinja2 source, rendered by ``render_chat`` in the same
sandbox as a model's own template) plus the strings that end a reply. A run records the
format's name and the hash of its template source, so changing a template changes the
recorded hash, and ``version`` says which revision of a layout a result used.

How every format renders a conversation (``messages`` = optional system message, then
alternating user/assistant turns; few-shot examples are earlier user/assistant turns):

- ``openchat-llama2-v1``: ``{system}<|end_of_turn|>User: {q}<|end_of_turn|>Assistant: {a}
  <|end_of_turn|>…User: {q}<|end_of_turn|>Assistant:`` ("OpenChat Llama2 V1", the multi-turn
  layout of the OpenOrca x OpenChat card; ``<|end_of_turn|>`` is one special token).
- ``openchat-llama2-v1-gpt4``: the same with ``GPT4 User: `` / ``GPT4 Assistant: ``, the
  card's single-turn prompt ``GPT4 User: {prompt}<|end_of_turn|>GPT4 Assistant:``.
- ``alpaca``: the system message (default: Alpaca's "Below is an instruction…" header), a
  blank line, then ``### Instruction:\\n{q}\\n\\n### Response:\\n{a}\\n\\n`` per turn, ending
  with ``### Response:\\n`` (the Alpaca / Alpaca-LoRA no-input prompt).
- ``chatml``: ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` per message, ending with
  ``<|im_start|>assistant\\n``.
- ``oasst``: ``<|system|>{system}<|endoftext|>``, ``<|prompter|>{q}<|endoftext|>``,
  ``<|assistant|>{a}<|endoftext|>``, ending with ``<|assistant|>`` (OpenAssistant SFT).
- ``falcon``: lines ``System: …``, ``User: …``, ``Falcon: …`` joined by newlines, ending
  with ``\\nFalcon:`` (Falcon-Instruct).
- ``idefics-instruct``: ``System: …<end_of_utterance>\\n``, ``User: {q}<end_of_utterance>\\n``,
  ``Assistant: {a}<end_of_utterance>\\n``, ending with ``Assistant:`` (IDEFICS instruct).

Besides these, ``none`` (plain text) and ``model`` (the model's own template) are always
available; ``known_formats()`` lists every name ``--chat-format`` accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from assay.errors import UnknownNameError
from assay.prompts.template import ChatTemplate

# Names that are not templates: plain text, and the model's own template.
BUILTIN = ("none", "model")
# Task-level policies (``chat:`` in a task file); a format name is accepted there as well.
POLICIES = ("auto", "never", "always")

_UNKNOWN_ROLE = "{% else %}{{ raise_exception('unknown role: ' + m['role']) }}{% endif %}"


def _turns(system: str, user: str, assistant: str, end: str, generation: str) -> str:
    """A template where every message is ``prefix + content + end``."""
    return (
        "{% for m in messages %}"
        f"{{% if m['role'] == 'system' %}}{{{{ '{system}' + m['content'] + '{end}' }}}}"
        f"{{% elif m['role'] == 'user' %}}{{{{ '{user}' + m['content'] + '{end}' }}}}"
        f"{{% elif m['role'] == 'assistant' %}}{{{{ '{assistant}' + m['content'] + '{end}' }}}}"
        f"{_UNKNOWN_ROLE}"
        "{% endfor %}"
        f"{{% if add_generation_prompt %}}{{{{ '{generation}' }}}}{{% endif %}}"
    )


@dataclass(frozen=True)
class NamedFormat:
    name: str
    version: int
    template: str  # Jinja2 chat-template source (sandboxed, as a model's own)
    stop: tuple[str, ...]  # strings that end a reply (end-of-turn markers first)
    description: str
    source: str  # where the layout comes from

    @property
    def chat_template(self) -> ChatTemplate:
        return ChatTemplate(self.template)

    @property
    def hash(self) -> str:
        return self.chat_template.hash


ALPACA_HEADER = "Below is an instruction that describes a task. Write a response that appropriately completes the request."

_FORMATS = (
    NamedFormat(
        "openchat-llama2-v1",
        1,
        _turns("", "User: ", "Assistant: ", "<|end_of_turn|>", "Assistant:"),
        ("<|end_of_turn|>",),
        "OpenChat Llama2 V1 multi-turn: System<|end_of_turn|>User: …<|end_of_turn|>Assistant:",
        "Open-Orca/OpenOrcaxOpenChat-Preview2-13B model card",
    ),
    NamedFormat(
        "openchat-llama2-v1-gpt4",
        1,
        _turns("", "GPT4 User: ", "GPT4 Assistant: ", "<|end_of_turn|>", "GPT4 Assistant:"),
        ("<|end_of_turn|>",),
        "OpenChat GPT4 turns: GPT4 User: …<|end_of_turn|>GPT4 Assistant:",
        "Open-Orca/OpenOrcaxOpenChat-Preview2-13B model card",
    ),
    NamedFormat(
        "alpaca",
        1,
        (
            "{% if messages and messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}"
            "{% else %}{{ '" + ALPACA_HEADER + "' }}{% endif %}{{ '\\n\\n' }}"
            "{% for m in messages %}"
            "{% if m['role'] == 'system' %}{% if not loop.first %}"
            "{{ raise_exception('alpaca: a system message must come first') }}{% endif %}"
            "{% elif m['role'] == 'user' %}{{ '### Instruction:\\n' + m['content'] + '\\n\\n' }}"
            "{% elif m['role'] == 'assistant' %}{{ '### Response:\\n' + m['content'] + '\\n\\n' }}"
            + _UNKNOWN_ROLE
            + "{% endfor %}"
            "{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}"
        ),
        ("### Instruction:",),
        "Alpaca: instruction header, ### Instruction: / ### Response: blocks",
        "tatsu-lab/stanford_alpaca, tloen/alpaca-lora templates/alpaca.json",
    ),
    NamedFormat(
        "chatml",
        1,
        _turns("<|im_start|>system\\n", "<|im_start|>user\\n", "<|im_start|>assistant\\n", "<|im_end|>\\n", "<|im_start|>assistant\\n"),
        ("<|im_end|>",),
        "ChatML: <|im_start|>role\\n…<|im_end|>",
        "OpenAI ChatML; e.g. OpenAssistant codellama-13b-oasst-sft-v10 model card",
    ),
    NamedFormat(
        "oasst",
        1,
        _turns("<|system|>", "<|prompter|>", "<|assistant|>", "<|endoftext|>", "<|assistant|>"),
        ("<|endoftext|>", "<|prompter|>"),
        "OpenAssistant: <|prompter|>…<|endoftext|><|assistant|>",
        "OpenAssistant oasst-sft (Pythia) model cards",
    ),
    NamedFormat(
        "falcon",
        1,
        (
            "{% for m in messages %}{% if not loop.first %}{{ '\\n' }}{% endif %}"
            "{% if m['role'] == 'system' %}{{ 'System: ' + m['content'] }}"
            "{% elif m['role'] == 'user' %}{{ 'User: ' + m['content'] }}"
            "{% elif m['role'] == 'assistant' %}{{ 'Falcon: ' + m['content'] }}"
            + _UNKNOWN_ROLE
            + "{% endfor %}"
            "{% if add_generation_prompt %}{{ '\\nFalcon:' }}{% endif %}"
        ),
        ("\nUser:", "<|endoftext|>"),
        "Falcon-Instruct: User: …\\nFalcon:",
        "tiiuae/falcon-7b-instruct and falcon-40b-instruct",
    ),
    NamedFormat(
        "idefics-instruct",
        1,
        _turns("System: ", "User: ", "Assistant: ", "<end_of_utterance>\\n", "Assistant:"),
        ("<end_of_utterance>", "\nUser:"),
        "IDEFICS instruct: User: …<end_of_utterance>\\nAssistant:",
        "HuggingFaceM4/idefics-9b-instruct and idefics-80b-instruct model cards",
    ),
)

FORMATS: dict[str, NamedFormat] = {f.name: f for f in _FORMATS}


def known_formats() -> tuple[str, ...]:
    """Every name ``--chat-format`` accepts."""
    return (*BUILTIN, *FORMATS)


def get_format(name: str) -> NamedFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise UnknownNameError("chat format", name, known_formats()) from None


def check_format_name(name: str) -> str:
    """``name`` if ``--chat-format`` accepts it, else an UnknownNameError with suggestions."""
    if name not in BUILTIN:
        get_format(name)
    return name


def check_policy(value: str) -> str:
    """A task's ``chat:`` value: a policy (auto, never, always) or a format name."""
    if value in POLICIES or value in BUILTIN or value in FORMATS:
        return value
    raise UnknownNameError("chat policy or format", value, (*POLICIES, *known_formats()))
