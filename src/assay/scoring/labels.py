"""Verbose or hedged classification answers mapped onto a fixed set of labels.

* :func:`map_label` -- the label a free-text answer names (or ``None``), negation and hedge
  aware. :data:`LABEL_PRESETS` holds built-in label-word sets (words in en, fr, de, es, pt, it,
  ar, hi), named for task YAMLs (``extract: {name: label, args: {preset: sentiment3}}``):

  - ``sentiment2``: negative, positive (SST-2, IMDB);
  - ``sentiment3`` (also ``tweeteval_sentiment``, ``xlmt``): negative, neutral, positive;
  - ``agnews``: World, Sports, Business, Sci/Tech (AG News' classes.txt);
  - ``emotion4`` (also ``tweeteval_emotion``): anger, joy, optimism, sadness;
  - ``hate`` / ``irony`` / ``offensive`` (also ``tweeteval_<name>``): the TweetEval
    mapping.txt labels (hate/not-hate, irony/non_irony, offensive/not-offensive); "yes" and
    "no" answers count.

Pure, deterministic, standard library only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

__all__ = [
    "map_label",
    "LABEL_PRESETS",
]

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
