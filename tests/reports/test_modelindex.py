"""model-index export: the exact shape of the model cards, a YAML round trip, a merge into a
README that leaves every other key and the body untouched; the headline (median) by default,
partial runs refused or their counts written, and task types from the card, never the family."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import run_cli

from assay.cli import main
from assay.errors import AssayError
from assay.reports.modelindex import merge_readme, model_index
from assay.results import RunResults, parse_results, read_results
from assay.tasks.card import default_task_type
from assay.tasks.loader import load_task
from assay.tasks.registry import builtin_index


def _raw() -> dict:
    def metric(values: dict[str, float]) -> dict:
        vals = sorted(values.values())
        return {"value": vals[len(vals) // 2], "stderr": 0.01, "max": max(vals), "min": min(vals), "mean": sum(vals) / len(vals),
                "per_prompt": {k: {"value": v, "stderr": 0.01, "n": 100} for k, v in values.items()}}

    return {
        "results": {"mt0-small": {
            "xnli_en": {"primary": "acc", "metrics": {"acc": metric({"a": 0.3847, "b": 0.35, "c": 0.36}), "acc_norm": metric({"a": 0.4})}, "n_items": 300},
            "humaneval": {"primary": "pass@1", "metrics": {"pass@1": metric({"p": 0.1355}), "pass@10": metric({"p": 0.2628}), "pass@100": metric({"p": 0.4507})}, "n_items": 164},
            "wikitext": {"primary": "perplexity", "metrics": {"perplexity": metric({"p": 23.456789}), "bits_per_byte": metric({"p": 0.8765})}, "n_items": 62},
        }},
        "tasks": {
            "xnli_en": {"family": "Natural language inference", "language": "en", "dataset": {"split": "validation", "revision": "abc123"},
                        "card": {"type": "xnli", "name": "XNLI (en)", "config": "en"}},
            "humaneval": {"family": "Program synthesis", "language": "en", "dataset": {"split": "test", "revision": "def456"},
                          "card": {"type": "openai_humaneval", "name": "HumanEval", "config": ""}},
            "wikitext": {"family": "Language modelling", "dataset": {"split": "test", "revision": "w1"},
                         "card": {"type": "wikitext", "name": "WikiText-2", "config": ""}},
        },
        "assay_results_version": 2,
    }


def _doc() -> RunResults:
    return parse_results(_raw(), "test")


def test_shape_matches_the_model_cards():
    block = model_index(_doc(), "mt0-small", "max")
    parsed = yaml.safe_load(yaml.safe_dump(block, sort_keys=False))
    (entry,) = parsed["model-index"]
    assert entry["name"] == "mt0-small"
    xnli, code, wiki = entry["results"]
    # these results predate the card's task_type: it is read from the metrics, not the family
    assert [r["task"] for r in (code, wiki)] == [{"type": "text-generation"}] * 2
    assert xnli == {
        "task": {"type": "multiple-choice"},
        "dataset": {"type": "xnli", "name": "XNLI (en)", "config": "en", "split": "validation", "revision": "abc123"},
        "metrics": [{"type": "Accuracy", "value": 38.47}, {"type": "Accuracy (length-normalised)", "value": 40.0}],
    }
    # raw metrics are written as computed: a bits-per-byte below 1 is not a fraction to scale
    assert wiki["metrics"] == [{"type": "Perplexity", "value": 23.4568}, {"type": "Bits per Byte", "value": 0.8765}]
    assert [m["type"] for m in code["metrics"]] == ["Pass@1", "Pass@10", "Pass@100"]
    assert [m["value"] for m in code["metrics"]] == [13.55, 26.28, 45.07]
    assert "config" not in code["dataset"]


def test_median_aggregate_and_unknown_model():
    block = model_index(_doc(), "mt0-small", "median")
    assert block["model-index"][0]["results"][0]["metrics"][0]["value"] == 36.0
    assert model_index(_doc(), "mt0-small") == block  # the default is the headline, not the best prompt
    assert model_index(_doc(), "mt0-small", "max")["model-index"][0]["results"][0]["metrics"][0]["value"] == 38.47
    with pytest.raises(AssayError, match="no model 'nope'"):
        model_index(_doc(), "nope")


README = """---
language:
- en
- fr   # a comment that must survive
license: apache-2.0
model-index:
- name: old
  results: []
