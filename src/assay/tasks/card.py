"""The model-index task type of a task whose ``card:`` names none, derived from how it is scored.

Hugging Face's model-index wants a task id (https://hf.co/tasks) as ``task.type``, not a
pretty label: a task's family ("Natural language inference") or language is never used.
A task file can always say it itself (``card: {task_type: summarization}``); otherwise:

- classification scored by a label metric (``macro_f1``): ``text-classification``
  (``image-classification`` when the task shows images);
- choices scored by likelihood: ``multiple-choice``;
- entity spans: ``token-classification``; SQuAD token F1: ``question-answering``;
- captions: ``image-to-text``; other answers about images: ``visual-question-answering``;
- image–caption matching: ``zero-shot-image-classification``;
- everything else generated or scored as text (perplexity, code, reasoning): ``text-generation``.
"""

from __future__ import annotations

from collections.abc import Iterable

ENTITY_METRICS = frozenset({"entity_f1", "entity_precision", "entity_recall", "entity_f1_typed"})
CAPTION_METRICS = frozenset({"cider", "bleu4"})
MATCH_METRICS = frozenset({"group_score", "text_score", "image_score"})
TEXT_METRICS = frozenset({"perplexity", "bits_per_byte"})
CHOICE_METRICS = frozenset({"acc", "acc_norm", "mc2"})


def default_task_type(output_type: str | None, metrics: Iterable[str], images: bool = False) -> str:
    """The task id for ``task.type``; ``metrics`` as task files or results name them
    (``entity_f1``, ``entity_f1[PER]``, ``pass@1``). ``output_type`` None (results of runs made
    before the card recorded a task type) is read from the metrics."""
    names = {m.split("[", 1)[0] for m in metrics}
    if output_type is None:
        output_type = ("match" if names & MATCH_METRICS else "rolling" if names & TEXT_METRICS
                       else "multiple_choice" if names & CHOICE_METRICS else "generate")
    if output_type == "match":
        return "zero-shot-image-classification"
    if output_type in ("rolling", "loglikelihood"):
        return "text-generation"
    if "macro_f1" in names:
        return "image-classification" if images else "text-classification"
    if output_type == "multiple_choice":
        return "image-classification" if images else "multiple-choice"
    if names & ENTITY_METRICS:
        return "token-classification"
    if images:
        return "image-to-text" if names & CAPTION_METRICS else "visual-question-answering"
    if "f1" in names:
        return "question-answering"
    return "text-generation"
