"""SQuAD-style answer matching: normalisation, exact match, token F1, and the short answer
span inside a verbose reply.

Pure, deterministic, standard library only. The other free-text readers live beside it:
``labels`` (verbose answer to a label), ``answers`` (numbers and letters) and ``entities``
(entity lists in free text).

* :func:`normalize_answer`, :func:`exact_match`, :func:`token_f1` -- the usual
  SQuAD normalisation (lower case, drop punctuation, drop English articles,
  collapse whitespace) and the two scores built on it.
* :func:`extract_span_answer`, :func:`best_span_scores` -- cut a verbose chat
  answer ("The answer is 1889, when it was built.") down to the span before
  scoring it.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence

__all__ = [
    "normalize_answer",
    "exact_match",
    "token_f1",
    "extract_span_answer",
    "best_span_scores",
]

# ---------------------------------------------------------------------------
# SQuAD normalisation and scores
# ---------------------------------------------------------------------------

_ASCII_PUNCT = frozenset(string.punctuation)
_ARTICLES_RE = re.compile(r"\b(?:a|an|the)\b")


def _is_punct(ch: str) -> bool:
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def normalize_answer(s: str) -> str:
    """SQuAD normalisation of an answer string.

    In order: lower case; delete punctuation (``string.punctuation`` plus every
    character whose unicode category is ``P*``); replace the English articles
    *a*, *an*, *the* (whole words) by a space; collapse runs of whitespace to a
    single space and strip the ends. The function is idempotent.
    """
    s = s.lower()
    s = "".join(ch for ch in s if not _is_punct(ch))
    s = _ARTICLES_RE.sub(" ", s)
    return " ".join(s.split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised gold, else 0.0.

    No golds gives 0.0.
    """
    pred = normalize_answer(prediction)
    return 1.0 if any(pred == normalize_answer(g) for g in golds) else 0.0


