"""Parity with lm-evaluation-harness: same data, same prompts, same model, side by side.

    .venv/bin/python bench/parity/run.py [--limit 200] [--tasks xcopa_it,copa,...]

1. Installs lm-evaluation-harness (pinned) in its own virtual environment, bench/.venv-lmeval.
2. Converts each local data file into the schema the harness's task reads, and writes task
   files that `include:` the harness's own definitions (its doc_to_text / doc_to_choice
   functions build the prompts), pointing them at the local file and the same split.
3. Runs the harness (`hf` backend) and assay (`hf` backend, `--prompt lmeval`) on the same
   float32 weights: SmolLM2-135M-Instruct de-quantised from the embedded GGUF once.
4. Prints per task: both accuracies, the difference, the share of items where both pick the
   same choice, and the share whose (context, continuation) strings are byte-identical.
   Target: |Δ acc| <= 0.3 points and >= 99% same choices.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# every figure here is computed, never answered by the response cache shared by runs
os.environ["ASSAY_CACHE"] = "off"
LMEVAL_VERSION = "0.4.13"
VENV = ROOT / "bench" / ".venv-lmeval"
DATA = Path(os.environ.get("ASSAY_DATA_DIR") or ROOT.parent / "shared" / "data").resolve()
LANGS_XCOPA = ["et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh"]
DEFAULT_TASKS = ["xcopa_it", "xcopa_sw", "copa", "arc_easy", "arc_challenge", "hellaswag", "piqa", "winogrande", "mmlu_anatomy", "mmlu_high_school_geography", "mmlu_anatomy_5shot", "xnli_en", "xnli_fr"]


def sh(cmd: list[str], **kw) -> None:
    print("$", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def ensure_lmeval() -> Path:
    py = VENV / "bin" / "python"
    marker = VENV / f".lm-eval-{LMEVAL_VERSION}"
    if not marker.exists():
        sh([sys.executable, "-m", "venv", str(VENV)])
        sh([str(py), "-m", "pip", "install", "-q", "torch==2.13.0", f"lm-eval[hf]=={LMEVAL_VERSION}"])
        marker.touch()
    return py


def lmeval_tasks_dir(py: Path) -> Path:
    out = subprocess.run([str(py), "-c", "import lm_eval, os; print(os.path.dirname(lm_eval.__file__))"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip()) / "tasks"


def dequantised_model() -> Path:
    """The folder assay's hf backend caches when it de-quantises the embedded GGUF."""
    sys.path.insert(0, str(ROOT / "src"))
    from assay.backends.registry import load_backend, parse_model

    b = load_backend(parse_model("hf:smollm2-135m-instruct"))
    src = Path(b.info.args["source"])
    b.close()
    if not (src / "config.json").is_file():  # first load de-quantised it; the cache exists now
        b = load_backend(parse_model("hf:smollm2-135m-instruct"))
        src = Path(b.info.args["source"])
    return src


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _winogrande_row(r: dict) -> dict:
    a, b = r["context_options"]
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    n = a.rfind(" ", 0, n) + 1  # the blank starts at a word boundary
    return {"sentence": a[:n] + "_ " + r["continuation"], "option1": a[n:], "option2": b[n:], "answer": str(r["gold"] + 1)}


