"""Vision-language metrics: VQA accuracy, CIDEr-D, BLEU-4 and Winoground matching scores.

Published multimodal numbers come from a handful of reference scripts (the VQA challenge's
``vqaEval.py``, the COCO caption toolkit), each with its own normalisation and corner cases.
A harness that rounds those corners differently reports numbers that cannot be compared with
papers, so every function here follows its reference's arithmetic exactly (including the
quirks, which are named where they matter) and is checked against the reference package in
``tests/scoring/test_vision_metrics.py``. Pure Python and numpy, deterministic.

* :func:`normalize_vqa_answer`, :func:`vqa_accuracy` -- the VQA v2 answer normalisation and
  the leave-one-annotator-out soft accuracy, per question.
* :func:`cider_d` (+ :func:`cider_d_resample`) -- corpus CIDEr-D, as the COCO toolkit's
  ``Cider`` scorer (sigma 6, clipped tf-idf, x10).
* :func:`bleu4`, :func:`bleu4_item_stats`, :func:`bleu4_from_stats` -- corpus BLEU-4 as the COCO
  toolkit's ``Bleu(4)`` with the "closest" reference length; the per-item statistics let a
  bootstrap re-aggregate the corpus score on resampled items.
* :func:`match_text_score`, :func:`match_image_score`, :func:`match_group_score` -- Winoground's
  text / image / group scores, generalised from 2x2 to NxN score matrices.

Captions are tokenised by :func:`tokenize_caption` (lower case, every punctuation character
replaced by a space, split on whitespace). The COCO toolkit runs the Java PTB tokenizer and
then drops punctuation tokens; the two agree on text that is already lower-case and free of
punctuation, and differ on clitics and hyphens ("dog's" -> ``dog s`` here, ``dog 's`` there;
"x-ray" -> ``x ray`` here, ``x-ray`` there).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from assay.errors import TaskError

__all__ = [
    "normalize_vqa_answer",
    "vqa_accuracy",
    "tokenize_caption",
    "cider_d",
    "cider_d_resample",
    "bleu4",
    "bleu4_item_stats",
    "bleu4_from_stats",
    "match_text_score",
    "match_image_score",
    "match_group_score",
]

# ---------------------------------------------------------------------------
# VQA answer normalisation (VQA v2 challenge evaluation script)
# ---------------------------------------------------------------------------

# Characters the official script treats one by one: deleted when the answer has the
# character next to a space anywhere (or has a digit-comma-digit anywhere), else replaced
# by a space. The apostrophe and colon are not in the list; the period has its own rule.
_VQA_PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
_DIGIT_COMMA_DIGIT = re.compile(r"\d,\d")
# A period not followed by a digit is deleted ("dog." -> "dog", "2.5" kept). The official
# pattern reads "(?!<=\d)(\.)(?!\d)": its first group is a (vacuous) look-ahead, not the
# intended look-behind, so only the following character matters (".5" is kept, "5." is not).
_PERIOD = re.compile(r"\.(?!\d)")
# The official script passes re.UNICODE (== 32) where re.sub expects ``count``, so at most
# 32 periods are deleted per answer; kept for parity.
_PERIOD_MAX_DELETIONS = 32

_NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
_VQA_ARTICLES = frozenset({"a", "an", "the"})

# English contractions, written with their apostrophes. An answer word is mapped to one of
# these when it is the contraction with exactly one apostrophe left out ("dont" -> "don't",
# "couldnt've" and "couldn'tve" -> "couldn't've", but not "couldntve"), which is the set of
# spellings the official table lists.
_CONTRACTED = (
    "ain't aren't can't could've couldn't couldn't've didn't doesn't don't hadn't hadn't've "
    "hasn't haven't he'd he'd've he's how'd how'll how's isn't it'd it'd've it'll ma'am "
    "mightn't mightn't've might've mustn't must've needn't not've o'clock oughtn't 'ow's'at "
    "shan't she'd've should've shouldn't shouldn't've somebody'd've somebody'll somebody's "
    "someone'd someone'd've someone'll someone's something'd something'd've something'll "
    "that's there'd there'd've there're there's they'd they'd've they'll they're they've "
    "'twas wasn't we'd've we've weren't what'll what're what's what've when's where'd "
    "where's where've who'd who'd've who'll who's who've why'll why're why's won't would've "
    "wouldn't wouldn't've y'all y'all'll y'all'd've you'd you'd've you'll you're you've"
).split()


def _one_apostrophe_dropped(word: str) -> list[str]:
    return [word[:i] + word[i + 1 :] for i, ch in enumerate(word) if ch == "'"]


def _contraction_table() -> dict[str, str]:
    table = {short: full for full in _CONTRACTED for short in _one_apostrophe_dropped(full)}
    # Official quirks, kept for parity: this entry runs backwards; and the table's "I'm",
    # "I've", "I'd've" entries have capitalised keys that never match the lower-cased words,
    # so "im", "ive" and "id've" are left as they are.
    table["somebody'd"] = "somebodyd"
    return table


_CONTRACTIONS = _contraction_table()


def _vqa_punctuation(text: str) -> str:
    delete_all = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for p in _VQA_PUNCT:
        spaced = (p + " ") in text or (" " + p) in text
        out = out.replace(p, "" if (spaced or delete_all) else " ")
    return _PERIOD.sub("", out, count=_PERIOD_MAX_DELETIONS)


def _vqa_words(text: str) -> str:
    words = [_NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in _VQA_ARTICLES]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words)


def normalize_vqa_answer(ans: str) -> str:
    """The VQA v2 evaluation script's answer normalisation.

    In order: newlines and tabs become spaces and the ends are stripped; punctuation
    (``; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? !``) is deleted where the answer has that
    character next to a space ("red - ball" -> "red  ball") or has a digit-comma-digit
    anywhere ("1,000" -> "1000"), and replaced by a space otherwise ("red-ball" -> "red ball");
    a period not followed by a digit is deleted ("2.5" stays); then lower case, split on
    whitespace, number words ``none``/``zero``..``ten`` become digits, the articles *a*, *an*,
    *the* are dropped and apostrophe-less contractions get their apostrophe back ("dont" ->
    "don't"); words are joined by single spaces.

    Like the official script, "im"/"ive" stay as they are (its "Im"/"Ive" keys are never
    reached after lower-casing) and "somebody'd" becomes "somebodyd".
    """
    text = str(ans).replace("\n", " ").replace("\t", " ").strip()
    return _vqa_words(_vqa_punctuation(text))


def _vqa_soft_score(prediction: str, answers: list[str]) -> float:
    """Mean over annotators of min(1, matches among the *other* annotators / 3)."""
    k = len(answers)
    if k == 1:  # no other annotators to leave in: plain exact match
        return float(answers[0] == prediction)
    matches = sum(a == prediction for a in answers)
    total = sum(min(1.0, (matches - (a == prediction)) / 3.0) for a in answers)
    return total / k


def vqa_accuracy(prediction: str | None, answers: Sequence[str]) -> float:
    """Official VQA accuracy of one prediction against the human answers (usually ten).

    Prediction and answers are normalised with :func:`normalize_vqa_answer`. For each human
    answer in turn the others are kept and the score is ``min(1, #others equal to the
    prediction / 3)``; the result is the mean over the human answers. With ten answers and
    ``m`` matching ones this is 0, 0.3, 0.6, 0.9, 1.0 for ``m`` = 0..4 (the "10 choose 9"
    average of ``min(m/3, 1)``). With one answer it is exact match. With three or fewer
    answers, as in the official formula, a prediction that matches all of them scores
    below 1 (three of three: 2/3).

    The official script normalises the human answers only when they disagree and then only
    their punctuation; here both sides always get the full normalisation, which gives the
    same result on VQA v2's already-normalised annotations.

    An empty or ``None`` prediction scores 0.0; no answers is a :class:`TaskError`.
    """
    if isinstance(answers, str):
        answers = [answers]
    if len(answers) == 0:
        raise TaskError("vqa_accuracy: the item has no human answers (field 'answers' is empty)")
    if prediction is None:
        return 0.0
    pred = normalize_vqa_answer(prediction)
    if not pred:
        return 0.0
    return _vqa_soft_score(pred, [normalize_vqa_answer(a) if a is not None else "" for a in answers])


# ---------------------------------------------------------------------------
# Caption tokenisation and input checks
# ---------------------------------------------------------------------------


def _space_punct(ch: str) -> str:
    return " " if unicodedata.category(ch).startswith("P") or ch in "$+<=>^`|~" else ch


def tokenize_caption(text: str | None) -> list[str]:
    """Lower case, every punctuation character replaced by a space, split on whitespace.

    ``None`` is the empty caption. Text that is already lower-case, space-separated and
    free of punctuation comes back as its words, unchanged.
    """
    if text is None:
        return []
    return "".join(_space_punct(ch) for ch in str(text).lower()).split()


def _check_corpus(
    predictions: Sequence[str | None], references: Sequence[Sequence[str]], metric: str
) -> None:
    if isinstance(predictions, str) or isinstance(references, str):
        raise TaskError(f"{metric}: predictions and references must be lists, one entry per item")
    if len(predictions) != len(references):
        raise TaskError(
            f"{metric}: {len(predictions)} predictions but {len(references)} reference lists"
        )
    for i, refs in enumerate(references):
        if isinstance(refs, str):
            raise TaskError(f"{metric}: references of item {i} must be a list of captions, got a string")
        if len(refs) == 0:
            raise TaskError(f"{metric}: item {i} has no reference captions")


def _ngrams(words: list[str], n: int) -> Counter[tuple[str, ...]]:
    """Counts of every k-gram, k = 1..n."""
    return Counter(tuple(words[i : i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


# ---------------------------------------------------------------------------
# CIDEr-D (COCO caption toolkit's Cider scorer)
# ---------------------------------------------------------------------------


class _Caption:
    """One tokenised caption: its n-gram counts and its length as CIDEr-D measures it."""

    __slots__ = ("counts", "length")

    def __init__(self, words: list[str], n: int):
        self.counts = _ngrams(words, n)
        # The COCO scorer counts 2-grams (len(words) - 1); the difference of two lengths is the
        # same in words, except when a side is empty, and then the similarity is 0 anyway.
        self.length = len(words)


def _tfidf(
    cap: _Caption, df: Counter[tuple[str, ...]], log_docs: float, n: int
) -> tuple[list[dict[tuple[str, ...], float]], list[float]]:
    """Per-order tf-idf vectors and their euclidean norms; unseen n-grams count df = 1."""
    vecs: list[dict[tuple[str, ...], float]] = [{} for _ in range(n)]
    for gram, tf in cap.counts.items():
        vecs[len(gram) - 1][gram] = tf * (log_docs - math.log(max(1.0, df[gram])))
    norms = [math.sqrt(sum(v * v for v in vec.values())) for vec in vecs]
    return vecs, norms


def _cider_pair(
    cand: tuple[list[dict], list[float]], ref: tuple[list[dict], list[float]], delta: int, sigma: float
) -> float:
    """Mean over n-gram orders of the clipped cosine, times the Gaussian length penalty."""
    (cvecs, cnorms), (rvecs, rnorms) = cand, ref
    penalty = math.exp(-(delta**2) / (2.0 * sigma**2))
    total = 0.0
    for cvec, rvec, cn, rn in zip(cvecs, rvecs, cnorms, rnorms):
        dot = sum(min(v, rvec.get(g, 0.0)) * rvec.get(g, 0.0) for g, v in cvec.items())
        if cn != 0 and rn != 0:
            dot /= cn * rn
        total += dot * penalty
    return total / len(cvecs)


def _cider_items(cands: list[_Caption], refsets: list[list[_Caption]], sigma: float, n: int) -> list[float]:
    df: Counter[tuple[str, ...]] = Counter()
    for refs in refsets:
        df.update({g for r in refs for g in r.counts})
    log_docs = math.log(float(max(1, len(refsets))))
    scores = []
    for cand, refs in zip(cands, refsets):
        cvec = _tfidf(cand, df, log_docs, n)
        sims = [_cider_pair(cvec, _tfidf(r, df, log_docs, n), cand.length - r.length, sigma) for r in refs]
        scores.append(10.0 * sum(sims) / len(sims))
    return scores


def cider_d(
    predictions: Sequence[str | None],
    references: Sequence[Sequence[str]],
    sigma: float = 6.0,
    n: int = 4,
) -> tuple[float, list[float]]:
    """Corpus CIDEr-D and the per-item scores, as the COCO caption toolkit's ``Cider``.

    For each n-gram order 1..n a caption is a vector of ``tf * log(N / max(1, df))``, where
    ``N`` is the number of items and ``df`` the number of items whose references contain the
    n-gram (document frequencies come from the references of *this* set). A candidate is
    compared with each reference by ``sum_g min(c_g, r_g) * r_g / (|c| |r|)`` (the candidate's
    weights clipped by the reference's), times ``exp(-(len_c - len_r)^2 / (2 sigma^2))``;
    the orders are averaged, the references averaged, and the result multiplied by 10.
    The corpus score is the mean of the item scores; a set of one item scores 0 (log 1).

    Captions are tokenised by :func:`tokenize_caption`. ``None`` predictions are empty.
    An empty set gives ``(nan, [])``. Because the document frequencies depend on the whole
    set, a bootstrap standard error must recompute the score on each resample: see
    :func:`cider_d_resample`.
    """
    _check_corpus(predictions, references, "cider_d")
    if n < 1:
        raise TaskError(f"cider_d: n must be at least 1, got {n}")
    if not predictions:
        return float("nan"), []
    cands = [_Caption(tokenize_caption(p), n) for p in predictions]
    refsets = [[_Caption(tokenize_caption(r), n) for r in refs] for refs in references]
    scores = _cider_items(cands, refsets, sigma, n)
    return sum(scores) / len(scores), scores


def cider_d_resample(
    predictions: Sequence[str | None],
    references: Sequence[Sequence[str]],
    indices: Sequence[int] | np.ndarray,
    sigma: float = 6.0,
    n: int = 4,
) -> float:
    """Corpus CIDEr-D of the items at ``indices`` (repeats allowed), document frequencies
    recomputed on that resample -- one draw of a bootstrap, e.g.
    ``stats.bootstrap_stderr(lambda idx: cider_d_resample(p, r, idx), np.arange(len(p)))``.

    Each call re-tokenises the resampled items, so it costs as much as :func:`cider_d`.
    """
    _check_corpus(predictions, references, "cider_d")
    idx = [int(i) for i in np.asarray(indices).ravel()]
    return cider_d([predictions[i] for i in idx], [references[i] for i in idx], sigma=sigma, n=n)[0]


# ---------------------------------------------------------------------------
# BLEU-4 (COCO caption toolkit's Bleu(4), "closest" reference length)
# ---------------------------------------------------------------------------

_BLEU_N = 4
# The COCO scorer's guards against 0/0: numerators get +1e-15 and denominators +1e-9, so an
# empty candidate scores 0 and a corpus without a single matching 4-gram a small positive value.
_TINY = 1e-15
_SMALL = 1e-9


def bleu4_item_stats(prediction: str | None, refs: Sequence[str]) -> tuple[int, ...]:
    """The sufficient statistics of one item for corpus BLEU-4, ten integers:
    ``(candidate length, closest reference length, guessed 1..4-grams, clipped matching 1..4-grams)``.

    The closest reference length is the one nearest the candidate's, the shorter on a tie.
    Matches are clipped by the largest count of the n-gram in any single reference.
    """
    if isinstance(refs, str) or len(refs) == 0:
        raise TaskError("bleu4: an item needs a non-empty list of reference captions")
    words = tokenize_caption(prediction)
    ref_words = [tokenize_caption(r) for r in refs]
    max_ref: Counter[tuple[str, ...]] = Counter()
    for rw in ref_words:
        max_ref |= _ngrams(rw, _BLEU_N)
    test_len = len(words)
    ref_len = min((abs(len(rw) - test_len), len(rw)) for rw in ref_words)[1]
    guess = [max(0, test_len - k + 1) for k in range(1, _BLEU_N + 1)]
    correct = [0] * _BLEU_N
    for gram, count in _ngrams(words, _BLEU_N).items():
        correct[len(gram) - 1] += min(count, max_ref[gram])
    return (test_len, ref_len, *guess, *correct)


def bleu4_from_stats(stats_list: Sequence[Sequence[int]] | np.ndarray) -> float:
    """Corpus BLEU-4 from the summed per-item statistics of :func:`bleu4_item_stats`.

    ``(prod_k (correct_k + 1e-15) / (guess_k + 1e-9)) ** (1/4)`` times the brevity penalty
    ``exp(1 - r/c)`` when the summed candidate length ``c`` is below the summed closest
    reference length ``r`` (both with the same guards). No items gives ``nan``.
    """
    arr = np.asarray(stats_list, dtype=float).reshape(-1, 2 + 2 * _BLEU_N)
    if arr.shape[0] == 0:
        return float("nan")
    total = arr.sum(axis=0)
    test_len, ref_len = total[0], total[1]
    guess, correct = total[2 : 2 + _BLEU_N], total[2 + _BLEU_N :]
    precision = 1.0
    for c, g in zip(correct, guess):
        precision *= (c + _TINY) / (g + _SMALL)
    score = precision ** (1.0 / _BLEU_N)
    ratio = (test_len + _TINY) / (ref_len + _SMALL)
    if ratio < 1:
        score *= math.exp(1 - 1 / ratio)
    return float(score)


def bleu4(predictions: Sequence[str | None], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 in [0, 1], as the COCO caption toolkit's ``Bleu(4)`` (its 4th value).

    Modified n-gram precisions (candidate counts clipped by the largest count in any one
    reference) are summed over the corpus before their geometric mean over n = 1..4; the
    brevity penalty compares the summed candidate length with the summed lengths of each
    item's *closest* reference. Any number of references per item. Captions are tokenised
    by :func:`tokenize_caption`; ``None`` predictions are empty. No items gives ``nan``.
    """
    _check_corpus(predictions, references, "bleu4")
    return bleu4_from_stats([bleu4_item_stats(p, r) for p, r in zip(predictions, references)])


# ---------------------------------------------------------------------------
# Winoground-style matching scores
# ---------------------------------------------------------------------------


def _score_matrix(scores: Any) -> np.ndarray:
    try:
        arr = np.asarray(scores, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TaskError(f"matching score: 'scores' must be an N x N matrix of numbers ({exc})") from exc
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 2:
        raise TaskError(f"matching score: 'scores' must be an N x N matrix with N >= 2, got shape {arr.shape}")
    return arr


def _diagonal_wins(arr: np.ndarray) -> bool:
    """Every row's diagonal entry strictly above every other entry of that row (NaN loses)."""
    off = ~np.eye(arr.shape[0], dtype=bool)
    return bool(np.all((np.diag(arr)[:, None] > arr) | ~off))


def match_text_score(scores: Sequence[Sequence[float]] | np.ndarray) -> float:
    """1.0 iff for every image ``i`` its own caption wins: ``scores[i][i] > scores[i][j]``, j != i.

    ``scores[i][j]`` is the score of caption ``j`` given image ``i``; caption ``i`` belongs to
    image ``i``. Ties fail. For N = 2 this is Winoground's text score:
    ``s(c0, i0) > s(c1, i0) and s(c1, i1) > s(c0, i1)``.
    """
    return float(_diagonal_wins(_score_matrix(scores)))


def match_image_score(scores: Sequence[Sequence[float]] | np.ndarray) -> float:
    """1.0 iff for every caption ``j`` its own image wins: ``scores[j][j] > scores[i][j]``, i != j.

    Ties fail. For N = 2 this is Winoground's image score:
    ``s(c0, i0) > s(c0, i1) and s(c1, i1) > s(c1, i0)``.
    """
    return float(_diagonal_wins(_score_matrix(scores).T))


def match_group_score(scores: Sequence[Sequence[float]] | np.ndarray) -> float:
    """1.0 iff both the text and the image score are 1.0 (Winoground's group score for N = 2)."""
    arr = _score_matrix(scores)
    return float(_diagonal_wins(arr) and _diagonal_wins(arr.T))
