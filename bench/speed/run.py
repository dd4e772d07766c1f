"""Speed, side by side in one run: lm-evaluation-harness, assay (hf), assay (llamacpp) and the
raw backends with no harness around them, on the same items, the same model and machine.

    .venv/bin/python bench/speed/run.py [--limit 100] [--xcopa-limit N] [--mmlu-limit 10] [--gsm8k-limit 20] [--tasks hellaswag,arc_challenge,xcopa,mmlu,gsm8k]

Model: the embedded SmolLM2-135M-Instruct. lm-evaluation-harness and assay `hf` read the same
float32 checkpoint (de-quantised from the Q4_1 GGUF once); assay `llamacpp` and the raw
llama.cpp loop read the GGUF itself. Tasks: HellaSwag (the 1,000-item subset), ARC-Challenge,
XCOPA (11 languages), MMLU (0-shot, 57 subjects) and GSM8K (5-shot, generation); `--limit`
applies per language / subject, `0` means every item. Each system runs as its own process;
wall time includes start-up and model loading, peak RSS is that process's (wait4). The raw
ceilings run the requests assay stored (same contexts and continuations, same token stream):
transformers forward passes in length-sorted batches of 32 with only the needed logits, and
llama.cpp decodes of one sequence each; their time excludes loading. "tokens" are the
context+continuation tokens of every log-likelihood request (generation: prompt + generated),
counted with the model's tokenizer, the same numerator for every system.

Prints one table per task and the final line
    speed: assay/lm-eval = X.XX×, assay/ceiling = Y%
(geometric means over the tasks; assay = its fastest backend per task, ceiling = the raw loop
of that backend, compared on compute time).

    .venv/bin/python bench/speed/run.py --memory [--gsm8k-limit 0] [--gen-budgets default,1073741824]

Peak memory of greedy generation instead: GSM8K 5-shot (`--gsm8k-limit 0` = all 1,314
problems) through assay `hf` once per generation token budget (`gen_batch_tokens`; a huge one
runs the scheduler's whole batch of 64 in one pass, as assay did before the budget), and
lm-evaluation-harness at batch sizes 1 and 8; one table of wall time, peak RSS and score.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# every figure here is computed, never answered by the response cache shared by runs
os.environ["ASSAY_CACHE"] = "off"
sys.path.insert(0, str(ROOT / "bench" / "parity"))
import run as parity  # noqa: E402  (bench/parity/run.py: the harness install and task converters)

DATA = parity.DATA
PY = ROOT / ".venv" / "bin" / "python"
ASSAY = ROOT / ".venv" / "bin" / "assay"
XCOPA = parity.LANGS_XCOPA


def subtasks(task: str) -> list[str]:
    if task == "xcopa":
        return [f"xcopa_{lang}" for lang in XCOPA]
    if task == "mmlu":
        return sorted("mmlu_" + p.name.removesuffix("_test.csv") for p in (DATA / "mmlu" / "test").glob("*_test.csv"))
    if task == "gsm8k":
        return ["gsm8k_5shot"]
    return [task]


def convert_gsm8k(out: Path) -> tuple[str, dict]:
    """The harness's gsm8k task on the local test file, with the five examples assay's
    gsm8k_5shot uses (rows 0-4, in order) and the problems after them."""
    rows = parity._jsonl(DATA / "gsm8k" / "test.jsonl")
    shots = [{**r, "answer": re.sub(r"<<[^>]*>>", "", r["answer"])} for r in rows[:5]]
    files = {"train": parity._write(out / "gsm8k.train.jsonl", shots), "test": parity._write(out / "gsm8k.test.jsonl", rows[5:])}
    return "gsm8k/gsm8k.yaml", {"test_split": "test", "fewshot_split": "train", "fewshot_config": {"sampler": "first_n"}, "data": files}


def harness_task(task: str, lm_tasks: Path, out: Path) -> str:
    if task != "gsm8k_5shot":
        return parity.harness_task(task, lm_tasks, out)
    base, o = convert_gsm8k(out / "data")
    data = o.pop("data")
    cfg = {"include": str(lm_tasks / base), "task": "parity_gsm8k_5shot", "dataset_path": "json", "dataset_name": None,
           "dataset_kwargs": {"data_files": {k: str(v) for k, v in data.items()}}, "training_split": None, "num_fewshot": 5, "tag": [], **o}
    cfg["generation_kwargs"] = {"until": ["Question:", "</s>", "<|im_end|>"], "do_sample": False, "max_gen_toks": 256}
    path = out / "tasks" / "parity_gsm8k_5shot.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg, indent=1))
    return cfg["task"]


def timed(cmd: list[str], env: dict | None = None, log: Path | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB, output) of one process."""
    print("$", " ".join(map(str, cmd))[:300], flush=True)
    t = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}) as p:
        out = p.stdout.read() if p.stdout else ""
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    if log:
        log.write_text(out)
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(map(str, cmd))}\n{out[-3000:]}")
    return wall, usage.ru_maxrss / 1024, out


