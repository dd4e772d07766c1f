"""Text scoring: SQuAD-style answer matching, label mapping and entity parsing.

Everything here is pure, deterministic and standard-library only.

* :func:`normalize_answer`, :func:`exact_match`, :func:`token_f1` -- the usual
  SQuAD normalisation (lower case, drop punctuation, drop English articles,
  collapse whitespace) and the two scores built on it.
* :func:`extract_span_answer`, :func:`best_span_scores` -- cut a verbose chat
  answer ("The answer is 1889, when it was built.") down to the span before
  scoring it.
* :func:`map_label` -- map a verbose or hedged classification answer onto one
  of a fixed set of labels (or ``None``). :data:`LABEL_PRESETS` holds built-in
  label-word sets (words in en, fr, de, es, pt, it, ar, hi), named for task
  YAMLs (``extract: {name: label, args: {preset: sentiment3}}``):

  - ``sentiment2``: negative, positive (SST-2, IMDB);
  - ``sentiment3`` (also ``tweeteval_sentiment``, ``xlmt``): negative, neutral,
    positive;
  - ``agnews``: World, Sports, Business, Sci/Tech (AG News' classes.txt);
  - ``emotion4`` (also ``tweeteval_emotion``): anger, joy, optimism, sadness;
  - ``hate`` / ``irony`` / ``offensive`` (also ``tweeteval_<name>``): the
    TweetEval mapping.txt labels (hate/not-hate, irony/non_irony,
    offensive/not-offensive); "yes" and "no" answers count.
* :func:`extract_number`, :func:`normalize_number` -- the answer number of a
  (chain-of-thought) answer: GSM8K's ``####``, ``\\boxed{}``, "the answer is",
  last or first number; currency, separators, signs and decimals normalised.
* :func:`extract_letter` -- the chosen letter of a lettered multiple-choice
  answer (BBH "(B)", AGIEval "Answer: B", "答案是 B", "B. Paris").
* :func:`parse_entities`, :func:`entity_counts`, :func:`prf` -- read a model's
  free-form entity list into ``(surface, TYPE)`` pairs and count matches.
"""

from __future__ import annotations

import ast
import json
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation

