"""StoryCloze and XStoryCloze ship without data: their loaders and prompts run on a fixture
written here, laid out as a user would lay out the files they obtained."""

from __future__ import annotations

import csv

import pytest

from assay.errors import DataError
from assay.config import RunConfig
from assay.plan import plan_tasks

HEADER = ["InputStoryid", "InputSentence1", "InputSentence2", "InputSentence3", "InputSentence4",
          "RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2", "AnswerRightEnding"]
STORIES = [
    ["s1", "Ana bought a kite.", "She took it to the beach.", "The wind was strong.", "The kite flew high.", "Ana was delighted.", "Ana hated kites.", "1"],
    ["s2", "Tom baked bread.", "He forgot the yeast.", "The loaf stayed flat.", "He tasted it anyway.", "It was light and fluffy.", "It was dense and hard.", "2"],
]


def _write(path, delimiter):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(HEADER)
        w.writerows(STORIES)


def test_storycloze_from_a_users_csv(tmp_path):
    _write(tmp_path / "storycloze" / "cloze_test_val__spring2016.csv", ",")
    (plan,) = plan_tasks(RunConfig(models=("x",), tasks=("storycloze_2016",), data_dir=tmp_path, prompts=("lmeval",)))
    first, second = plan.instances
    assert first.query == "Ana bought a kite. She took it to the beach. The wind was strong. The kite flew high."
    assert first.choices == ("Ana was delighted.", "Ana hated kites.") and first.target == 0
    assert second.target == 1 and second.doc_id == "s2"


def test_xstorycloze_groups_and_tsv(tmp_path):
    _write(tmp_path / "xstorycloze" / "spring2016.val.sw.tsv.split_20_80_eval.tsv", "\t")
    (plan,) = plan_tasks(RunConfig(models=("x",), tasks=("xstorycloze_sw",), data_dir=tmp_path))
    assert len(plan.instances) == 2 * len(plan.spec.prompts) and plan.spec.language == "sw"
    from assay.tasks.registry import builtin_index

    assert len(builtin_index().groups["xstorycloze"]) == 11


def test_missing_storycloze_data_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError, match="storycloze/cloze_test_val__spring2016.csv"):
        plan_tasks(RunConfig(models=("x",), tasks=("storycloze_2016",), data_dir=tmp_path))