def run_lmeval(py: Path, names: list[str], model_dir: Path, out: Path, limit: int | None, bs: int) -> dict:
    res = out / "lmeval"
    shutil.rmtree(res, ignore_errors=True)
    cmd = [str(py), "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={model_dir},dtype=float32",
           "--include_path", str(out / "tasks"), "--tasks", ",".join(names), "--batch_size", str(bs), "--output_path", str(res)]
    if limit:
        cmd += ["--limit", str(limit)]
    wall, rss, _ = timed(cmd, {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}, out / "lmeval.log")
    results = json.loads(sorted(res.rglob("results_*.json"))[-1].read_text())["results"]
    scores = []
    for n in names:
        r = results[n]
        key = next(k for k in ("acc,none", "exact_match,flexible-extract", "exact_match,strict-match") if k in r)
        scores.append(100 * float(r[key]))
    return {"wall": wall, "rss": rss, "score": sum(scores) / len(scores)}


def run_assay(model: str, tasks: list[str], out: Path, limit: int | None, bs: int) -> dict:
    folder = out / f"assay-{model.split(':')[0]}"
    shutil.rmtree(folder, ignore_errors=True)
    cmd = [str(ASSAY), "run", "-m", model, "-t", ",".join(tasks), "-b", str(bs), "-o", str(folder), "--data-dir", str(DATA), "-q"]
    if not tasks[0].startswith("gsm8k"):  # the harness's prompt (gsm8k_5shot has only its own)
        cmd += ["--prompt", "lmeval"]
    if limit:
        cmd += ["--limit", str(limit)]
    wall, rss, _ = timed(cmd, {"COLUMNS": "200"}, out / f"{folder.name}.log")
    doc = json.loads((folder / "results.json").read_text())
    (label, per_task), = doc["results"].items()
    scores = [100 * per_task[t]["metrics"][per_task[t]["primary"]]["value"] for t in tasks]
    stats = doc.get("compute", {}).get(label, {})
    return {"wall": wall, "rss": rss, "score": sum(scores) / len(scores), "compute": stats.get("seconds"), "folder": folder}


def stored_requests(folder: Path) -> list[dict]:
    db = sqlite3.connect(folder / "store.sqlite")
    try:
        return [json.loads(r[0]) for r in db.execute("SELECT request FROM responses")]
    finally:
        db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="hellaswag,arc_challenge,xcopa,mmlu,gsm8k")
    ap.add_argument("--limit", type=int, default=100, help="items per task, language or subject (0 = all)")
    ap.add_argument("--gsm8k-limit", type=int, default=20, help="GSM8K problems (the issue's full run: 200)")
    ap.add_argument("--mmlu-limit", type=int, default=10, help="items per MMLU subject (57 subjects; 0 = all 14,042)")
    ap.add_argument("--xcopa-limit", type=int, default=None, help="items per XCOPA language (default: --limit)")
    ap.add_argument("--lmeval-batch-size", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=64, help="assay's requests per backend call")
    ap.add_argument("--skip-lmeval", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "speed")
    ap.add_argument("--memory", action="store_true", help="peak memory of GSM8K generation (see above)")
    ap.add_argument("--gen-budgets", default="default,1073741824", help="hf gen_batch_tokens values for --memory")
    a = ap.parse_args()
    if a.memory:
        return memory(a)
    py = None if a.skip_lmeval else parity.ensure_lmeval()
    model_dir = parity.dequantised_model()
    lm_tasks = parity.lmeval_tasks_dir(py) if py else None
    rows = []
    for task in [t for t in a.tasks.split(",") if t]:
        subs = subtasks(task)
        limit = {"gsm8k": a.gsm8k_limit, "mmlu": a.mmlu_limit, "xcopa": a.xcopa_limit if a.xcopa_limit is not None else a.limit}.get(task, a.limit) or None
        out = a.out / task
        out.mkdir(parents=True, exist_ok=True)
        row: dict = {"task": task}
        if py:
            names = [harness_task(s, lm_tasks, out) for s in subs]
            row["lmeval"] = run_lmeval(py, names, model_dir, out, limit, a.lmeval_batch_size)
        row["hf"] = run_assay(f"hf:{model_dir}", subs, out, limit, a.batch_size)
        row["llamacpp"] = run_assay("smollm2-135m-instruct", subs, out, limit, a.batch_size)
        reqs = out / "requests.json"
        reqs.write_text(json.dumps(stored_requests(row["hf"]["folder"])))
        for backend in ("hf", "llamacpp"):
            _, rss, text = timed([str(PY), str(Path(__file__).with_name("raw.py")), backend, str(reqs), str(model_dir)], log=out / f"raw-{backend}.log")
            raw = json.loads(text.strip().splitlines()[-1])
            row[f"raw_{backend}"] = {**raw, "rss": rss}
        row["n"], row["tokens"] = row["raw_hf"]["n"], row["raw_hf"]["tokens"]
        rows.append(row)
        report(rows, a)
    report(rows, a, final=True)
    (a.out / "speed.json").write_text(json.dumps(rows, indent=1, default=str))