def convert(task: str, out: Path) -> tuple[str, dict]:
    """(harness yaml to include, overrides) for one task, writing its data in the harness's schema."""
    if task.startswith("xcopa_"):
        lang = task.split("_")[1]
        f = _write(out / f"{task}.jsonl", _jsonl(DATA / f"xcopa/data/{lang}/val.{lang}.jsonl"))
        return f"xcopa/default_{lang}.yaml", {"validation_split": "validation", "test_split": None, "data": {"validation": f}}
    if task == "copa":
        f = _write(out / "copa.jsonl", _jsonl(DATA / "superglue/COPA/val.jsonl"))
        return "super_glue/copa/default.yaml", {"validation_split": "validation", "data": {"validation": f}}
    if task in ("arc_easy", "arc_challenge"):
        rows = []
        for r in _jsonl(DATA / f"arc/llmfoundry_{task}.jsonl"):
            labels = [chr(65 + i) for i in range(len(r["choices"]))]
            rows.append({"question": r["query"].removeprefix("Question: "), "choices": {"text": r["choices"], "label": labels}, "answerKey": labels[r["gold"]]})
        f = _write(out / f"{task}.jsonl", rows)
        return f"arc/{task}.yaml", {"validation_split": None, "test_split": "test", "data": {"test": f}}
    if task == "hellaswag":
        f = _write(out / "hellaswag.jsonl", [{**r, "label": str(r["label"])} for r in _jsonl(DATA / "hellaswag/hellaswag_val_subset1000.jsonl")])
        return "hellaswag/hellaswag.yaml", {"validation_split": "validation", "data": {"validation": f}}
    if task == "piqa":
        rows = [{"goal": r["query"].removeprefix("Question: ").rstrip("\n"), "sol1": r["choices"][0], "sol2": r["choices"][1], "label": r["gold"]} for r in _jsonl(DATA / "piqa/llmfoundry_piqa.jsonl")]
        f = _write(out / "piqa.jsonl", rows)
        return "piqa/piqa.yaml", {"validation_split": "validation", "data": {"validation": f}}
    if task == "winogrande":
        f = _write(out / "winogrande.jsonl", [_winogrande_row(r) for r in _jsonl(DATA / "winogrande/llmfoundry_winogrande.jsonl")])
        return "winogrande/default.yaml", {"validation_split": "validation", "data": {"validation": f}}
    if task.startswith("mmlu_"):
        subject = task.removeprefix("mmlu_").removesuffix("_5shot")
        files = {}
        for split in ("test", "dev"):
            with (DATA / f"mmlu/{split}/{subject}_{split}.csv").open(newline="", encoding="utf-8") as fh:
                rows = [{"question": r["question"], "choices": [r[f"choice{i}"] for i in range(4)], "answer": int(r["answer"]), "subject": subject} for r in csv.DictReader(fh)]
            files[split] = _write(out / f"{task}.{split}.jsonl", rows)
        return f"mmlu/default/mmlu_{subject}.yaml", {"test_split": "test", "fewshot_split": "dev", "data": files}
    if task.startswith("xnli_"):
        lang = task.split("_")[1]
        ids = {"entailment": 0, "neutral": 1, "contradiction": 2}
        with (DATA / f"xnli/dev-{lang}.tsv").open(newline="", encoding="utf-8") as fh:
            rows = [{"premise": r[0], "hypothesis": r[1], "label": ids[r[2]]} for r in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]
        f = _write(out / f"{task}.jsonl", rows)
        return f"xnli/xnli_{lang}.yaml", {"validation_split": "validation", "data": {"validation": f}}
    raise SystemExit(f"no parity recipe for task {task}")


def harness_task(task: str, lm_tasks: Path, out: Path) -> str:
    base, o = convert(task, out / "data")
    data = o.pop("data")
    cfg = {"include": str(lm_tasks / base), "task": f"parity_{task}", "dataset_path": "json", "dataset_name": None,
           "dataset_kwargs": {"data_files": {k: str(v) for k, v in data.items()}}, "training_split": None, **o}
    if task.endswith("_5shot"):
        cfg["num_fewshot"] = 5
    if "tag" not in cfg:
        cfg["tag"] = []
    path = out / "tasks" / f"parity_{task}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg, indent=1))  # JSON is YAML
    return cfg["task"]