tags: [text-generation]
---

# My model

Body text with --- dashes inside.
"""


def test_merge_replaces_only_the_model_index_block():
    merged = merge_readme(README, model_index(_doc(), "mt0-small"))
    front, body = merged.split("\n---\n", 1)
    assert body == README.split("\n---\n", 1)[1]
    assert "- fr   # a comment that must survive\n" in front and "license: apache-2.0\n" in front
    assert "tags: [text-generation]" in front and "name: old" not in front
    meta = yaml.safe_load(front.removeprefix("---\n"))
    assert meta["license"] == "apache-2.0" and meta["tags"] == ["text-generation"]
    assert meta["model-index"][0]["results"][0]["metrics"][0]["value"] == 36.0  # the median, the default
    # merging twice gives the same text
    assert merge_readme(merged, model_index(_doc(), "mt0-small")) == merged


def test_merge_into_a_readme_without_front_matter():
    merged = merge_readme("# Title\n\nText.\n", model_index(_doc(), "mt0-small"))
    assert merged.startswith("---\nmodel-index:\n") and merged.endswith("---\n# Title\n\nText.\n")


def test_export_command_on_a_results_file(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(_raw()))
    readme = tmp_path / "README.md"
    readme.write_text(README)
    proc = run_cli("export", "model-index", str(run), "--readme", str(readme), "--name", "bigscience/mt0-small")
    assert proc.returncode == 0, proc.stderr
    meta = yaml.safe_load(readme.read_text().split("\n---\n")[0].removeprefix("---\n"))
    assert meta["model-index"][0]["name"] == "bigscience/mt0-small"
    assert "assay: exporting the median over prompt templates (the headline); --aggregate max for the best prompt" in proc.stderr
    out = run_cli("export", "model-index", str(run))
    assert out.returncode == 0 and yaml.safe_load(out.stdout)["model-index"][0]["results"][1]["dataset"]["name"] == "HumanEval"
    missing = run_cli("export", "model-index", str(tmp_path))
    assert missing.returncode == 2 and "no results yet" in missing.stderr


# --------------------------------------------------------------------------- real runs (mock model)

TASK = """task: mine_nli
family: Natural language inference
language: fr
output_type: multiple_choice
dataset: {local: {path: 'builtin:core/data/classification.jsonl'}, id_field: id, where: "task == 'sentiment'"}
choices: "['positive', 'negative']"
target: label
prompts:
  - {id: a, template: 'Review: {{ text }}\\nSentiment:'}
  - {id: b, template: 'Text: {{ text }}\\nIs it positive or negative?'}
  - {id: c, template: '{{ text }}\\nThe review is'}
metrics: [acc]
"""
N_DOCS = 32  # the sentiment documents of the built-in core data


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same three-prompt task on the mock model: the first 10 documents, and all of them."""
    root = tmp_path_factory.mktemp("runs")
    (root / "t.yaml").write_text(TASK)
    out = {"limit": root / "limit10", "full": root / "full"}
    assert main(["run", "-m", "mock:m", "-t", str(root / "t.yaml"), "--limit", "10", "-o", str(out["limit"]), "-q"]) == 0
    assert main(["run", "-m", "mock:m", "-t", str(root / "t.yaml"), "-o", str(out["full"]), "-q"]) == 0
    return out


def _export(capsys, *args: str) -> tuple[int, dict | None, str]:
    capsys.readouterr()
    rc = main(["export", "model-index", *args])
    cap = capsys.readouterr()
    return rc, (yaml.safe_load(cap.out) if rc == 0 else None), cap.err


def test_a_limited_run_is_refused_in_one_line(runs, capsys):
    rc, _, err = _export(capsys, str(runs["limit"]))
    assert rc == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("assay: error: partial results")
    assert f"mine_nli scored 10 of {N_DOCS} items; the run was made with --limit 10: " in line
    assert "rerun without --limit, or pass --allow-partial" in line