__all__ = [
    "normalize_answer",
    "exact_match",
    "token_f1",
    "extract_span_answer",
    "best_span_scores",
    "map_label",
    "LABEL_PRESETS",
    "normalize_number",
    "extract_number",
    "choice_letters",
    "extract_letter",
    "parse_entities",
    "entity_counts",
    "prf",
    "DEFAULT_ENTITY_TYPES",
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


# ---------------------------------------------------------------------------
# Label mapping
# ---------------------------------------------------------------------------

_WORD_RE = re.compile(r"\w+(?:['’]\w+)*")

_NEGATIONS = frozenset(
    """not no never nor neither cannot without
       nicht kein keine keinen keiner keinem keines nie niemals
       pas non jamais ni
       nunca tampoco nem não
       mai
       ليس ليست لا غير لم
       नहीं न""".split()
)
# words that may sit between a negation and the label word ("not a positive",
# "not at all positive", "no es positivo")
_NEG_FILLERS = frozenset(
    """a an the very really particularly especially exactly entirely completely
       totally overly too so at all that quite truly
       es está esta era fue sea un una muy
       une très vraiment tout du
       ein eine einen wirklich sehr
       è é e est ist sono são foi era""".split()
)
_NEG_MAX_FILLERS = 2
_HEDGES = frozenset(
    """mixed both neutral unclear either neither ambiguous ambivalent uncertain
       undetermined indeterminate
       mixte mitigé neutre ambigu
       gemischt neutral beides beide unklar
       mixto mixta neutro ambos ambas
       misto mista ambiguo ambíguo entrambi
       مختلط
       मिश्रित""".split()
)


def _word_tokens(text: str) -> tuple[list[tuple[str, int, int]], str]:
    """Words of the NFC-normalised lower-cased text as ``(word, start, end)``, and that text."""
    text = unicodedata.normalize("NFC", text).lower()
    return [(m.group(0), m.start(), m.end()) for m in _WORD_RE.finditer(text)], text


def _is_negation(tok: str) -> bool:
    return tok in _NEGATIONS or tok.endswith("n't") or tok.endswith("n’t")


def _negated(tokens: list[tuple[str, int, int]], text: str, i: int) -> bool:
    """Is token ``i`` directly preceded by a negation (through at most two fillers)?"""
    j = i - 1
    fillers = 0
    while j >= 0:
        # punctuation between two words breaks the chain ("No, it is positive")
        if text[tokens[j][2]:tokens[j + 1][1]].strip():
            return False
        tok = tokens[j][0]
        if _is_negation(tok):
            return True
        if tok in _NEG_FILLERS and fillers < _NEG_MAX_FILLERS:
            fillers += 1
            j -= 1
            continue
        return False
    return False


def map_label(text: str, labels: Mapping[str, Sequence[str]]) -> str | None:
    """Map a verbose, possibly hedged classification answer to one label.

    ``labels`` maps each label to its synonyms (label words, in any language);
    the label itself is always a synonym.

    Rule:

    * Text and synonyms are NFC-normalised and lower-cased and split into
      unicode words; synonyms (possibly several words) match whole words only,
      accents matter ("negatif" is not "négatif"). At each position the longest
      matching synonym wins; equal-length matches of different labels at the
      same position all vote there (a tie).
    * A match directly preceded by a negation word (not, no, never, nor,
      neither, any ``...n't``, nicht, kein*, pas, non, ni, nunca, ...) -- with
      at most two filler words in between ("not a", "not at all", "no es") and
      no punctuation -- is not a vote.
    * No votes -> ``None``. Votes for one label only -> that label.
    * Votes for several labels -> ``None`` if a hedge word occurs anywhere
      ("mixed", "both", "neutral", "unclear", "either", "neither", "ambiguous",
      and a few French/German/Spanish equivalents; a hedge word that is itself a
      synonym of some label does not count as a hedge); otherwise the label
      whose first vote comes first, or ``None`` if two labels tie at that
      first position.
    """
    tokens, low = _word_tokens(text)
    words = [t[0] for t in tokens]

    # first word -> [(synonym tokens, label)]
    index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    synonym_words: set[str] = set()
    for label, syns in labels.items():
        for syn in [label, *syns]:
            syn_toks = tuple(m.group(0) for m in _WORD_RE.finditer(unicodedata.normalize("NFC", syn).lower()))
            if not syn_toks:
                continue
            synonym_words.update(syn_toks)
            entry = (syn_toks, label)
            bucket = index.setdefault(syn_toks[0], [])
            if entry not in bucket:
                bucket.append(entry)

    votes: list[tuple[int, str]] = []
    i = 0
    while i < len(words):
        best_len = 0
        best_labels: list[str] = []
        for syn_toks, label in index.get(words[i], ()):
            n = len(syn_toks)
            if tuple(words[i:i + n]) != syn_toks:
                continue
            if n > best_len:
                best_len, best_labels = n, [label]
            elif n == best_len and label not in best_labels:
                best_labels.append(label)
        if not best_len:
            i += 1
            continue
        if not _negated(tokens, low, i):
            votes.extend((i, label) for label in best_labels)
        i += best_len

    voted = {label for _, label in votes}
    if not voted:
        return None
    if len(voted) == 1:
        return next(iter(voted))
    if any(w in _HEDGES and w not in synonym_words for w in words):
        return None
    first_pos = min(pos for pos, _ in votes)
    first_labels = {label for pos, label in votes if pos == first_pos}
    return next(iter(first_labels)) if len(first_labels) == 1 else None


# ---------------------------------------------------------------------------
# Label presets (label words in several languages)
# ---------------------------------------------------------------------------

_POSITIVE = """positive positively pos
    positif positifs positivement
    positiv positive positiven positiver
    positivo positiva positivos positivas
    إيجابي ايجابي إيجابية ايجابية إيجابيه ايجابيه
    सकारात्मक""".split()
_NEGATIVE = """negative negatively neg
    négatif négative négatifs négatives
    negativ negativen negativer
    negativo negativa negativos negativas
    سلبي سلبية سلبيه
    नकारात्मक""".split()
_NEUTRAL = """neutral neutrally
    neutre neutres
    neutrale neutralen
    neutro neutra neutros neutras neutrali
    محايد محايدة محايده حيادي
    तटस्थ""".split()

LABEL_PRESETS: dict[str, dict[str, list[str]]] = {
    # SST-2, IMDB, binary sentiment: en fr de es pt it ar hi
    "sentiment2": {"negative": _NEGATIVE, "positive": _POSITIVE},
    # TweetEval sentiment, XLM-T (arabic english french german hindi italian portuguese spanish)
    "sentiment3": {"negative": _NEGATIVE, "neutral": _NEUTRAL, "positive": _POSITIVE},
    # AG News (classes.txt): World, Sports, Business, Sci/Tech
    "agnews": {
        "World": ["world", "world news", "international", "politics", "global", "monde", "welt", "mundo"],
        "Sports": ["sport", "sports", "athletics", "deportes", "esportes"],
        "Business": ["business", "economy", "economics", "finance", "financial", "économie", "wirtschaft", "negocios", "economia"],
        "Sci/Tech": ["sci/tech", "sci-tech", "scitech", "sci tech", "science", "technology", "tech", "science and technology",
                     "science/technology", "sciences", "technologie", "wissenschaft", "ciencia", "tecnología", "ciência", "tecnologia"],
    },
    # TweetEval emotion (mapping.txt): anger, joy, optimism, sadness
    "emotion4": {
        "anger": ["angry", "anger", "rage", "furious", "annoyed", "annoyance", "irritated", "mad"],
        "joy": ["joy", "joyful", "happy", "happiness", "glad", "delighted"],
        "optimism": ["optimism", "optimistic", "hope", "hopeful", "hopefulness"],
        "sadness": ["sad", "sadness", "unhappy", "sorrow", "grief", "depressed", "upset"],
    },
    # TweetEval hate / irony / offensive (mapping.txt names); yes/no answers count
    "hate": {
        "hate": ["hate", "hateful", "hate speech", "hatred", "yes"],
        "not-hate": ["not hate", "not hateful", "not hate speech", "non-hate", "non hateful", "no hate", "no hate speech", "no"],
    },
    "irony": {
        "irony": ["irony", "ironic", "ironical", "sarcasm", "sarcastic", "yes"],
        "non_irony": ["non irony", "non-ironic", "not ironic", "not irony", "no irony", "not sarcastic", "non_irony", "no"],
    },
    "offensive": {
        "offensive": ["offensive", "offending", "insulting", "abusive", "yes"],
        "not-offensive": ["not offensive", "non-offensive", "non offensive", "inoffensive", "not insulting", "no"],
    },
}
LABEL_PRESETS["tweeteval_sentiment"] = LABEL_PRESETS["sentiment3"]
LABEL_PRESETS["xlmt"] = LABEL_PRESETS["sentiment3"]
LABEL_PRESETS["tweeteval_emotion"] = LABEL_PRESETS["emotion4"]
LABEL_PRESETS["tweeteval_hate"] = LABEL_PRESETS["hate"]
LABEL_PRESETS["tweeteval_irony"] = LABEL_PRESETS["irony"]
LABEL_PRESETS["tweeteval_offensive"] = LABEL_PRESETS["offensive"]


# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------

# a number: optional sign (not right after a word character, so "16-3" is 16 and 3), optional
# currency, digits with comma thousands separators or plain digits, optional decimals
_NUMBER_RE = re.compile(
    r"""(?<![\w.])
        (?P<sign>[-−–]\s?)?
        (?:[$€£¥₹]\s?)?
        (?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)
        (?!\d|,\d{3})""",
    re.X,
)
_GSM8K_MARK_RE = re.compile(r"####")
_BOXED_RE = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_ANSWER_IS_RE = re.compile(
    r"\b(?:final\s+answer|answer)\b\s*(?:is|would\s+be|should\s+be|will\s+be|=|:)?\s*:?\s*",
    re.I,
)
NUMBER_MODES = ("gsm8k", "last", "first")


def normalize_number(raw: str) -> str | None:
    """A number as written ("$1,234.50", "-3.50", "−2", "18.") → canonical text ("1234.5", "-3.5", "-2", "18").

    Currency signs, thousands separators, spaces, a trailing "%" and a trailing "." go; decimals
    lose trailing zeros; an integral value has no decimal point; "-0" is "0". Not a number → None.
    """
    s = unicodedata.normalize("NFKC", str(raw)).strip().replace("−", "-").replace("–", "-")
    s = re.sub(r"[\s$€£¥₹,%]", "", s).rstrip(".")
    try:
        d = Decimal(s)
    except InvalidOperation:
        return None
    if not d.is_finite():
        return None
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(), "f")