def run_harness(py: Path, tasks: list[str], model_dir: Path, out: Path, limit: int | None, bs: int) -> float:
    cmd = [str(py), "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={model_dir},dtype=float32",
           "--include_path", str(out / "tasks"), "--tasks", ",".join(tasks), "--batch_size", str(bs),
           "--output_path", str(out / "lmeval"), "--log_samples"]
    if limit:
        cmd += ["--limit", str(limit)]
    t = time.perf_counter()
    sh(cmd, env={**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    return time.perf_counter() - t


def run_assay(tasks: list[str], out: Path, limit: int | None, bs: int) -> float:
    cmd = [str(ROOT / ".venv" / "bin" / "assay"), "run", "-m", "hf:smollm2-135m-instruct", "--tasks", ",".join(tasks),
           "--prompt", "lmeval", "-b", str(bs), "-o", str(out / "assay"), "--data-dir", str(DATA)]
    if limit:
        cmd += ["--limit", str(limit)]
    t = time.perf_counter()
    sh(cmd)
    return time.perf_counter() - t


def _harness_samples(out: Path, task: str) -> list[dict]:
    files = sorted((out / "lmeval").rglob(f"samples_parity_{task}_2*.jsonl"))  # _<timestamp>, not _5shot_…
    if not files:
        raise SystemExit(f"no harness samples for {task} under {out / 'lmeval'}")
    rows = _jsonl(files[-1])
    return sorted(rows, key=lambda r: r["doc_id"])


def compare(tasks: list[str], out: Path) -> list[dict]:
    table = []
    for task in tasks:
        theirs = _harness_samples(out, task)
        ours = [r for r in _jsonl(out / "assay" / "samples" / "smollm2-135m-instruct@hf" / f"{task}.jsonl") if r["prompt_id"] == "lmeval"]
        n = min(len(theirs), len(ours))
        same = identical = 0
        acc_t = acc_o = 0.0
        for a, b in zip(theirs[:n], ours[:n]):
            identical += _pairs_theirs(a) == _pairs_ours(b, _pairs_theirs(a))
            lls = [float(x[0]) for x in (a["filtered_resps"] if isinstance(a["filtered_resps"][0], list) else a["resps"])]
            pick_t = max(range(len(lls)), key=lls.__getitem__)
            pick_o = b["extracted"]
            same += pick_t == pick_o
            acc_t += float(a["acc"])
            acc_o += float(b["score"])
        table.append({"task": task, "n": n, "lmeval": 100 * acc_t / n, "assay": 100 * acc_o / n, "same": 100 * same / n, "identical": 100 * identical / n})
    return table


def _pairs_theirs(sample: dict) -> list[tuple[str, str]]:
    args = sample["arguments"]
    return [(v["arg_0"], v["arg_1"]) for _, v in sorted(args.items(), key=lambda kv: int(kv[0].rsplit("_", 1)[-1]))]


def _pairs_ours(sample: dict, theirs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Our (context, continuation) per choice; Winograd-style rows keep contexts per choice
    and share the continuation, which the sample file does not repeat (taken as theirs)."""
    if isinstance(sample["prompt"], list):
        return [(c, t[1]) for c, t in zip(sample["prompt"], theirs)]
    return [(sample["prompt"], sample.get("delimiter", " ") + c) for c in sample["choices"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(DEFAULT_TASKS))
    ap.add_argument("--limit", type=int, default=200, help="items per task (0 = all)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "parity")
    a = ap.parse_args()
    tasks = [t for t in a.tasks.split(",") if t]
    limit = a.limit or None
    a.out.mkdir(parents=True, exist_ok=True)
    py = ensure_lmeval()
    model_dir = dequantised_model()
    lm_tasks = lmeval_tasks_dir(py)
    names = [harness_task(t, lm_tasks, a.out) for t in tasks]
    t_h = run_harness(py, names, model_dir, a.out, limit, a.batch_size)
    t_a = run_assay(tasks, a.out, limit, a.batch_size)
    table = compare(tasks, a.out)
    print(f"\nparity: SmolLM2-135M-Instruct (float32, de-quantised from the embedded Q4_1 GGUF), hf backend on both sides, limit {limit}")
    print(f"{'task':32} {'n':>5} {'lm-eval':>8} {'assay':>8} {'Δ':>6} {'same':>7} {'prompts':>8}")
    ok = True
    for r in table:
        d = r["assay"] - r["lmeval"]
        ok &= abs(d) <= 0.3 and r["same"] >= 99.0
        print(f"{r['task']:32} {r['n']:5d} {r['lmeval']:8.2f} {r['assay']:8.2f} {d:+6.2f} {r['same']:6.1f}% {r['identical']:7.1f}%")
    print(f"wall: lm-eval {t_h:.0f}s, assay {t_a:.0f}s")
    print(f"parity: {'all tasks within |Δ| <= 0.3 and >= 99% same choices' if ok else 'TARGET MISSED on some task'}")
    (a.out / "parity.json").write_text(json.dumps({"limit": limit, "table": table, "wall": {"lmeval": t_h, "assay": t_a}}, indent=1))


if __name__ == "__main__":
    main()
