"""The hub code path (`datasets.load_dataset`) driven offline: the same call loads a dataset
folder from disk, so nothing is downloaded."""

from __future__ import annotations

import json

import pytest

from assay.data.sources import load_documents
from assay.errors import DataError
from assay.tasks.spec import DatasetSpec

pytest.importorskip("datasets", reason="datasets is not installed (pip install 'assay[datasets]')")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))


def _dataset_folder(tmp_path):
    folder = tmp_path / "my_copa"
    folder.mkdir()
    rows = [{"premise": f"P{i}.", "choice1": "a", "choice2": "b", "question": "cause", "label": i % 2, "idx": i} for i in range(5)]
    (folder / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "test.jsonl").write_text(json.dumps(rows[0]) + "\n")
    return folder


def test_hub_source_loads_a_split_with_ids_and_fields(tmp_path):
    folder = _dataset_folder(tmp_path)
    spec = DatasetSpec.model_validate({"hub": {"id": str(folder)}, "id_field": "idx", "fields": {"text": "premise"}})
    docs = load_documents(spec, "validation", tmp_path, "task t")
    assert len(docs.rows) == 5 and docs.origin == f"hub:{folder}"
    assert [r["_id"] for r in docs.rows] == ["0", "1", "2", "3", "4"]
    assert docs.rows[2]["text"] == "P2." and docs.revision


def test_local_file_wins_and_hub_is_the_fallback(tmp_path):
    folder = _dataset_folder(tmp_path)
    spec = DatasetSpec.model_validate({"local": {"path": "absent.jsonl"}, "hub": {"id": str(folder), "split": "test"}})
    docs = load_documents(spec, "validation", tmp_path, "task t")
    assert len(docs.rows) == 1  # the hub's test split, since the local file is absent
    (tmp_path / "absent.jsonl").write_text('{"premise": "x"}\n{"premise": "y"}\n')
    assert len(load_documents(spec, "validation", tmp_path, "task t").rows) == 2


def test_unreachable_hub_dataset_is_one_clear_error(tmp_path):
    spec = DatasetSpec.model_validate({"hub": {"id": "no-such-org/no-such-dataset"}})
    # offline (as every test is), one line saying what to do, whether HF_HUB_OFFLINE was set or
    # an earlier load found the hub unreachable
    with pytest.raises(DataError, match="hub dataset no-such-org/no-such-dataset is not in the local Hugging Face cache and .*: load it once where the hub can be reached"):
        load_documents(spec, "validation", tmp_path, "task t")