def _numbers(text: str) -> list[str]:
    out = []
    for m in _NUMBER_RE.finditer(text):
        n = normalize_number(("-" if m.group("sign") else "") + m.group("num"))
        if n is not None:
            out.append(n)
    return out


def extract_number(text: str, mode: str = "last") -> str | None:
    """The answer number of a free-form (often chain-of-thought) answer, normalised, or None.

    ``last`` and ``first`` take the last or first number in the text. ``gsm8k`` looks, in order,
    for the number after the final ``####``, the last ``\\boxed{...}``, the number after the last
    "answer is" / "Answer:" statement, and falls back to the last number. Numbers may carry a
    currency sign, comma thousands separators, a sign and decimals (see :func:`normalize_number`);
    a minus sign right after a word ("16-3") is an operator, not a sign.
    """
    if mode not in NUMBER_MODES:
        raise ValueError(f"number mode must be one of {', '.join(NUMBER_MODES)}, not {mode!r}")
    t = unicodedata.normalize("NFKC", text or "").replace("**", "").replace("`", "")
    if mode == "gsm8k":
        marks = list(_GSM8K_MARK_RE.finditer(t))
        if marks:
            nums = _numbers(t[marks[-1].end():])
            if nums:
                return nums[0]
        boxed = [n for m in _BOXED_RE.finditer(t) for n in _numbers(m.group(1))[:1]]
        if boxed:
            return boxed[-1]
        for m in reversed(list(_ANSWER_IS_RE.finditer(t))):
            nums = _numbers(t[m.end():m.end() + 40].split("\n", 1)[0])
            if nums:
                return nums[0]
    nums = _numbers(t)
    if not nums:
        return None
    return nums[0] if mode == "first" else nums[-1]


# ---------------------------------------------------------------------------
# Letters (lettered multiple-choice answers)
# ---------------------------------------------------------------------------

