"""Tests for assay.scoring.vision: VQA accuracy, CIDEr-D, BLEU-4, Winoground matching scores.

Hand-computed values are worked out in the comments; CIDEr-D and BLEU-4 are also checked
against the COCO caption toolkit (pycocoevalcap) when it is installed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.errors import TaskError
from assay.scoring import stats
from assay.scoring.vision import (
    bleu4,
    bleu4_from_stats,
    bleu4_item_stats,
    cider_d,
    cider_d_resample,
    match_group_score,
    match_image_score,
    match_text_score,
    normalize_vqa_answer,
    tokenize_caption,
    vqa_accuracy,
)

# --------------------------------------------------------------------------- VQA normalisation


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Two", "2"),
        ("none", "0"),
        ("Ten dogs", "10 dogs"),
        ("the dog.", "dog"),
        ("An apple", "apple"),
        ("isnt", "isn't"),
        ("Dont know", "don't know"),
        ("couldnt've", "couldn't've"),  # one apostrophe left out ...
        ("couldn'tve", "couldn't've"),
        ("couldntve", "couldntve"),  # ... but not both: not in the official table
        ("twas", "'twas"),
        ("im", "im"),  # official quirk: its "Im" key never meets a lower-cased word
        ("somebody'd", "somebodyd"),  # official quirk: that entry runs backwards
        ("2.5", "2.5"),  # period before a digit is kept
        ("5.", "5"),
        ("yes!", "yes"),  # "!" touches no space: replaced by a space, then stripped by split
        ("a red-ball", "red ball"),  # "-" touches no space: replaced by a space
        ("red - ball", "red ball"),  # "-" next to a space: deleted
        ("red, blue", "red blue"),  # "," next to a space: deleted
        ("red,blue", "red blue"),  # "," touches no space: replaced by a space
        ("1,000", "1000"),  # digit-comma-digit: every listed punctuation mark is deleted
        ("1,000-2", "10002"),
        ("x-ray", "x ray"),
        ("(left)", "left"),
        ("it's", "it's"),  # the apostrophe is not punctuation here
        ("10:30", "10:30"),  # nor is the colon
        ("  Yes\n", "yes"),
        ("black\tand white", "black and white"),
        ("", ""),
    ],
)
def test_normalize_vqa_answer(raw, expected):
    assert normalize_vqa_answer(raw) == expected


def test_normalize_vqa_answer_deletes_at_most_32_periods():
    # the official script passes re.UNICODE (32) as re.sub's count
    assert normalize_vqa_answer("." * 40 + "x") == "." * 8 + "x"


# --------------------------------------------------------------------------- VQA accuracy


def _answers(matching: int, total: int = 10) -> list[str]:
    return ["2"] * matching + ["3"] * (total - matching)


@pytest.mark.parametrize(
    ("matching", "expected"),
    [
        (0, 0.0),
        # 1 match: the matching annotator left out sees 0 others (0); the 9 others see 1 (1/3)
        # -> (0 + 9 * 1/3) / 10 = 0.3
        (1, 0.3),
        # 2 matches: 2 * (1/3) + 8 * (2/3) = 2/3 + 16/3 = 6 -> 0.6
        (2, 0.6),
        # 3 matches: 3 * (2/3) + 7 * 1 = 9 -> 0.9
        (3, 0.9),
        # 4 matches: every annotator left out still leaves >= 3 matches -> 1.0
        (4, 1.0),
        (10, 1.0),
    ],
)
def test_vqa_accuracy_ten_answers(matching, expected):
    assert vqa_accuracy("two", _answers(matching)) == pytest.approx(expected, abs=1e-12)


def test_vqa_accuracy_other_answer_counts():
    assert vqa_accuracy("dog", ["Dog"]) == 1.0  # one answer: exact match after normalisation
    assert vqa_accuracy("cat", ["dog"]) == 0.0
    assert vqa_accuracy("0", [None]) == 0.0  # a missing answer is empty, not "none" -> "0"
    # 3 answers, all match: each annotator left out leaves 2 -> 2/3 (as the official formula)
    assert vqa_accuracy("yes", ["yes", "yes", "yes"]) == pytest.approx(2 / 3)
    # 5 answers, 2 match: 2 * (1/3) + 3 * (2/3) = 8/3 -> 8/15
    assert vqa_accuracy("red", ["red", "red", "blue", "blue", "green"]) == pytest.approx(8 / 15)


def test_vqa_accuracy_normalises_both_sides():
    answers = ["2", "two", "Two.", "2", "3", "3", "3", "3", "3", "3"]
    assert vqa_accuracy("two", answers) == pytest.approx(1.0)
    assert vqa_accuracy("The Dog!", ["dog"] * 10) == 1.0
    assert vqa_accuracy("dont know", ["don't know"] * 2 + ["no"] * 8) == pytest.approx(0.6)


@pytest.mark.parametrize("pred", [None, "", "   ", "the", "."])
def test_vqa_accuracy_empty_prediction(pred):
    assert vqa_accuracy(pred, ["", "the", "yes"]) == 0.0


def test_vqa_accuracy_needs_answers():
    with pytest.raises(TaskError, match="answers"):
        vqa_accuracy("yes", [])


@settings(max_examples=60, deadline=None)
@given(total=st.integers(1, 12), data=st.data())
def test_vqa_accuracy_bounded_and_monotone(total, data):
    scores = [vqa_accuracy("2", _answers(m, total)) for m in range(total + 1)]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert all(a <= b for a, b in zip(scores, scores[1:]))
    assert scores[0] == 0.0
    m = data.draw(st.integers(0, total))
    if total > 1:  # closed form of the leave-one-out mean
        expected = (m * min(1, (m - 1) / 3) + (total - m) * min(1, m / 3)) / total
        assert scores[m] == pytest.approx(max(expected, 0.0))


# --------------------------------------------------------------------------- captions

# 20 images, 3-5 reference captions each, already tokenised and lower case.
REFERENCES = [
    ["a man riding a wave on top of a surfboard", "a surfer rides a large wave in the ocean", "a person surfing on a blue wave"],
    ["two dogs playing with a frisbee in the grass", "a pair of dogs chase a frisbee on a lawn", "dogs running in a field with a frisbee", "two brown dogs play in a grassy park"],
    ["a plate of food with broccoli and rice", "a white plate topped with rice and vegetables", "a meal of chicken broccoli and rice on a plate"],
    ["a red double decker bus driving down a street", "a double decker bus on a city street", "a large red bus parked next to a sidewalk", "a red bus driving past tall buildings", "the bus is red and has two levels"],
    ["a cat sleeping on top of a laptop keyboard", "a cat lying on a laptop computer", "an orange cat resting on a keyboard"],
    ["a group of people flying kites on a beach", "several kites flying over a sandy beach", "people on the beach with colorful kites", "kites in the sky above a crowded beach"],
    ["a kitchen with white cabinets and a stove", "a clean kitchen with a stove and a sink", "a small kitchen with wooden floors"],
    ["a baseball player swinging a bat at a ball", "a batter swings at a pitch during a game", "a man in a baseball uniform hitting a ball", "a baseball game with a batter and a catcher"],
    ["a giraffe standing next to a tall tree", "a giraffe eating leaves from a tree", "a tall giraffe in a grassy field near trees"],
    ["a woman holding an umbrella in the rain", "a person walking with an umbrella on a wet street", "a woman with a black umbrella on a rainy day", "someone walks in the rain under an umbrella"],
    ["a train traveling down tracks next to a forest", "a passenger train on the railroad tracks", "a long train passing through the countryside"],
    ["a bowl of fruit on a wooden table", "apples and bananas in a bowl on a table", "a fruit bowl filled with oranges and apples", "a wooden table with a bowl of fresh fruit", "some fruit sitting in a bowl"],
    ["a skateboarder doing a trick on a ramp", "a man riding a skateboard up a ramp", "a skateboarder in the air above a ramp"],
    ["an airplane flying in a clear blue sky", "a large jet flying through the sky", "a white plane in the blue sky", "a passenger jet in flight"],
    ["a little girl eating a slice of pizza", "a child holding a piece of pizza", "a young girl biting into pizza"],
    ["a herd of elephants walking across a field", "elephants walking in a dry grassland", "a group of elephants crossing a dirt road", "several elephants in the wild"],
    ["a bathroom with a toilet and a sink", "a small white bathroom with a mirror", "a toilet next to a sink in a bathroom"],
    ["a man sitting on a bench in a park", "an old man resting on a park bench", "a person sitting alone on a wooden bench", "a man on a bench near some trees"],
    ["a stop sign at the corner of a street", "a red stop sign next to a road", "a street sign on a pole near a road"],
    ["a tennis player hitting a ball with a racket", "a woman playing tennis on a court", "a tennis player about to hit the ball", "a player swings a racket on a tennis court"],
]
PREDICTIONS = [
    "a man riding a wave on a surfboard",
    "two dogs playing with a frisbee",
    "a plate of food with rice and broccoli",
    "a red bus driving down the street",
    "a cat laying on a laptop",
    "people flying kites on the beach",
    "a kitchen with a stove and a sink",
    "a baseball player swinging a bat",
    "a giraffe standing in a field",
    "a woman walking with an umbrella",
    "a train on the tracks",
    "a bowl of fruit on a table",
    "a man doing a trick on a skateboard",
    "a plane flying in the sky",
    "a girl eating pizza",
    "a group of elephants walking",
    "a white toilet in a bathroom",
    "a man sitting on a bench",
    "a red stop sign on a street",
    "a woman holding a tennis racket",
]


def _coco(predictions, references):
    gts = {i: list(refs) for i, refs in enumerate(references)}
    res = {i: [p] for i, p in enumerate(predictions)}
    return gts, res


def test_tokenize_caption():
    assert tokenize_caption("A Dog's ball, on the x-ray.") == ["a", "dog", "s", "ball", "on", "the", "x", "ray"]
    assert tokenize_caption("two dogs  playing") == ["two", "dogs", "playing"]
    assert tokenize_caption(None) == []
    assert tokenize_caption("...") == []


# --------------------------------------------------------------------------- CIDEr-D


def test_cider_d_hand_computed():
    # N = 2 items, every n-gram in one item's references only: idf = log 2 for each.
    # Candidates equal their reference: orders 1 and 2 have cosine 1, orders 3 and 4 are
    # empty (0), so each item is 10 * (1 + 1 + 0 + 0) / 4 = 5.0.
    score, items = cider_d(["a b", "c d"], [["a b"], ["c d"]])
    assert items == pytest.approx([5.0, 5.0])
    assert score == pytest.approx(5.0)


def test_cider_d_no_credit_for_ngrams_every_item_shares():
    # "a b" is in every item's references: idf = log(2/2) = 0, all weights vanish
    score, items = cider_d(["a b", "a b"], [["a b"], ["a b"]])
    assert items == [0.0, 0.0]
    assert score == 0.0


def test_cider_d_single_item_is_zero():
    assert cider_d(["a dog on a couch"], [["a dog on a couch"]]) == (0.0, [0.0])


def test_cider_d_empty_prediction_scores_zero():
    score, items = cider_d(["", None, *PREDICTIONS[2:]], REFERENCES)
    assert items[0] == 0.0 and items[1] == 0.0
    assert score == pytest.approx(sum(items) / len(items))
    assert score > 0


def test_cider_d_realistic_set_range():
    score, items = cider_d(PREDICTIONS, REFERENCES)
    assert len(items) == 20
    assert all(s >= 0 for s in items)
    assert 0.5 < score < 3.0  # typical captioning range on plausible captions


def test_cider_d_punctuation_and_case_are_ignored():
    base = cider_d(PREDICTIONS, REFERENCES)
    shouted = cider_d([p.upper() + "." for p in PREDICTIONS], [[r.capitalize() + "!" for r in refs] for refs in REFERENCES])
    assert shouted[0] == pytest.approx(base[0], abs=1e-12)


def test_cider_d_permutation_invariant():
    order = np.random.default_rng(0).permutation(len(PREDICTIONS))
    score, items = cider_d(PREDICTIONS, REFERENCES)
    pscore, pitems = cider_d([PREDICTIONS[i] for i in order], [REFERENCES[i] for i in order])
    assert pscore == pytest.approx(score, abs=1e-12)
    assert pitems == pytest.approx([items[i] for i in order], abs=1e-12)


def test_cider_d_resample():
    idx = np.arange(len(PREDICTIONS))
    assert cider_d_resample(PREDICTIONS, REFERENCES, idx) == pytest.approx(cider_d(PREDICTIONS, REFERENCES)[0])
    dup = [0, 0, 3, 5, 5, 5]
    assert cider_d_resample(PREDICTIONS, REFERENCES, dup) == pytest.approx(
        cider_d([PREDICTIONS[i] for i in dup], [REFERENCES[i] for i in dup])[0]
    )
    se = stats.bootstrap_stderr(lambda s: cider_d_resample(PREDICTIONS, REFERENCES, s), idx, iters=20)
    assert 0 < se < 1


def test_cider_d_input_errors():
    with pytest.raises(TaskError, match="2 predictions but 1"):
        cider_d(["a", "b"], [["a"]])
    with pytest.raises(TaskError, match="item 1 has no reference"):
        cider_d(["a", "b"], [["a"], []])
    with pytest.raises(TaskError, match="item 0"):
        cider_d(["a"], ["a dog"])
    assert math.isnan(cider_d([], [])[0])


# --------------------------------------------------------------------------- BLEU-4


def test_bleu4_hand_computed():
    # precisions 4/5, 3/4, 2/3, 1/2 -> product 1/5; equal lengths, no brevity penalty
    assert bleu4(["a b c d e"], [["a b c d f"]]) == pytest.approx(0.2**0.25, abs=1e-8)
    # all n-grams match, 4 words against 6: brevity penalty exp(1 - 6/4)
    assert bleu4(["a b c d"], [["a b c d e f"]]) == pytest.approx(math.exp(-0.5), abs=1e-8)


def test_bleu4_identical_prediction_is_one():
    ref = "a man riding a wave on top of a surfboard"
    assert bleu4([ref], [[ref]]) == pytest.approx(1.0, abs=1e-8)
    # one of five references matched exactly: that one is also the closest length
    assert bleu4([ref], [[ref, *REFERENCES[1]]]) == pytest.approx(1.0, abs=1e-8)


def test_bleu4_empty_prediction_is_zero():
    assert bleu4([""], [["a dog"]]) == 0.0
    assert bleu4([None, ""], [["a dog"], ["a cat on a mat"]]) == 0.0


def test_bleu4_item_stats():
    # candidate 5 words; reference lengths 4 and 6 are equally close: the shorter is taken
    st_ = bleu4_item_stats("a b c d e", ["a b c x", "a b c d y z"])
    assert st_ == (5, 4, 5, 4, 3, 2, 4, 3, 2, 1)
    # clipping by the largest count in a single reference: "the" twice in ref 2 only
    st_ = bleu4_item_stats("the the the", ["the cat", "the the"])
    assert st_[:2] == (3, 2)
    assert st_[2:6] == (3, 2, 1, 0)
    assert st_[6:] == (2, 1, 0, 0)


def test_bleu4_from_stats_reaggregates():
    stats_ = [bleu4_item_stats(p, r) for p, r in zip(PREDICTIONS, REFERENCES)]
    assert bleu4_from_stats(stats_) == pytest.approx(bleu4(PREDICTIONS, REFERENCES), abs=1e-15)
    arr = np.array(stats_)
    assert bleu4_from_stats(arr[[0, 0, 1]]) == pytest.approx(
        bleu4([PREDICTIONS[0], PREDICTIONS[0], PREDICTIONS[1]], [REFERENCES[0], REFERENCES[0], REFERENCES[1]])
    )
    se = stats.bootstrap_stderr(bleu4_from_stats, arr, iters=200)
    assert 0 < se < 0.2
    assert math.isnan(bleu4_from_stats([]))


def test_bleu4_errors():
    with pytest.raises(TaskError, match="1 predictions but 2"):
        bleu4(["a"], [["a"], ["b"]])
    with pytest.raises(TaskError, match="item 0 has no reference"):
        bleu4(["a"], [[]])


@settings(max_examples=50, deadline=None)
@given(
    items=st.lists(
        st.tuples(
            st.lists(st.sampled_from("a the dog cat red ball on sits".split()), max_size=9),
            st.lists(st.lists(st.sampled_from("a the dog cat red ball on sits".split()), max_size=9), min_size=1, max_size=5),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_bleu4_bounded_and_stats_consistent(items):
    preds = [" ".join(p) for p, _ in items]
    refs = [[" ".join(r) for r in rs] for _, rs in items]
    b = bleu4(preds, refs)
    assert 0.0 <= b <= 1.0 + 1e-9
    assert b == bleu4_from_stats([bleu4_item_stats(p, r) for p, r in zip(preds, refs)])


# --------------------------------------------------------------------------- parity with COCO


def test_cider_d_matches_pycocoevalcap():
    cider_mod = pytest.importorskip("pycocoevalcap.cider.cider")
    for preds, refs in [
        (PREDICTIONS, REFERENCES),
        (["", *PREDICTIONS[1:]], REFERENCES),  # empty prediction
        (PREDICTIONS, [refs[:1] for refs in REFERENCES]),  # one reference each
        (PREDICTIONS[:5], [REFERENCES[3]] * 5),  # five references each
        # an empty reference among others (it contributes a similarity of 0)
        (PREDICTIONS[:3], [["", *REFERENCES[i]] for i in range(3)]),
    ]:
        want, want_items = cider_mod.Cider().compute_score(*_coco(preds, refs))
        got, got_items = cider_d(preds, refs)
        assert got == pytest.approx(want, abs=1e-6)
        assert got_items == pytest.approx(list(want_items), abs=1e-6)


def test_bleu4_matches_pycocoevalcap():
    bleu_mod = pytest.importorskip("pycocoevalcap.bleu.bleu")
    for preds, refs in [
        (PREDICTIONS, REFERENCES),
        (["", *PREDICTIONS[1:]], REFERENCES),
        (PREDICTIONS, [refs[:1] for refs in REFERENCES]),
        ([REFERENCES[0][0]], [REFERENCES[0]]),  # identical to a reference
        (PREDICTIONS[:5], [REFERENCES[3]] * 5),
    ]:
        want, _ = bleu_mod.Bleu(4).compute_score(*_coco(preds, refs), verbose=0)
        assert bleu4(preds, refs) == pytest.approx(want[3], abs=1e-6)


_WORDS = "a the dog dogs cat red ball on sits runs park".split()
_CAPTION = st.lists(st.sampled_from(_WORDS), max_size=10).map(" ".join)


@settings(max_examples=40, deadline=None)
@given(
    items=st.lists(
        st.tuples(_CAPTION, st.lists(_CAPTION.filter(bool), min_size=1, max_size=5)),
        min_size=1,
        max_size=6,
    )
)
def test_random_sets_match_pycocoevalcap(items):
    cider_mod = pytest.importorskip("pycocoevalcap.cider.cider")
    bleu_mod = pytest.importorskip("pycocoevalcap.bleu.bleu")
    preds = [p for p, _ in items]
    refs = [r for _, r in items]
    gts, res = _coco(preds, refs)
    want_c, want_items = cider_mod.Cider().compute_score(gts, res)
    got_c, got_items = cider_d(preds, refs)
    assert got_c == pytest.approx(want_c, abs=1e-6)
    assert got_items == pytest.approx(list(want_items), abs=1e-6)
    want_b, _ = bleu_mod.Bleu(4).compute_score(gts, res, verbose=0)
    assert bleu4(preds, refs) == pytest.approx(want_b[3], abs=1e-6)


# --------------------------------------------------------------------------- Winoground


def _wino(s):
    """The Winoground paper's definitions; s[i][j] = score of caption j with image i."""

    def sc(c, i):
        return s[i][c]

    text = sc(0, 0) > sc(1, 0) and sc(1, 1) > sc(0, 1)
    image = sc(0, 0) > sc(0, 1) and sc(1, 1) > sc(1, 0)
    return float(text), float(image), float(text and image)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=4, max_size=4))
