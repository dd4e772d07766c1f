"""A prompt longer than the model's window is cut from the left, as lm-evaluation-harness
does, and never silently: each result counts the tokens cut, the sample shows them, the task
counts its truncated items, and the terminal and the report say so (issue 13)."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli


GEN = """\
version: 1
task: longgen
output_type: generate
split: test
dataset:
  local: {{path: {path}}}
  id_field: id
target: answer
prompts:
  - id: p
    template: "{{{{ text }}}}\\nAnswer:"
metrics: [exact_match]
generation: {{until: ["\\n"], max_tokens: 4}}
"""

MC = """\
version: 1
task: longmc
output_type: multiple_choice
split: test
dataset:
  local: {{path: {path}}}
  id_field: id
choices: "['yes', 'no']"
target: "0"
prompts:
  - id: p
    template: "{{{{ text }}}}\\nIs this long?"
metrics: [acc]
"""


@pytest.mark.parametrize("model", [
    pytest.param("smollm2-135m-instruct,n_threads=1,max_length=256", marks=pytest.mark.llamacpp, id="llamacpp"),
    pytest.param("hf:smollm2-135m-instruct,max_length=256", marks=pytest.mark.hf, id="hf"),
])
def test_long_prompts_are_cut_counted_and_reported(tmp_path, model):
    # 3,000 words: far past a 256-token window; the second row fits
    long = " ".join(f"word{i % 97}" for i in range(3_000))
    rows = [{"id": "long", "text": long, "answer": "x"}, {"id": "short", "text": "Two plus two?", "answer": "4"}]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "gen.yaml").write_text(GEN.format(path=data))
    (tmp_path / "mc.yaml").write_text(MC.format(path=data))
    out = tmp_path / "run"
    proc = run_cli("run", "-m", model, "-t", f"{tmp_path / 'gen.yaml'},{tmp_path / 'mc.yaml'}", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    label = next(iter(doc["results"]))
    assert doc["models"][label]["args"]["max_length"] == 256
    assert "left" in doc["truncation"]
    for task in ("longgen", "longmc"):
        res = doc["results"][label][task]
        assert res["n_truncated"] == 1 and res["n_items"] == 2, res
        samples = {s["doc_id"]: s for s in map(json.loads, (out / "samples" / label / f"{task}.jsonl").read_text().splitlines())}
        # SmolLM2 reads ~2 tokens per "wordN": thousands of tokens cut, none for the short row
        assert samples["long"]["truncated_tokens"] > 3_000, samples["long"].get("truncated_tokens")
        assert "truncated_tokens" not in samples["short"]
        assert f"read 1 of 2 {task} prompts cut from the left" in proc.stderr
    html = (out / "report.html").read_text()
    assert "prompts cut to fit" in html and f"{label}</strong>: 1 of 2 items" in html
    md = (out / "report.md").read_text()
    assert f"{label}: 1 of 2 items" in md