_L = r"(?P<L>[A-Za-z])"
# what may follow a letter that is an answer: not another letter or digit
_AFTER = (
    r"(?![A-Za-z0-9'’])"
    r"(?!\s*[)\]]?\s*(?:,|/|\bor\b|\band\b|\bthrough\b|\bto\b)\s*[(\[]?[A-Za-z](?![A-Za-z]))"
)
# an explicit statement: "the answer is (C)", "Answer: B", "答案是 A", "故选 C"
_LETTER_ANSWER_RE = re.compile(
    r"""(?:
          \banswer\b(?:\s+(?:to\s+(?:the|this)\s+question|choice|option))?
             \s*(?:(?:is|would\s+be|should\s+be|will\s+be|must\s+be)\b(?:\s+(?:therefore|thus|clearly))?\s*[:=\-]?|[:=\-])
        | \b(?:correct|right|best)\s+(?:option|choice|letter)\s*(?:is\b|[:=])
        | 答案\s*(?:是|为|應為|应为|应该是|選|选)?\s*[:：]?
        | 故选|所以选|因此选|应选|選擇|选择
        )
        \s*(?:option|choice|letter)?\s*[:\-]?\s*
        (?P<open>[(\[]?)\s*""" + _L + r"""\s*(?P<close>[)\]]?)""" + _AFTER,
    re.I | re.X,
)
# a weaker statement: "I choose B", "option C is correct", "(B) is the correct answer"
_LETTER_CHOICE_RE = re.compile(
    r"""(?:
          \b(?:I\s+(?:would\s+|will\s+|'d\s+)?(?:choose|pick|select|go\s+with)|choose|select)\s+(?:option\s+|choice\s+)?
            (?P<open>[(\[]?)""" + _L + r"""(?P<close>[)\]]?)""" + _AFTER + r"""
        | \b(?:option|choice)\s+(?P<open2>[(\[]?)(?P<L2>[A-Za-z])(?P<close2>[)\]]?)""" + _AFTER + r"""
             (?=\s+(?:is|would\s+be|seems)\s+(?:the\s+)?(?:correct|right|best|answer))
        | (?P<open3>[(\[])(?P<L3>[A-Za-z])(?P<close3>[)\]])\s+is\s+(?:the\s+)?(?:correct|right|best)\b
        )""",
    re.I | re.X,
)
_LETTER_ALONE_RE = re.compile(r"^[\W_]*(?P<L>[A-Za-z])[\W_]*$")
_LETTER_LEAD_RE = re.compile(r"^\s*(?:option\s+)?(?:\((?P<a>[A-Za-z])\)|\[(?P<b>[A-Za-z])\]|(?P<c>[A-Za-z])[.):])(?=\s|$)", re.I)
_LETTER_PAREN_RE = re.compile(r"[(\[]\s*(?P<L>[A-Z])\s*[)\]]")
_LETTER_BARE_RE = re.compile(r"(?<![A-Za-z0-9'’\-])(?P<L>[A-Z])(?![A-Za-z0-9'’\-])(?!\s+[a-z])")


def choice_letters(letters: str | None = None, n: int | None = None) -> str:
    """The letters of the choices: ``letters`` ("ABCDE"), or the first ``n`` letters, or "ABCD"."""
    if n is not None:
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 26:
            raise ValueError(f"n must be a number of options from 1 to 26, not {n!r}")
        return string.ascii_uppercase[:n]
    if letters is None:
        return "ABCD"
    up = str(letters).upper()
    if not up or any(c not in string.ascii_uppercase for c in up) or len(set(up)) != len(up):
        raise ValueError(f"letters must be distinct letters A-Z such as 'ABCDE', not {letters!r}")
    return up


def _lower_ok(m: re.Match, text: str, letter: str, bracketed: bool) -> bool:
    """A lower-case letter is an answer only when it cannot be a word: bracketed or line-final."""
    if letter.isupper() or bracketed:
        return True
    rest = text[m.end():].split("\n", 1)[0]
    return not rest.strip(" \t.!)]*") and letter != "i"


def _statement_letter(regex: re.Pattern, text: str, allowed: str) -> str | None:
    found = None
    for m in regex.finditer(text):
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        letter = groups.get("L") or groups.get("L2") or groups.get("L3")
        if letter is None:
            continue
        bracketed = any(groups.get(k) for k in ("open", "open2", "open3", "close", "close2", "close3"))
        if letter.upper() in allowed and _lower_ok(m, text, letter, bracketed):
            found = letter.upper()
    return found