def test_two_by_two_equals_winoground(vals):
    s = [vals[:2], vals[2:]]  # small integers: ties are frequent
    assert (match_text_score(s), match_image_score(s), match_group_score(s)) == _wino(s)


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([[0.9, 0.1], [0.2, 0.8]], (1.0, 1.0, 1.0)),
        # image 0 prefers caption 1: text fails; columns: 0.5 > 0.2 and 0.8 > 0.6: image holds
        ([[0.5, 0.6], [0.2, 0.8]], (0.0, 1.0, 0.0)),
        # rows: 0.9 > 0.1, 0.95 > 0.92: text holds; column 0: 0.9 < 0.92: image fails
        ([[0.9, 0.1], [0.92, 0.95]], (1.0, 0.0, 0.0)),
        ([[0.5, 0.5], [0.1, 0.9]], (0.0, 1.0, 0.0)),  # a tie fails
        ([[3, 1, 2], [0, 4, 1], [1, 2, 5]], (1.0, 1.0, 1.0)),
        ([[3, 1, 2], [0, 4, 1], [1, 5, 5]], (0.0, 0.0, 0.0)),  # row 2 ties, column 1 loses
        ([[3, 1, 3.5], [0, 4, 1], [1, 2, 5]], (0.0, 1.0, 0.0)),
        ([[float("nan"), 0], [0, 1]], (0.0, 0.0, 0.0)),
    ],
)
def test_matching_scores(scores, expected):
    assert (match_text_score(scores), match_image_score(scores), match_group_score(scores)) == expected


@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 5), data=st.data())
def test_matching_scores_properties(n, data):
    vals = data.draw(st.lists(st.integers(0, 6), min_size=n * n, max_size=n * n))
    s = np.array(vals, dtype=float).reshape(n, n)
    t, i, g = match_text_score(s), match_image_score(s), match_group_score(s)
    assert g <= min(t, i)
    assert g == t * i
    assert match_text_score(s.T) == i  # swapping the roles of images and captions
    perm = np.array(data.draw(st.permutations(range(n))))
    sp = s[np.ix_(perm, perm)]  # same pairs, reordered consistently
    assert (match_text_score(sp), match_image_score(sp), match_group_score(sp)) == (t, i, g)


@pytest.mark.parametrize("bad", [[[1.0]], [[1, 2, 3], [4, 5, 6]], [1, 2], [["a", "b"], ["c", "d"]], []])
def test_matching_scores_reject_non_square(bad):
    with pytest.raises(TaskError, match="scores"):
        match_group_score(bad)