def memory(a: argparse.Namespace) -> None:
    """Peak RSS of GSM8K 5-shot generation: assay hf per token budget, the harness at bs 1 and 8."""
    py = None if a.skip_lmeval else parity.ensure_lmeval()
    model_dir = parity.dequantised_model()
    out = a.out / "memory"
    out.mkdir(parents=True, exist_ok=True)
    limit = a.gsm8k_limit or None
    rows = []
    for budget in a.gen_budgets.split(","):
        model = f"hf:{model_dir}" + ("" if budget == "default" else f",gen_batch_tokens={budget}")
        r = run_assay(model, ["gsm8k_5shot"], out / f"budget-{budget}", limit, a.batch_size)
        rows.append((f"assay hf, gen_batch_tokens={budget}", r))
        print(f"{rows[-1][0]:40} {r['wall']:8.1f} s {r['rss']:8.0f} MiB {r['score']:6.2f}", flush=True)
    if py:
        names = [harness_task("gsm8k_5shot", parity.lmeval_tasks_dir(py), out)]
        for bs in (1, 8):
            r = run_lmeval(py, names, model_dir, out, limit, bs)
            rows.append((f"lm-eval hf, batch {bs}", r))
    print(f"\nGSM8K 5-shot, {limit or 'all'} problems, assay batch {a.batch_size}:")
    print(f"{'system':40} {'wall':>10} {'peak RSS':>12} {'score':>6}")
    for name, r in rows:
        print(f"{name:40} {r['wall']:8.1f} s {r['rss']:8.0f} MiB {r['score']:6.2f}")
    (out / "memory.json").write_text(json.dumps([{"system": n, **{k: v for k, v in r.items() if k != "folder"}} for n, r in rows], indent=1))


def _rate(row: dict, sys_: str) -> str:
    r = row.get(sys_)
    if not r:
        return ""
    secs = r.get("seconds") or r["wall"]
    return f"{r['wall'] if 'wall' in r else secs:8.1f}s {row['n'] / secs:7.1f} req/s {row['tokens'] / secs:8.0f} tok/s {r['rss']:7.0f} MiB {r.get('score', float('nan')):6.2f}"


def report(rows: list[dict], a: argparse.Namespace, final: bool = False) -> None:
    print(f"\n{'task':14} {'system':10} {'wall':>9} {'req/s':>11} {'tok/s':>14} {'peak RSS':>11} {'score':>6}")
    ratios_lm, ratios_ceiling = [], []
    for row in rows:
        for sys_ in ("lmeval", "hf", "llamacpp", "raw_hf", "raw_llamacpp"):
            if sys_ in row:
                print(f"{row['task']:14} {sys_:10} {_rate(row, sys_)}")
        fastest = min(("hf", "llamacpp"), key=lambda s: row[s]["wall"])
        compute = row[fastest].get("compute") or row[fastest]["wall"]
        ceiling = row[f"raw_{fastest}"]["seconds"]
        line = f"{row['task']:14} assay fastest = {fastest}: {100 * ceiling / compute:.0f}% of its raw backend (compute {compute:.1f}s vs {ceiling:.1f}s)"
        ratios_ceiling.append(ceiling / compute)
        if "lmeval" in row:
            lm = row["lmeval"]["wall"]
            ratios_lm.append(lm / row[fastest]["wall"])
            line += f"; vs lm-eval: hf {lm / row['hf']['wall']:.2f}×, {fastest} {lm / row[fastest]['wall']:.2f}×; Δscore hf {row['hf']['score'] - row['lmeval']['score']:+.2f}"
        print(line)
    if final and rows:
        geo = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")  # noqa: E731
        print(f"speed: assay/lm-eval = {geo(ratios_lm):.2f}×, assay/ceiling = {100 * geo(ratios_ceiling):.0f}%")


if __name__ == "__main__":
    main()