def extract_letter(text: str, letters: str = "ABCD") -> str | None:
    """The chosen letter of a lettered multiple-choice answer (upper case), or None.

    In order of trust:

    1. the last explicit statement: "the answer is (C).", "So the answer is B", "Answer: b",
       "The correct option is D", "答案是 A", "故选 C" (the last one wins, as in chain of thought);
    2. the last weaker statement: "I choose B", "option C is correct", "(B) is the right one";
    3. the whole answer is one letter ("B", "(B)", "b.", "**B**"), or it starts with one
       ("B. Paris", "(B) Paris", "B) Paris"), unless several lines start with different letters
       (the model listed the options);
    4. one distinct letter in brackets ("... so (B)"), then one distinct bare capital letter
       that is not prose (a capital before a lower-case word, "A dog", "I think", is prose).

    Only ``letters`` count. A lower-case letter counts only where it cannot be a word: bracketed,
    alone, or at the end of its line in a statement. Full-width forms ("（Ｂ）") are read.
    """
    allowed = letters.upper()
    t = unicodedata.normalize("NFKC", text or "").replace("**", "").replace("__", "").replace("`", "")
    if not t.strip():
        return None
    for regex in (_LETTER_ANSWER_RE, _LETTER_CHOICE_RE):
        found = _statement_letter(regex, t, allowed)
        if found:
            return found
    stripped = t.strip()
    m = _LETTER_ALONE_RE.match(stripped)
    if m and m.group("L").upper() in allowed and m.group("L") != "i":
        return m.group("L").upper()
    leads = []
    for line in stripped.splitlines():
        lm = _LETTER_LEAD_RE.match(line)
        if lm:
            leads.append((lm.group("a") or lm.group("b") or lm.group("c")))
    first = next(ln for ln in stripped.splitlines() if ln.strip())
    lm = _LETTER_LEAD_RE.match(first)
    if lm and len({x.upper() for x in leads}) == 1:
        letter = lm.group("a") or lm.group("b") or lm.group("c")
        if letter.upper() in allowed and (letter.isupper() or lm.group("a") or lm.group("b") or letter != "i"):
            return letter.upper()
    for regex in (_LETTER_PAREN_RE, _LETTER_BARE_RE):
        cands = {m.group("L") for m in regex.finditer(t) if m.group("L") in allowed}
        if len(cands) == 1:
            return cands.pop()
        if cands:
            return None
    return None


# ---------------------------------------------------------------------------
# Entities
# ---------------------------------------------------------------------------

DEFAULT_ENTITY_TYPES: dict[str, list[str]] = {
    "PER": ["per", "person", "people", "persons", "name", "names"],
    "LOC": ["loc", "location", "locations", "place", "places", "city", "country", "gpe"],
    "ORG": ["org", "organization", "organisation", "organizations", "company", "companies", "institution"],
    "MISC": ["misc", "miscellaneous", "other"],
}

_TEXT_KEYS = ("text", "entity", "name", "word", "span", "mention", "surface", "value")
_TYPE_KEYS = ("type", "label", "entity_type", "entitytype", "category", "tag", "class", "entity_group", "ner")
_GENERIC_HEADERS = frozenset(
    """entities entity named answer output result results list response extracted found ner here
       the are is these following""".split()
)
_BULLET_RE = re.compile(r"^\s*(?:[-*•·‣◦▪–—+>]|\d+\s*[.):]|\(\d+\)|[a-zA-Z][.)](?=\s))\s*")
_PAREN_RE = re.compile(r"[(\[]\s*([^()\[\]]{1,60}?)\s*[)\]]")
_KV_RE = re.compile(
    r"^(?:name|entity|text|word|span|mention)\s*[:=]\s*(?P<name>.+?)\s*[,;|]\s*"
    r"(?:type|label|category|tag|class)\s*[:=]\s*(?P<type>.+?)\s*$",
    re.I,
)
_SEPARATORS = (" -> ", " => ", " — ", " – ", " - ", ":", " = ")
_LIST_SPLIT_RE = re.compile(r"\s*[,;]\s*|\s+and\s+", re.I)
_CONNECTORS = frozenset(
    "of de la le les van von der den du del della da di dos das y the and for on upon al el bin ibn".split()
)
_SURFACE_STRIP = _QUOTE_CHARS + " \t.,;:!?*_#"
_GENERIC_TYPE_WORDS = frozenset("entity entities name names named type tag label class category of".split())
_NONE_ANSWERS = frozenset(["none", "n/a", "na", "nil", "nothing", "no entities", "no entity"])
# prose: "The people mentioned are John Smith and Mary", "..., and the location is Paris."
_PROSE_GROUP_RE = re.compile(
    r"""\b(?P<type>[^\W\d_][\w-]*)
        (?:\s+(?:mentioned|named|found|referenced|listed|identified|involved|here|
               in\s+(?:the|this)\s+(?:text|sentence|passage)))*
        \s+(?:are|is|include|includes|were|was)\b\s*:?\s+
        (?P<names>.+?)
        (?=[.;!?](?:\s|$)|,?\s+and\s+the\s+[^\W\d_]+\s+(?:(?:mentioned|named)\s+)?(?:are|is|include)\b|$)""",
    re.X,
)
# prose: "John Smith is a person and Paris is a location." (the name is read backwards from "is a")
_PROSE_IS_A_RE = re.compile(
    r"\s+(?:is|was)\s+(?:an?|the)\s+(?:(?:name\s+of\s+an?|kind\s+of|type\s+of)\s+)?(?P<type>[^\W\d_]+)\b"
)
_PROSE_NAME_WORDS = 8


