"""Tests for assay.data.sources (local data files, pins, renaming, filtering)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay.data import sources
from assay.data.sources import BUILTIN_DIR, data_dir, load_documents, load_local, sha256_file
from assay.errors import DataError
from assay.tasks.spec import DatasetSpec, LocalSource

ROWS = [
    {"id": "a", "q": "one", "label": 0},
    {"id": "b", "q": "two", "label": 1},
    {"id": "c", "q": "three", "label": 1},
]


def shared_data_dir() -> Path:
    env = os.environ.get("ASSAY_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dataset(path: str, **kw) -> DatasetSpec:
    local = {k: kw.pop(k) for k in ("sha256", "format", "json_field") if k in kw}
    return DatasetSpec(local=LocalSource(path=path, **local), **kw)


# --------------------------------------------------------------------------- formats


def test_jsonl(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    docs = load_local(LocalSource(path="d.jsonl"), tmp_path)
    assert docs.rows == ROWS
    assert docs.revision == sha(path)
    assert docs.origin == str(path)


def test_jsonl_skips_blank_lines_and_bom(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"a": 1}\n\n   \n{"a": 2}\n')
    assert load_local(LocalSource(path=str(path)), tmp_path).rows == [{"a": 1}, {"a": 2}]


def test_json_list(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps(ROWS), encoding="utf-8")
    assert load_local(LocalSource(path="d.json"), tmp_path).rows == ROWS


def test_json_field(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps({"version": 2, "data": ROWS}), encoding="utf-8")
    assert load_local(LocalSource(path="d.json", json_field="data"), tmp_path).rows == ROWS
    with pytest.raises(DataError, match="no key 'rows'"):
        load_local(LocalSource(path="d.json", json_field="rows"), tmp_path)
    with pytest.raises(DataError, match="expected a list of rows"):
        load_local(LocalSource(path="d.json"), tmp_path)


def test_json_malformed(tmp_path):
    (tmp_path / "d.json").write_text('[\n{"a": 1},\n{"a": }\n]', encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.json:3: malformed JSON"):
        load_local(LocalSource(path="d.json"), tmp_path)


def test_rows_must_be_objects(tmp_path):
    (tmp_path / "d.json").write_text("[{}, 3]", encoding="utf-8")
    with pytest.raises(DataError, match="row 2 is not an object"):
        load_local(LocalSource(path="d.json"), tmp_path)


def test_csv(tmp_path):
    (tmp_path / "d.csv").write_text('id,q,label\na,"one, with comma",0\nb,two,1\n', encoding="utf-8")
    rows = load_local(LocalSource(path="d.csv"), tmp_path).rows
    assert rows == [{"id": "a", "q": "one, with comma", "label": "0"}, {"id": "b", "q": "two", "label": "1"}]


def test_tsv(tmp_path):
    (tmp_path / "d.tsv").write_text("sentence\tlabel\nit's, fine\t1\nbad\t0\n", encoding="utf-8")
    rows = load_local(LocalSource(path="d.tsv"), tmp_path).rows
    assert rows == [{"sentence": "it's, fine", "label": "1"}, {"sentence": "bad", "label": "0"}]


def test_explicit_format_overrides_extension(tmp_path):
    (tmp_path / "d.txt").write_text("a\tb\n1\t2\n", encoding="utf-8")
    assert load_local(LocalSource(path="d.txt", format="tsv"), tmp_path).rows == [{"a": "1", "b": "2"}]
    with pytest.raises(DataError, match="cannot tell the file format"):
        load_local(LocalSource(path="d.txt"), tmp_path)


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "d.parquet")
    assert load_local(LocalSource(path="d.parquet"), tmp_path).rows == ROWS


def test_jsonl_gz(tmp_path):
    path = tmp_path / "d.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in ROWS).encode()))
    docs = load_local(LocalSource(path="d.jsonl.gz"), tmp_path)
    assert docs.rows == ROWS
    assert docs.revision == sha(path)  # the pin is of the compressed bytes


def test_csv_gz(tmp_path):
    (tmp_path / "d.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n"))
    assert load_local(LocalSource(path="d.csv.gz"), tmp_path).rows == [{"a": "1", "b": "2"}]


# --------------------------------------------------------------------------- errors


def test_sha256_pin_matches(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    docs = load_local(LocalSource(path="d.jsonl", sha256=sha(path)), tmp_path)
    assert docs.rows == ROWS


def test_sha256_pin_mismatch(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", ROWS)
    with pytest.raises(DataError) as ei:
        load_local(LocalSource(path="d.jsonl", sha256="0" * 64), tmp_path)
    assert "sha256" in str(ei.value)
    assert "000000000000" in str(ei.value)


def test_missing_file_names_path_and_data_dir_option(tmp_path):
    with pytest.raises(DataError) as ei:
        load_local(LocalSource(path="sub/absent.jsonl"), tmp_path)
    msg = str(ei.value)
    assert str(tmp_path / "sub" / "absent.jsonl") in msg
    assert "--data-dir" in msg


def test_missing_file_through_load_documents(tmp_path):
    with pytest.raises(DataError, match="--data-dir"):
        load_documents(dataset("absent.jsonl"), "test", tmp_path, "task t")


def test_malformed_jsonl_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": \n{"a": 4}\n', encoding="utf-8")
    with pytest.raises(DataError) as ei:
        load_local(LocalSource(path="d.jsonl"), tmp_path)
    assert f"{path}:4: malformed JSON line" in str(ei.value)


@pytest.mark.parametrize("row", ["1,2", "1,2,3,4"])
def test_csv_wrong_column_count(tmp_path, row):
    path = tmp_path / "d.csv"
    path.write_text(f"a,b,c\n1,2,3\n{row}\n", encoding="utf-8")
    with pytest.raises(DataError) as ei:
        load_local(LocalSource(path="d.csv"), tmp_path)
    assert f"{path}:3:" in str(ei.value)
    assert "the header has 3" in str(ei.value)


@pytest.mark.parametrize(("row", "n"), [("1,2", 2), ("1,2,3,4", 4), ("1,2,3,4,5", 5)])
def test_csv_wrong_column_count_reports_actual_count(tmp_path, row, n):
    (tmp_path / "d.csv").write_text(f"a,b,c\n{row}\n", encoding="utf-8")
    with pytest.raises(DataError) as ei:
        load_local(LocalSource(path="d.csv"), tmp_path)
    assert f"row has {n} columns, the header has 3" in str(ei.value)


@pytest.mark.parametrize("before", ['x,"multi\nline",z\n', "\n"])
def test_csv_error_line_is_the_physical_line(tmp_path, before):
    path = tmp_path / "d.csv"
    text = f"a,b,c\n{before}1,2\n"
    path.write_text(text, encoding="utf-8")
    bad_line = text.count("\n")  # the last line holds the short row
    with pytest.raises(DataError) as ei:
        load_local(LocalSource(path="d.csv"), tmp_path)
    assert f"{path}:{bad_line}:" in str(ei.value)


# --------------------------------------------------------------------------- load_documents


def test_row_ids_default_to_row_numbers(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", ROWS)
    docs = load_documents(dataset("d.jsonl"), "test", tmp_path, "task t")
    assert [r["_id"] for r in docs.rows] == ["0", "1", "2"]
    assert [r["q"] for r in docs.rows] == ["one", "two", "three"]


def test_id_field(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [{"idx": 10, "q": "x"}, {"idx": 11, "q": "y"}])
    docs = load_documents(dataset("d.jsonl", id_field="idx"), "test", tmp_path, "task t")
    assert [r["_id"] for r in docs.rows] == ["10", "11"]  # ids are strings
    assert docs.rows[0]["idx"] == 10


def test_missing_id_field(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [{"idx": 1}, {"q": "no id"}])
    with pytest.raises(DataError, match="row 2 has no id field 'idx'"):
        load_documents(dataset("d.jsonl", id_field="idx"), "test", tmp_path, "task t")


def test_fields_rename(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", ROWS)
    docs = load_documents(dataset("d.jsonl", fields={"question": "q", "gold": "label"}), "test", tmp_path, "task t")
    first = docs.rows[0]
    assert first["question"] == "one" and first["gold"] == 0
    assert first["q"] == "one"  # the source name stays available
    assert docs.revision == sha(tmp_path / "d.jsonl")


def test_fields_missing_source_field(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [{"q": "ok"}, {"q": "ok"}, {"question": "renamed"}])
    with pytest.raises(DataError) as ei:
        load_documents(dataset("d.jsonl", fields={"text": "q"}), "test", tmp_path, "task mytask")
    msg = str(ei.value)
    assert "row 3" in msg
    assert "'q'" in msg and "'text'" in msg
    assert "task mytask" in msg


def test_where_filter(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", ROWS)
    docs = load_documents(dataset("d.jsonl", id_field="id", where="label == 1"), "test", tmp_path, "task t")
    assert [r["_id"] for r in docs.rows] == ["b", "c"]


def test_where_filter_sees_renamed_fields_and_row_ids(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", ROWS)
    docs = load_documents(dataset("d.jsonl", fields={"text": "q"}, where="text.startswith('t') and _id != '1'"), "test", tmp_path, "t")
    assert [r["text"] for r in docs.rows] == ["three"]
    assert docs.rows[0]["_id"] == "2"  # row numbers count the rows before filtering


def test_where_that_keeps_nothing(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", ROWS)
    with pytest.raises(DataError) as ei:
        load_documents(dataset("d.jsonl", where="label == 7"), "test", tmp_path, "task t")
    assert "no row" in str(ei.value) and "label == 7" in str(ei.value)


def test_empty_file_has_no_rows(tmp_path):
    (tmp_path / "d.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="has no rows"):
        load_documents(dataset("d.jsonl"), "test", tmp_path, "task t")


# --------------------------------------------------------------------------- paths


def test_builtin_paths_resolve_to_package_dir(tmp_path):
    assert BUILTIN_DIR.is_dir()
    assert (BUILTIN_DIR / "xcopa" / "_xcopa.yaml").is_file()
    path = sources._resolve("builtin:core/data/qa.jsonl", tmp_path)
    assert path == BUILTIN_DIR / "core" / "data" / "qa.jsonl"
    docs = load_documents(dataset("builtin:core/data/classification.jsonl", id_field="id"), "test", tmp_path / "nowhere", "core")
    assert docs.origin == str(BUILTIN_DIR / "core" / "data" / "classification.jsonl")
    assert docs.rows and all("_id" in r for r in docs.rows)


def test_relative_and_absolute_paths(tmp_path):
    assert sources._resolve("x/y.jsonl", tmp_path) == tmp_path / "x" / "y.jsonl"
    absolute = tmp_path / "abs.jsonl"
    assert sources._resolve(str(absolute), Path("/elsewhere")) == absolute


def test_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("ASSAY_DATA_DIR", raising=False)
    work = tmp_path / "checkout"
    work.mkdir()
    monkeypatch.chdir(work)
    assert data_dir() == Path("data")  # nothing there: the name a later error will show
    (tmp_path / "shared" / "data").mkdir(parents=True)
    assert data_dir() == Path("..") / "shared" / "data"  # the benchmark data beside a checkout
    (work / "data").mkdir()
    assert data_dir() == Path("data")  # a checkout's own data/ comes first
    monkeypatch.setenv("ASSAY_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    assert data_dir("explicit") == Path("explicit")


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3000))
def test_sha256_file_equals_hashlib(tmp_path, data):
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- real data


def test_real_xcopa_it_validation():
    root = shared_data_dir()
    task_file = BUILTIN_DIR / "xcopa" / "xcopa_it.yaml"
    local = yaml.safe_load(task_file.read_text(encoding="utf-8"))["dataset"]["local"]
    if not (root / local["path"]).is_file():
        pytest.skip(f"shared benchmark data not found at {root / local['path']}")
    spec = dataset(local["path"], sha256=local["sha256"], id_field="idx")
    docs = load_documents(spec, "validation", root, "task xcopa_it")
    assert len(docs.rows) == 100
    assert docs.revision == local["sha256"]
    assert [r["_id"] for r in docs.rows[:3]] == ["0", "1", "2"]
    assert set(docs.rows[0]) >= {"premise", "choice1", "choice2", "question", "label"}
    assert {r["question"] for r in docs.rows} == {"cause", "effect"}
    assert {r["label"] for r in docs.rows} == {0, 1}
    # the pin is enforced on the real file too
    with pytest.raises(DataError, match="sha256"):
        load_documents(dataset(local["path"], sha256="f" * 64), "validation", root, "task xcopa_it")


def test_id_field_may_name_a_column_as_fields_renames_it(tmp_path):
    """The new user's stumble: `id_field` given the name `fields:` gives a column works as the
    source name does; a column that is neither is one line listing the columns."""
    (tmp_path / "d.jsonl").write_text('{"qid": "a7", "q": "x"}\n{"qid": "b9", "q": "y"}\n')
    for id_field in ("qid", "key"):
        spec = DatasetSpec.model_validate({"local": {"path": "d.jsonl"}, "fields": {"key": "qid"}, "id_field": id_field})
        assert [r["_id"] for r in load_documents(spec, "test", tmp_path, "task t").rows] == ["a7", "b9"]
    spec = DatasetSpec.model_validate({"local": {"path": "d.jsonl"}, "id_field": "id"})
    with pytest.raises(DataError, match=r"row 1 has no id field 'id' \(dataset.id_field; its columns: qid, q\)"):
        load_documents(spec, "test", tmp_path, "task t")
