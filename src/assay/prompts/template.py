"""A chat template: Jinja2 source with the special tokens it is rendered with.

Both a model's own template and the named formats of ``formats.py`` are one of these, and
``chat.py`` renders them; so this small module sits below both.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# End-of-turn markers that, when present in a template, also end a generation.
END_MARKERS = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>", "<|end_of_turn|>", "<end_of_utterance>", "</s>")


@dataclass(frozen=True)
class ChatTemplate:
    source: str
    bos_token: str = ""
    eos_token: str = ""

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:12]

    def stop_strings(self) -> tuple[str, ...]:
        marks = [m for m in END_MARKERS if m in self.source]
        if self.eos_token and self.eos_token not in marks:
            marks.append(self.eos_token)
        return tuple(marks)