class _TypeIndex:
    def __init__(self, types: Mapping[str, Sequence[str]]):
        self.words: dict[str, str] = {}
        for canon, words in types.items():
            for w in [canon, *words]:
                key = " ".join(unicodedata.normalize("NFC", w).lower().split())
                self.words.setdefault(key, canon)

    def _lookup(self, w: str) -> str | None:
        for cand in (w, w.replace("-", " ").replace("_", " ")):
            if cand in self.words:
                return self.words[cand]
            for suffix, repl in (("ies", "y"), ("es", ""), ("s", "")):
                if cand.endswith(suffix) and cand[: -len(suffix)] + repl in self.words:
                    return self.words[cand[: -len(suffix)] + repl]
        return None

    def resolve(self, text: str) -> str | None:
        w = unicodedata.normalize("NFC", text).lower()
        w = w.replace("**", "").replace("__", "").replace("`", "")
        w = " ".join(w.split()).strip(_QUOTE_CHARS + " .,;:!?()[]{}<>#*")
        w = re.sub(r"^(?:entity\s+)?(?:type|label|category|tag)\s*[:=]\s*", "", w)
        w = re.sub(r"^[biesl]-(?=\w)", "", w)  # BIO(ES) tags
        if not w:
            return None
        found = self._lookup(w)
        if found is not None:
            return found
        # "person name", "organization entity", "entity type person": one type
        # word among generic words (never "New York City" or "Bank of Other")
        parts = w.split()
        if len(parts) > 1:
            rest = [p for p in parts if p not in _GENERIC_TYPE_WORDS]
            if len(rest) == 1:
                return self._lookup(rest[0])
            if not rest:
                return self._lookup(parts[0])
        return None


def _clean_surface(s: str) -> str:
    s = s.replace("**", "").replace("__", "").replace("`", "")
    prev = None
    while prev != s:
        prev = s
        s = " ".join(s.split()).strip(_SURFACE_STRIP)
        if len(s) >= 2 and s[0] in "([{" and s[-1] in ")]}":
            s = s[1:-1]
        m = _TRAILING_PAREN_RE.search(s)
        if m and m.start() > 0:
            s = s[: m.start()]
    return s


def _capitalised_run(piece: str) -> str:
    """The trailing run of name-like words of a prose fragment.

    "The entities are Alice" -> "Alice"; "include the Bank of America" ->
    "Bank of America". Fragments without lower-case prose words are kept whole.
    """
    toks = piece.split()

    def lower_word(tok: str) -> bool:
        core = tok.strip(_QUOTE_CHARS + ".,;:!?")
        return bool(core) and not any(c.isupper() or c.isdigit() for c in core)

    if len(toks) <= 1 or not any(lower_word(t) and t.lower() not in _CONNECTORS for t in toks):
        return piece
    run: list[str] = []
    for tok in reversed(toks):
        if lower_word(tok) and tok.lower() not in _CONNECTORS:
            break
        run.append(tok)
    run.reverse()
    while run and lower_word(run[0]):
        run.pop(0)
    return " ".join(run) if run else toks[-1]


def _split_names(s: str) -> list[str]:
    return [p for p in (_clean_surface(x) for x in _LIST_SPLIT_RE.split(s)) if p]


def _is_none_answer(s: str) -> bool:
    return " ".join(s.lower().split()).strip(" .!") in _NONE_ANSWERS


