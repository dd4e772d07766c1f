"""The benchmark-distribution formats of assay.data.sources: squad (nested JSON, also zipped),
conll (token-per-line NER) and lines (parallel line files). Small files written here; the
real files are read by tests/tasks/test_builtin_generative.py."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from assay.data.sources import load_documents, load_local
from assay.errors import DataError
from assay.tasks.spec import DatasetSpec, LocalSource


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- squad

SQUAD = {
    "version": "1.1",
    "data": [
        {"title": "Alder", "paragraphs": [
            {"context": "Brenmoor was founded in 1742 by wool merchants.", "qas": [
                {"id": "q1", "question": "When was Brenmoor founded?", "answers": [{"text": "1742", "answer_start": 24}, {"text": "in 1742", "answer_start": 21}]},
                {"id": "q2", "question": "Who founded it?", "answers": [{"text": "wool merchants", "answer_start": 32}]},
            ]},
            {"context": "Its main employer is a glass factory.", "qas": [
                {"id": "q3", "question": "What is the main employer?", "answers": [{"text": "a glass factory", "answer_start": 21}]},
            ]},
        ]},
        {"title": "Second", "paragraphs": [{"context": "Nothing here.", "qas": [
            {"id": "q4", "question": "Is it?", "answers": [], "is_impossible": True},
        ]}]},
    ],
}


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    path.write_bytes(buf.getvalue())
    return path


def test_squad_flattens_one_row_per_question(tmp_path):
    (tmp_path / "dev.json").write_text(json.dumps(SQUAD), encoding="utf-8")
    rows = load_local(LocalSource(path="dev.json", format="squad"), tmp_path).rows
    assert [r["id"] for r in rows] == ["q1", "q2", "q3", "q4"]
    assert rows[0] == {"id": "q1", "title": "Alder", "context": "Brenmoor was founded in 1742 by wool merchants.",
                       "question": "When was Brenmoor founded?", "answers": ["1742", "in 1742"], "is_impossible": False}
    assert rows[2]["context"] == "Its main employer is a glass factory." and rows[2]["title"] == "Alder"
    assert rows[3]["answers"] == [] and rows[3]["is_impossible"] is True


def test_squad_reads_a_single_member_zip_and_pins_the_zip(tmp_path):
    path = _zip(tmp_path / "dev-v1.1.json.zip", {"dev-v1.1.json": json.dumps(SQUAD).encode()})
    docs = load_local(LocalSource(path=path.name, format="squad", sha256=sha(path)), tmp_path)
    assert len(docs.rows) == 4 and docs.revision == sha(path)
    # the json inside a zip is also recognised by name for the plain json format
    (tmp_path / "rows.json.zip").write_bytes(_zip(tmp_path / "tmp.zip", {"rows.json": b'[{"a": 1}]'}).read_bytes())
    assert load_local(LocalSource(path="rows.json.zip"), tmp_path).rows == [{"a": 1}]


def test_zip_with_two_members_or_broken_is_an_error(tmp_path):
    _zip(tmp_path / "two.json.zip", {"a.json": b"[]", "b.json": b"[]"})
    with pytest.raises(DataError, match=r"two\.json\.zip: a \.zip must hold exactly one file, this one holds 2"):
        load_local(LocalSource(path="two.json.zip", format="squad"), tmp_path)
    (tmp_path / "bad.json.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=r"bad\.json\.zip: not a readable zip file"):
        load_local(LocalSource(path="bad.json.zip", format="squad"), tmp_path)


def test_squad_malformed_json_names_the_line(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text('{"data": [\n  {"title": "x",\n   "paragraphs": [}\n]}', encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:3: malformed JSON"):
        load_local(LocalSource(path="dev.json", format="squad"), tmp_path)


@pytest.mark.parametrize(("edit", "where"), [
    (lambda d: d["data"][0]["paragraphs"][1]["qas"][0].pop("question"), r"data\[0\]\.paragraphs\[1\]\.qas\[0\]: no 'question'"),
    (lambda d: d["data"][1]["paragraphs"][0].pop("context"), r"data\[1\]\.paragraphs\[0\]: no 'context'"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][1]["answers"].__setitem__(0, {"start": 3}), r"data\[0\]\.paragraphs\[0\]\.qas\[1\]\.answers\[0\]: no 'text'"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].__setitem__("answers", []), r"data\[0\]\.paragraphs\[0\]\.qas\[0\]: no answers and not marked is_impossible"),
    (lambda d: d["data"][0]["paragraphs"][0].__setitem__("qas", {"id": 1}), r"data\[0\]\.paragraphs\[0\]\.qas: expected a list, got dict"),
    (lambda d: d.pop("data"), r"not SQuAD-style JSON: no 'data' list"),
])
def test_squad_structure_errors_name_the_json_path(tmp_path, edit, where):
    doc = json.loads(json.dumps(SQUAD))
    edit(doc)
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{path}: {where}"):
        load_local(LocalSource(path="dev.json", format="squad"), tmp_path)


# --------------------------------------------------------------------------- conll

CONLL = """-DOCSTART- -X- -X- O