def test_allow_partial_writes_the_item_count(runs, capsys):
    rc, block, _ = _export(capsys, str(runs["limit"]), "--allow-partial")
    assert rc == 0 and block is not None
    (entry,) = block["model-index"][0]["results"]
    assert entry["dataset"]["split"] == "test"
    assert entry["dataset"]["args"] == {"items": 10, "items_total": N_DOCS, "limit": 10}
    assert [m["name"] for m in entry["metrics"]] == [f"Accuracy (first 10 of {N_DOCS} items)"]


def test_missing_items_are_refused_and_counted(runs, tmp_path, capsys):
    """No --limit, but two documents never scored (an unfinished run): the same refusal."""
    raw = json.loads((runs["full"] / "results.json").read_text())
    res = raw["results"]["m"]["mine_nli"]
    res["n_docs"], res["n_incomplete"] = N_DOCS - 2, 6
    (tmp_path / "results.json").write_text(json.dumps(raw))
    rc, _, err = _export(capsys, str(tmp_path))
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert f"mine_nli scored 30 of {N_DOCS} items (6 instances unfinished); items are missing: " in err
    assert "finish the run (run the same command again), or pass --allow-partial" in err
    rc, block, _ = _export(capsys, str(tmp_path), "--allow-partial")
    assert rc == 0 and block is not None
    (entry,) = block["model-index"][0]["results"]
    assert entry["dataset"]["args"] == {"items": 30, "items_total": N_DOCS}
    assert entry["metrics"][0]["name"] == f"Accuracy (30 of {N_DOCS} items)"


def test_a_full_run_exports_the_headline_median_by_default(runs, capsys):
    doc = read_results(runs["full"])
    acc = doc.results["m"]["mine_nli"].metrics["acc"]
    assert doc.tasks["mine_nli"].dataset.n_docs == N_DOCS == doc.results["m"]["mine_nli"].n_docs
    assert acc.max is not None and acc.value is not None and acc.max > acc.value  # the best prompt is not the headline
    rc, block, err = _export(capsys, str(runs["full"]))
    assert rc == 0 and block is not None
    assert err.strip().splitlines() == ["assay: exporting the median over prompt templates (the headline); --aggregate max for the best prompt"]
    (entry,) = block["model-index"][0]["results"]
    assert entry["metrics"] == [{"type": "Accuracy", "value": round(acc.value * 100, 2)}]  # no count: the whole split
    assert "args" not in entry["dataset"]
    rc, best, err = _export(capsys, str(runs["full"]), "--aggregate", "max")
    assert rc == 0 and best is not None and "best prompt" in err
    assert best["model-index"][0]["results"][0]["metrics"][0]["value"] == round(acc.max * 100, 2)


def test_task_type_and_config_come_from_the_card_not_the_family_or_language(runs, capsys, tmp_path):
    rc, block, _ = _export(capsys, str(runs["full"]))
    assert rc == 0 and block is not None
    (entry,) = block["model-index"][0]["results"]
    # family "Natural language inference" and language fr: neither is a task type or a config
    assert entry["task"] == {"type": "multiple-choice"}
    assert entry["dataset"]["name"] == "MINE (fr)" and "config" not in entry["dataset"]
    (tmp_path / "t.yaml").write_text(TASK + "card: {type: mine, task_type: text-classification, config: fr}\n")
    card = load_task(tmp_path / "t.yaml").card_info()
    assert card["task_type"] == "text-classification" and card["config"] == "fr"
    raw = json.loads((runs["full"] / "results.json").read_text())
    raw["tasks"]["mine_nli"]["card"] = card
    (tmp_path / "results.json").write_text(json.dumps(raw))
    rc, block, _ = _export(capsys, str(tmp_path))
    assert rc == 0 and block is not None
    (entry,) = block["model-index"][0]["results"]
    assert entry["task"] == {"type": "text-classification"} and entry["dataset"]["config"] == "fr"


