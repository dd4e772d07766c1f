"""model-index export: the exact shape of the model cards, a YAML round trip, and a merge into
a README that leaves every other key and the body untouched."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import run_cli

from assay.errors import AssayError
from assay.reports.modelindex import merge_readme, model_index
from assay.results import RunResults, parse_results


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
    assert xnli == {
        "task": {"type": "Natural language inference"},
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
    assert meta["model-index"][0]["results"][0]["metrics"][0]["value"] == 38.47
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
    out = run_cli("export", "model-index", str(run))
    assert out.returncode == 0 and yaml.safe_load(out.stdout)["model-index"][0]["results"][1]["dataset"]["name"] == "HumanEval"
    missing = run_cli("export", "model-index", str(tmp_path))
    assert missing.returncode == 2 and "no results yet" in missing.stderr