class _LineParser:
    def __init__(self, tidx: _TypeIndex):
        self.tidx = tidx
        self.section: str | None = None

    def parse(self, raw: str, *, force_item: bool = False) -> list[tuple[str, str]]:
        line = raw.replace("**", "").replace("__", "").replace("`", "").strip()
        if not line or set(line) <= set("-=|:_*# \t"):
            return []
        heading = line.startswith("#")
        line = line.lstrip("#").strip()
        m = _BULLET_RE.match(line)
        is_item = force_item or bool(m)
        if m:
            line = line[m.end():].strip()
        if not line:
            return []

        # markdown table rows / tab-separated cells
        if "|" in line or "\t" in line:
            cells = [c.strip() for c in re.split(r"\s*\|\s*|\t", line.strip("|").strip())]
            cells = [c for c in cells if c]
            if len(cells) >= 2:
                typed = [(c, self.tidx.resolve(c)) for c in cells]
                type_cells = [t for c, t in typed if t is not None]
                names = [c for c, t in typed if t is None and not c.isdigit()]
                if type_cells and names:
                    return [(_clean_surface(names[0]), type_cells[-1])]
                if not type_cells and names and not all(
                    w in _GENERIC_HEADERS or w in ("type", "label", "category", "tag")
                    for c in names for w in c.lower().split()
                ):
                    return [(_clean_surface(names[0]), "")]
                return []

        # "Name: Alice, Type: PER"
        m = _KV_RE.match(line)
        if m:
            return [(_clean_surface(m.group("name")), self.tidx.resolve(m.group("type")) or "")]

        # several "Type: names" groups on one line: "PER: Alice; LOC: Paris"
        if ";" in line and line.count(":") > 1:
            out: list[tuple[str, str]] = []
            for seg in line.split(";"):
                out.extend(self.parse(seg, force_item=is_item))
            return out

        # section header: "People:" / "### Locations" / "PER"
        if line.endswith(":") and ":" not in line[:-1]:
            head = line[:-1]
            self.section = self.tidx.resolve(head)
            return []
        if not is_item and (heading or len(line.split()) <= 3):
            t = self.tidx.resolve(line)
            if t is not None:
                self.section = t
                return []

        # separator with a recognised type on one side
        first_split: tuple[str, str] | None = None
        for sep in _SEPARATORS:
            if sep not in line:
                continue
            if sep == ":":
                left, _, right = line.partition(sep)
            else:
                left, _, right = line.rpartition(sep)
            left, right = left.strip(), right.strip()
            if not left or not right:
                continue
            if first_split is None:
                first_split = (left, right)
            t_right, t_left = self.tidx.resolve(right), self.tidx.resolve(left)
            if t_right is not None:
                name = _clean_surface(left)
                return [(name, t_right)] if name else []
            if t_left is not None:
                return [(n, t_left) for n in _split_names(right)]
            # prose ending in a type word: "The text mentions two people: Alice and Bob"
            lw = left.split()
            if sep == ":" and len(lw) >= 3 and sum(w.islower() for w in lw) >= 2:
                t_tail = self.tidx.resolve(lw[-1])
                if t_tail is not None:
                    return [(n, t_tail) for n in _split_names(right)]

        # parentheticals holding a type: "Alice (PER)", "... Alice (person) and Paris (location)."
        parens = list(_PAREN_RE.finditer(line))
        recognised = [(m, self.tidx.resolve(m.group(1))) for m in parens]
        recognised = [(m, t) for m, t in recognised if t is not None]
        if is_item and len(parens) == 1 and not line[parens[0].end():].strip(" .,;:!?"):
            name = _clean_surface(line[: parens[0].start()])
            t = self.tidx.resolve(parens[0].group(1))
            return [(name, t if t is not None else (self.section or ""))] if name else []
        if recognised:
            out = []
            prev_end = 0
            for m, t in recognised:
                segment = line[prev_end: m.start()]
                prev_end = m.end()
                pieces = re.split(r"\s*[,;:]\s*|\s+and\s+|\s+&\s+", segment)
                piece = pieces[-1].strip() if pieces else ""
                name = _clean_surface(_capitalised_run(piece))
                if name:
                    out.append((name, t))
            return out

        # separator, neither side a type
        if first_split is not None:
            left, right = first_split
            left_words = left.lower().split()
            if left_words and all(w.strip(".,") in _GENERIC_HEADERS for w in left_words):
                return [(n, self.section or "") for n in _split_names(right)]
            if is_item or (len(left.split()) <= 6 and len(right.split()) <= 3):
                name = _clean_surface(left)
                return [(name, "")] if name else []
            return []

        prose = self._prose(line)
        if prose:
            return prose

        # a bare name
        if _is_none_answer(line):
            return []
        if is_item:
            name = _clean_surface(line)
            return [(name, self.section or "")] if name else []
        words = line.split()
        if (
            len(words) <= 6
            and line[-1] not in ".!?:"
            and not any(w.lower().strip(".,") in ("entity", "entities") for w in words)
        ):
            name = _clean_surface(line)
            return [(name, self.section or "")] if name else []
        return []


    def _prose(self, line: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for m in _PROSE_GROUP_RE.finditer(line):
            t = self.tidx.resolve(m.group("type"))
            if t is None:
                continue
            for name in _split_names(m.group("names")):
                toks = name.split()
                while len(toks) > 1 and toks[0].islower():  # "the United Nations"
                    toks.pop(0)
                if toks and not (len(toks) == 1 and toks[0].islower()):
                    out.append((" ".join(toks), t))
        if out:
            return out
        for m in _PROSE_IS_A_RE.finditer(line):
            t = self.tidx.resolve(m.group("type"))
            if t is None:
                continue
            run: list[str] = []
            for tok in reversed(line[: m.start()].split()[-_PROSE_NAME_WORDS:]):
                if not (tok[:1].isupper() or (run and tok in _CONNECTORS)) or (run and tok[-1] in ",;:.!?"):
                    break
                run.insert(0, tok)
            while run and not run[0][:1].isupper():
                run.pop(0)
            name = _clean_surface(" ".join(run))
            if name and name.lower() not in ("it", "this", "that", "there", "the", "he", "she", "they"):
                out.append((name, t))
        return out


def _json_candidate(text: str) -> object | None:
    starts = [i for i in (text.find("["), text.find("{")) if i >= 0]
    if not starts:
        return None
    start = min(starts)
    end = max(text.rfind("]"), text.rfind("}"))
    if end <= start:
        return None
    blob = text[start: end + 1]
    for loader in (json.loads, ast.literal_eval):
        try:
            return loader(blob)
        except Exception:  # noqa: BLE001 - any parse failure means "not JSON"
            continue
    return None


def _walk_json(obj: object, tidx: _TypeIndex, out: list[tuple[str, str]], inherited: str = "") -> None:
    if isinstance(obj, dict):
        lower = {str(k).lower(): v for k, v in obj.items()}
        text_val = next((lower[k] for k in _TEXT_KEYS if isinstance(lower.get(k), str)), None)
        if text_val is not None:
            type_val = next((lower[k] for k in _TYPE_KEYS if isinstance(lower.get(k), str)), None)
            t = tidx.resolve(type_val) if type_val is not None else None
            out.append((_clean_surface(text_val), t if t is not None else ("" if type_val is not None else inherited)))
            return
        for k, v in obj.items():
            kt = tidx.resolve(str(k))
            if isinstance(v, str):
                vt = tidx.resolve(v)
                if kt is not None and vt is None:
                    out.append((_clean_surface(v), kt))  # {"PER": "Alice"}
                elif vt is not None:
                    out.append((_clean_surface(str(k)), vt))  # {"Alice": "PER"}
            elif isinstance(v, (list, tuple, dict)):
                _walk_json(v, tidx, out, kt if kt is not None else inherited)
    elif isinstance(obj, (list, tuple)):
        if len(obj) == 2 and all(isinstance(x, str) for x in obj):
            t0, t1 = tidx.resolve(obj[0]), tidx.resolve(obj[1])
            if t1 is not None:
                out.append((_clean_surface(obj[0]), t1))
                return
            if t0 is not None:
                out.append((_clean_surface(obj[1]), t0))
                return
        for item in obj:
            if isinstance(item, str):
                parser = _LineParser(tidx)
                parser.section = inherited or None
                out.extend(parser.parse(item, force_item=True))
            else:
                _walk_json(item, tidx, out, inherited)


def _dedupe(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    out = []
    for surface, typ in pairs:
        if not surface:
            continue
        key = (" ".join(surface.casefold().split()), typ)
        if key not in seen:
            seen.add(key)
            out.append((surface, typ))
    return out


def parse_entities(
    text: str, *, types: Mapping[str, Sequence[str]] | None = None
) -> list[tuple[str, str]]:
    """Parse a model's free-form entity list into ``(surface, TYPE)`` pairs.

    ``types`` maps each canonical type to the words that mean it (the canonical
    name itself always counts; simple plurals and ``B-``/``I-`` prefixes are
    understood); it defaults to :data:`DEFAULT_ENTITY_TYPES`. An item whose
    type is not recognised gets type ``""``.

    Understood formats: JSON or Python-literal lists/dicts
    (``[{"text": .., "type": ..}]``, ``[["Paris", "LOC"]]``,
    ``{"PER": ["Alice"]}``, ``{"entities": [...]}``), possibly inside a code
    fence; and, line by line, bullet or numbered items ("- Barack Obama (PER)",
    "1. Paris - LOC", "* Google: organization"), "Name - Type", "Name (Type)",
    "Name: Type", "Type: Name1, Name2" ("People: Alice, Bob"), section headers
    ("Locations:" followed by items), markdown table rows, "Name: X, Type: Y",
    and inline prose ("The entities are Alice (person) and Paris (location).").
    Surfaces lose surrounding quotes, markdown and trailing punctuation; pairs
    are de-duplicated (case-insensitively on the surface) keeping first order.
    """
    tidx = _TypeIndex(types if types is not None else DEFAULT_ENTITY_TYPES)
    if not text or not text.strip():
        return []
    obj = _json_candidate(text)
    if obj is not None:
        out: list[tuple[str, str]] = []
        _walk_json(obj, tidx, out)
        out = _dedupe(out)
        if out:
            return out
    parser = _LineParser(tidx)
    pairs: list[tuple[str, str]] = []
    for line in _FENCE_RE.sub("", text).splitlines():
        pairs.extend(parser.parse(line))
    return _dedupe(pairs)


def _entity_key(surface: str) -> str:
    s = " ".join(unicodedata.normalize("NFC", surface).lower().split())
    prev = None
    while prev != s:
        prev = s
        s = s.strip()
        while s and _is_punct(s[0]):
            s = s[1:]
        while s and _is_punct(s[-1]):
            s = s[:-1]
        s = s.strip()
        if s.startswith("the "):
            s = s[4:]
    return s


def entity_counts(
    pred: Sequence[tuple[str, str]], gold: Sequence[tuple[str, str]], *, typed: bool = True
) -> tuple[int, int, int]:
    """``(tp, fp, fn)`` of predicted against gold entities.

    Surfaces match exactly after light normalisation: case-insensitive,
    whitespace collapsed, surrounding punctuation stripped, a leading "the "
    dropped. Types compare case-insensitively; ``typed=False`` ignores them.
    Each gold entity (duplicates included) is matched at most once, so a
    repeated prediction of one gold entity is a false positive.
    """

    def key(pair: tuple[str, str]) -> tuple[str, str]:
        surface, typ = pair
        return (_entity_key(surface), typ.strip().upper() if typed else "")

    remaining = Counter(key(g) for g in gold)
    tp = fp = 0
    for p in pred:
        k = key(p)
        if remaining[k] > 0:
            remaining[k] -= 1
            tp += 1
        else:
            fp += 1
    fn = sum(remaining.values())
    return tp, fp, fn


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts; 0.0 wherever a ratio is undefined."""
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1