SOCCER NN B-NP O
- : O O
JAPAN NNP B-NP B-LOC
GET VB B-VP O
, , O O
CHINA NNP B-NP B-PER
IN IN B-PP O
DEFEAT NN I-NP O
. . O O

Nadim NNP B-NP B-PER
Ladki NNP I-NP I-PER

-DOCSTART- -X- -X- O

The DT B-NP O
New NNP I-NP B-ORG
York NNP I-NP I-ORG
Times NNP I-NP I-ORG
( ( O O
" " O O
Gray NNP B-NP B-MISC
Lady NNP I-NP I-MISC
" " O O
) ) O O
said VBD B-VP O
it PRP B-NP O
's VBZ B-VP O
fine JJ B-ADJP O
.
"""


def _conll(tmp_path: Path, text: str, name: str = "test.txt", **opts) -> list[dict]:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return load_local(LocalSource(path=name, format="conll", conll=opts or None), tmp_path).rows


def test_conll_sentences_entities_and_text(tmp_path):
    text = CONLL.replace("\n.\n", "\n. . O O\n")
    rows = _conll(tmp_path, text, tag_column=3)
    assert [r["id"] for r in rows] == ["0", "1", "2"]  # -DOCSTART- lines are not sentences
    assert [r["line"] for r in rows] == [3, 13, 18]
    first = rows[0]
    assert first["tokens"][:3] == ["SOCCER", "-", "JAPAN"] and first["tags"][2] == "B-LOC"
    assert first["text"] == "SOCCER - JAPAN GET, CHINA IN DEFEAT."
    assert first["entities"] == [{"text": "JAPAN", "type": "LOC"}, {"text": "CHINA", "type": "PER"}]
    assert rows[1] == {"id": "1", "line": 13, "tokens": ["Nadim", "Ladki"], "tags": ["B-PER", "I-PER"],
                       "text": "Nadim Ladki", "entities": [{"text": "Nadim Ladki", "type": "PER"}]}
    third = rows[2]
    assert third["text"] == 'The New York Times ("Gray Lady") said it\'s fine.'
    assert third["entities"] == [{"text": "New York Times", "type": "ORG"}, {"text": "Gray Lady", "type": "MISC"}]


def test_conll_without_detokenising_keeps_every_space(tmp_path):
    rows = _conll(tmp_path, "Hello O\n, O\nParis B-LOC\n! O\n", detokenize=False)
    assert rows[0]["text"] == "Hello , Paris !"
    assert rows[0]["entities"] == [{"text": "Paris", "type": "LOC"}]


@pytest.mark.parametrize(("tags", "want"), [
    # IOB1: I- starts an entity after O or after another type; B- only between two of one type
    (["I-PER", "I-PER", "B-PER", "O", "I-LOC"], [("a b", "PER"), ("c", "PER"), ("e", "LOC")]),
    # IOB2 / BIO
    (["B-ORG", "I-ORG", "B-ORG", "I-PER", "O"], [("a b", "ORG"), ("c", "ORG"), ("d", "PER")]),
    # BIOES
    (["S-LOC", "B-PER", "I-PER", "E-PER", "S-PER"], [("a", "LOC"), ("b c d", "PER"), ("e", "PER")]),
    # an entity that runs to the end of the sentence
    (["O", "O", "O", "B-MISC", "I-MISC"], [("d e", "MISC")]),
])
def test_conll_tag_schemes(tmp_path, tags, want):
    text = "".join(f"{tok}\t{tag}\n" for tok, tag in zip("abcde", tags))
    rows = _conll(tmp_path, text)
    assert [(e["text"], e["type"]) for e in rows[0]["entities"]] == want


def test_conll_types_map_and_token_prefix(tmp_path):
    text = "en:Ed\tB-person\nen:at\tO\nen:Acme\tB-corporation\nen:Inc\tI-corporation\n\n\ufeff\nen:Nike\tB-product\ufeff\n"
    rows = _conll(tmp_path, text, token_prefix="en:", types={"person": "PER", "corporation": "ORG", "product": "MISC"})
    assert rows[0]["tokens"] == ["Ed", "at", "Acme", "Inc"]
    assert rows[0]["entities"] == [{"text": "Ed", "type": "PER"}, {"text": "Acme Inc", "type": "ORG"}]
    assert rows[0]["tags"] == ["B-person", "O", "B-corporation", "I-corporation"]  # as written
    # a line holding only U+FEFF is blank; a stray U+FEFF leaves the tag
    assert len(rows) == 2 and rows[1]["entities"] == [{"text": "Nike", "type": "MISC"}]


@pytest.mark.parametrize(("text", "opts", "message"), [
    ("a O\nb B-PER\nc X-PER\n", {}, r":3: tag 'X-PER' is not O or B-/I-/E-/S-TYPE"),
    ("a O\nb B-PER\nc B-\n", {}, r":3: tag 'B-' is not O or B-/I-/E-/S-TYPE"),
    ("a NN O\nb NN B-PER\n\nc B-LOC\n", {}, r":4: 2 columns, the file's first token line has 3"),
    ("a O\nlonely\n", {}, r":2: expected a token and a tag, got 'lonely'"),
    ("a\tO\nb\tB-PER\n", {"tag_column": 3}, r":1: no column 3 for the tag \(the line has 2\)"),
    ("en:a\tO\nde:b\tO\n", {"token_prefix": "en:"}, r":2: token 'de:b' does not start with the prefix 'en:'"),
    ("a\tB-person\n\nb\tB-group\n", {"types": {"person": "PER"}}, r":3: entity type 'group' is not in dataset\.local\.conll\.types \(person\)"),
])
def test_conll_malformed_input_names_file_and_line(tmp_path, text, opts, message):
    path = tmp_path / "bad.conll"
    with pytest.raises(DataError, match=rf"^{path}{message}"):
        _conll(tmp_path, text, name="bad.conll", **opts)


TOKENS = st.lists(st.sampled_from(["The", "U.S.", ",", ".", "(", ")", '"', "'s", "$", "10", "n't", "New", "York", "%", "-", ":"]), min_size=1, max_size=14)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(TOKENS, st.lists(st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "S-ORG", "E-LOC"]), min_size=14, max_size=14),
       st.booleans())
def test_conll_entity_text_is_always_a_substring_of_the_text(tmp_path, tokens, tags, detok):
    text = "".join(f"{t}\t{g}\n" for t, g in zip(tokens, tags))
    (row,) = _conll(tmp_path, text, detokenize=detok)
    assert row["tokens"] == tokens
    assert row["text"].replace(" ", "") == "".join(tokens)  # only spaces are added
    for e in row["entities"]:
        assert e["text"] in row["text"] and e["type"] in ("PER", "LOC", "ORG")
    # an entity starts at every tag but O, except I-/E- right after a B-/I- of the same type
    tags = tags[: len(tokens)]
    continues = [i > 0 and g[0] in "IE" and tags[i - 1][0] in "BI" and tags[i - 1][2:] == g[2:] for i, g in enumerate(tags)]
    assert len(row["entities"]) == sum(g != "O" and not c for g, c in zip(tags, continues))


# --------------------------------------------------------------------------- lines


def _lines_src(**kw) -> LocalSource:
    return LocalSource(path="test_text.txt", format="lines", columns=["text"],
                       parallel=[{"path": "test_labels.txt", "column": "label", **kw}])


def test_lines_with_a_parallel_labels_file(tmp_path):
    text = tmp_path / "test_text.txt"
    labels = tmp_path / "test_labels.txt"
    text.write_bytes("first tweet \nsecond\u2028same line\r\n\nlast".encode())  # no final newline, a blank tweet
    labels.write_text("1\n0\n2\n1\n", encoding="utf-8")
    docs = load_local(_lines_src(sha256=sha(labels)), tmp_path)
    assert docs.rows == [{"text": "first tweet ", "label": "1"}, {"text": "second\u2028same line", "label": "0"},
                         {"text": "", "label": "2"}, {"text": "last", "label": "1"}]
    # the revision covers both files
    assert docs.revision == hashlib.sha256(f"{sha(text)} {sha(labels)}".encode()).hexdigest()
    labels.write_text("1\n0\n2\n0\n", encoding="utf-8")
    assert load_local(_lines_src(), tmp_path).revision != docs.revision


def test_lines_alone_default_column(tmp_path):
    (tmp_path / "t.txt").write_text("a\nb\n", encoding="utf-8")
    docs = load_local(LocalSource(path="t.txt", format="lines"), tmp_path)
    assert docs.rows == [{"text": "a"}, {"text": "b"}] and docs.revision == sha(tmp_path / "t.txt")


@pytest.mark.parametrize(("labels", "line", "counts"), [("1\n0\n", 3, "has 2 lines"), ("1\n0\n1\n1\n", 4, "has 4 lines")])
def test_lines_count_mismatch_names_the_file_and_line(tmp_path, labels, line, counts):
    (tmp_path / "test_text.txt").write_text("a\nb\nc\n", encoding="utf-8")
    (tmp_path / "test_labels.txt").write_text(labels, encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{tmp_path / 'test_labels.txt'}:{line}: {counts}, .*test_text\.txt has 3"):
        load_local(_lines_src(), tmp_path)


def test_lines_parallel_pin_missing_file_and_column_clash(tmp_path):
    (tmp_path / "test_text.txt").write_text("a\n", encoding="utf-8")
    with pytest.raises(DataError, match="parallel data file not found: .*test_labels.txt"):
        load_local(_lines_src(), tmp_path)
    (tmp_path / "test_labels.txt").write_text("1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test_labels\.txt: sha256 is .*the file changed"):
        load_local(_lines_src(sha256="0" * 64), tmp_path)
    clash = LocalSource(path="test_text.txt", format="lines", parallel=[{"path": "test_labels.txt", "column": "text"}])
    with pytest.raises(DataError, match="column 'text' is already taken"):
        load_local(clash, tmp_path)


def test_lines_not_utf8_names_the_line(tmp_path):
    (tmp_path / "t.txt").write_bytes(b"ok\nalso ok\nbad \xff byte\n")
    with pytest.raises(DataError, match=rf"^{tmp_path / 't.txt'}:3: not UTF-8 text"):
        load_local(LocalSource(path="t.txt", format="lines"), tmp_path)


def test_lines_through_load_documents_with_where(tmp_path):
    (tmp_path / "test_text.txt").write_text("a\nb\nc\n", encoding="utf-8")
    (tmp_path / "test_labels.txt").write_text("1\n0\n1\n", encoding="utf-8")
    docs = load_documents(DatasetSpec(local=_lines_src(), where="label == '1'"), "test", tmp_path, "task t")
    assert [(r["_id"], r["text"]) for r in docs.rows] == [("0", "a"), ("2", "c")]


# --------------------------------------------------------------------------- spec checks


@pytest.mark.parametrize(("kw", "message"), [
    ({"path": "x.txt", "conll": {"tag_column": 1}}, "'conll' options need format: conll"),
    ({"path": "x.txt", "format": "tsv", "parallel": [{"path": "y", "column": "c"}]}, "'parallel' files need format: lines"),
    ({"path": "x.txt", "format": "lines", "columns": ["a", "b"]}, "format lines takes one column name"),
    ({"path": "x.json", "format": "squad", "json_field": "data"}, "json_field does not apply to format squad"),
    ({"path": "x", "format": "conll", "columns": ["a"]}, "columns does not apply to format conll"),
    ({"path": "x", "format": "lines", "parallel": [{"path": "y", "column": "c", "sha256": "abc"}]}, "64 hexadecimal"),
    ({"path": "x", "format": "conll", "conll": {"tag_colum": 1}}, "tag_colum"),
])
def test_format_options_are_checked(kw, message):
    with pytest.raises(ValidationError, match=message):
        LocalSource(**kw)