@pytest.mark.parametrize(("output_type", "metrics", "images", "expected"), [
    ("multiple_choice", ["acc", "acc_norm"], False, "multiple-choice"),
    ("multiple_choice", ["acc", "macro_f1"], False, "text-classification"),
    ("multiple_choice", ["acc"], True, "image-classification"),
    ("generate", ["label_acc", "macro_f1"], False, "text-classification"),
    ("generate", ["f1", "exact_match"], False, "question-answering"),
    ("generate", ["entity_f1", "entity_f1_typed"], False, "token-classification"),
    ("generate", ["pass_at_k"], False, "text-generation"),
    ("generate", ["number_match"], False, "text-generation"),
    ("generate", ["cider", "bleu4"], True, "image-to-text"),
    ("generate", ["vqa_accuracy"], True, "visual-question-answering"),
    ("rolling", ["perplexity"], False, "text-generation"),
    ("loglikelihood", ["acc", "perplexity"], False, "text-generation"),
    ("match", ["group_score"], True, "zero-shot-image-classification"),
    (None, ["acc", "acc_norm"], False, "multiple-choice"),  # older results: from the metric names
    (None, ["pass@1", "pass@10"], False, "text-generation"),
    (None, ["entity_f1[PER]"], False, "token-classification"),
])
def test_default_task_type(output_type, metrics, images, expected):
    assert default_task_type(output_type, metrics, images) == expected


# content hashes of built-in tasks from before CardSpec had task_type: stored runs stay valid
PINNED = {"core_sentiment_choice": "6e44fa8cab92fe31", "hellaswag": "df85deec1e71c025", "shapes_match": "f8c97ba5a52a1fec"}
# the seed cards' datasets set the human task type the mT0/BLOOMZ cards publish (MISSION.md)
SEED_TYPES = {"xnli_en": "Natural language inference", "anli_r1": "Natural language inference", "rte": "Natural language inference",
              "cb": "Natural language inference", "winogrande": "Coreference resolution", "xwinograd_en": "Coreference resolution",
              "copa": "Sentence completion", "xcopa_id": "Sentence completion", "storycloze_2016": "Sentence completion",
              "xstorycloze_ar": "Sentence completion", "humaneval": "Program synthesis"}


def test_an_unset_task_type_leaves_content_hashes_as_they_were(tmp_path):
    index = builtin_index()
    for task, digest in PINNED.items():
        assert load_task(index.tasks[task]).content_hash() == digest, task
    for task, kind in SEED_TYPES.items():
        assert load_task(index.tasks[task]).card_info()["task_type"] == kind, task
    for path in index.tasks.values():
        spec = load_task(path)
        assert ("task_type" in spec.model_dump()["card"]) == (spec.card.task_type is not None), path
        assert spec.card_info()["task_type"]
    (tmp_path / "a.yaml").write_text(TASK)
    (tmp_path / "b.yaml").write_text(TASK + "card: {task_type: text-classification}\n")
    assert load_task(tmp_path / "a.yaml").content_hash() != load_task(tmp_path / "b.yaml").content_hash()


def test_a_limit_above_a_tasks_size_cuts_nothing(runs, capsys, tmp_path):
    raw = json.loads((runs["full"] / "results.json").read_text())
    raw["config"]["limit"] = 1000
    (tmp_path / "results.json").write_text(json.dumps(raw))
    rc, block, _ = _export(capsys, str(tmp_path))
    assert rc == 0 and block is not None and "args" not in block["model-index"][0]["results"][0]["dataset"]
    res = raw["results"]["m"]["mine_nli"]
    res["n_docs"] = N_DOCS - 1  # one item missing: not the limit's doing
    (tmp_path / "results.json").write_text(json.dumps(raw))
    rc, _, err = _export(capsys, str(tmp_path))
    assert rc == 2 and f"mine_nli scored {N_DOCS - 1} of {N_DOCS} items; items are missing: finish the run" in err
    rc, block, _ = _export(capsys, str(tmp_path), "--allow-partial")
    assert rc == 0 and block is not None
    (entry,) = block["model-index"][0]["results"]
    assert entry["dataset"]["args"] == {"items": N_DOCS - 1, "items_total": N_DOCS}
    assert entry["metrics"][0]["name"] == f"Accuracy ({N_DOCS - 1} of {N_DOCS} items)"