def _f1_tokens(pred: list[str], gold: list[str]) -> float:
    if not pred and not gold:
        return 1.0
    if not pred or not gold:
        return 0.0
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred)
    recall = common / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token-overlap F1 (bag of normalised tokens), the maximum over golds.

    Both sides empty after normalisation gives 1.0, exactly one empty gives
    0.0; no golds at all gives 0.0.
    """
    pred = normalize_answer(prediction).split()
    best = 0.0
    for g in golds:
        best = max(best, _f1_tokens(pred, normalize_answer(g).split()))
    return best


# ---------------------------------------------------------------------------
# Span extraction from verbose answers
# ---------------------------------------------------------------------------

_SHORT_SENTENCE_WORDS = 12

_FENCE_RE = re.compile(r"^\s*```[\w+-]*\s*$", re.M)
_FINAL_MARKER_RE = re.compile(
    r"(?:\bfinal\s+answer\b(?:\s+is\b)?\s*[:=\-–—]?|^\s*####)\s*", re.I | re.M
)
_FILLER_RE = re.compile(
    r"^(?:sure|certainly|of\s+course|okay|ok|alright|absolutely)\s*[!.,:]+\s*", re.I
)
_PREFIX_RE = re.compile(
    r"""^(?:
        (?:so|thus|therefore|hence)\s*,?\s+
    )?
    (?:
        (?:the\s+)?(?:(?:final|correct|short|right|best|exact)\s+)?answer
        (?:\s+to\s+(?:the|this|your)\s+question)?
        (?:\s+(?:is|would\s+be|will\s+be|should\s+be)\b\s*[:=\-–—]?|\s*[:=]|\s+[\-–—])
      | (?:a|response|output|result)\s*:
    )\s*""",
    re.I | re.X,
)
_INLINE_ANSWER_RE = re.compile(
    r"\b(?:the\s+)?(?:(?:correct|right|short)\s+)?answer\s+(?:is|would\s+be|should\s+be)\b\s*:?\s*",
    re.I,
)
_QUESTION_LINE_RE = re.compile(r"^\s*(?:q|question)\s*:", re.I)
_SENT_END_RE = re.compile(r"[.!?]+[\"'”’)\]]*\s+(?=\S)")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs etc mt no inc ltd co corp gen col lt sgt capt rev fig approx est".split()
)
_EXPLANATION_RE = re.compile(
    r"""(?:\s*[,;:]\s+|\s+[-–—]\s+|\s+\(\s*)
        (?:because|since|as|when|which|who|whom|whose|where|while|although|though|but|so|
           making|meaning|according|due|given|i\.e\.|e\.g\.|this|that|it|
           and\s+(?:it|this|that|he|she|they|was|is|are|were))\b
      | \s+because\b
      | \s+[-–—]\s+(?=[^\W\d_])
    """,
    re.I | re.X,
)
_TRAILING_PAREN_RE = re.compile(r"\s*\([^()]*\)\s*[.!?]*\s*$")
_QUOTE_CHARS = "\"'“”‘’«»„‚`"
_TRAILING_PUNCT = ".,;:!?…"


def _strip_markdown(text: str) -> str:
    text = _FENCE_RE.sub("", text)
    return text.replace("**", "").replace("__", "").replace("`", "")


def _strip_quotes_and_punct(text: str) -> str:
    prev = None
    while prev != text:
        prev = text
        text = text.strip().rstrip(_TRAILING_PUNCT).strip()
        if len(text) >= 2 and text[0] in _QUOTE_CHARS and text[-1] in _QUOTE_CHARS:
            text = text[1:-1]
    return text


def _first_sentence(line: str) -> str:
    """The first sentence of ``line`` (the whole line when it has one sentence)."""
    for m in _SENT_END_RE.finditer(line):
        before = line[: m.start()]
        token = before.split()[-1] if before.split() else ""
        bare = token.strip(_QUOTE_CHARS + "([")
        if len(bare) == 1 and bare.isalpha():
            continue  # an initial: "J. K. Rowling"
        if "." in bare or bare.lower() in _ABBREVIATIONS:
            continue  # "U.S. Army", "Dr. Smith"
        return line[: m.start() + len(m.group(0).rstrip())]
    return line


def extract_span_answer(text: str, *, question: str = "") -> str:
    """Cut a verbose chat answer down to a short answer span.

    Conservative and deterministic; each step only fires when something is left
    after it:

    1. drop markdown emphasis, backticks and code fences; drop leading lines
       that echo ``question`` (or start with ``Q:`` / ``Question:``);
    2. after a ``Final answer:`` / ``####`` marker keep only what follows the
       last marker;
    3. strip fillers ("Sure!") and answer prefixes ("Answer:", "The answer is",
       "The correct answer is:", "A:"), repeatedly, then keep the first
       non-empty line; an inline "... the answer is X" keeps what follows;
    4. if the first sentence is short (at most 12 words) drop the sentences
       after it;
    5. drop a trailing explanation clause (", when it was built",
       " because ...", ", which ...", " - ...") and a trailing parenthetical;
    6. strip surrounding quotes and trailing punctuation.
    """
    t = _strip_markdown(text).strip()
    if not t:
        return ""

    # 1. echoed question lines
    lines = t.splitlines()
    qnorm = normalize_answer(question) if question else ""
    while len([ln for ln in lines if ln.strip()]) > 1:
        first_idx = next(i for i, ln in enumerate(lines) if ln.strip())
        first = lines[first_idx]
        if _QUESTION_LINE_RE.match(first) or (qnorm and normalize_answer(first) == qnorm):
            lines = lines[first_idx + 1:]
        else:
            break
    t = "\n".join(lines).strip()

    # 2. final-answer marker
    markers = list(_FINAL_MARKER_RE.finditer(t))
    if markers:
        rest = t[markers[-1].end():].strip()
        if rest:
            t = rest

    # 3. fillers / prefixes, first line
    prefixed = False
    for _ in range(5):
        m = _FILLER_RE.match(t) or _PREFIX_RE.match(t)
        if not m or not t[m.end():].strip():
            break
        if m.re is _PREFIX_RE:
            prefixed = True
        t = t[m.end():].strip()
    t = next(ln.strip() for ln in t.splitlines() if ln.strip())
    if not prefixed:
        m = _INLINE_ANSWER_RE.search(t)
        if m and t[m.end():].strip():
            t = t[m.end():].strip()

    # 4. first sentence when short
    first = _first_sentence(t)
    if first != t and len(first.split()) <= _SHORT_SENTENCE_WORDS:
        t = first

    # 5. explanation clause, trailing parenthetical
    m = _EXPLANATION_RE.search(t)
    if m and _strip_quotes_and_punct(t[: m.start()]):
        t = t[: m.start()]
    m = _TRAILING_PAREN_RE.search(t)
    if m and _strip_quotes_and_punct(t[: m.start()]):
        t = t[: m.start()]

    # 6. quotes and punctuation
    cleaned = _strip_quotes_and_punct(t)
    return cleaned if cleaned else t.strip()


def best_span_scores(text: str, golds: Sequence[str]) -> tuple[float, float]:
    """``(exact_match, token_f1)`` of :func:`extract_span_answer` of ``text``."""
    span = extract_span_answer(text)
    return exact_match(span, golds), token_f1(span, golds)
