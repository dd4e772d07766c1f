"""Do the built-in tasks keep their gold answers and content hashes across a change?

Renders every built-in multiple-choice task on all its rows (the real data under the data
directory) and records each instance's gold with every task's content hash. Write a
snapshot before a change to task loading or rendering, then compare after it:

    .venv/bin/python bench/golds.py --write /tmp/golds-before.json     # on the old code
    .venv/bin/python bench/golds.py --compare /tmp/golds-before.json   # on the new code

It prints the number of tasks and golds compared and lists any task whose hash or golds
differ; the exit code is 1 when one does. Tasks whose data is absent are listed and skipped.
About 1 minute on one core for the 298 built-in tasks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from assay.data.sources import data_dir
from assay.errors import AssayError
from assay.plan import plan_task
from assay.tasks.loader import load_task
from assay.tasks.registry import builtin_index


def snapshot(root: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for name, path in builtin_index().tasks.items():
        spec = load_task(path)
        rec: dict = {"hash": spec.content_hash()}
        if spec.output_type == "multiple_choice":
            try:
                plan = plan_task(spec, path, root)
                rec["golds"] = [[i.prompt_id, i.doc_id, i.target] for i in plan.instances]
            except AssayError as exc:
                rec["skipped"] = str(exc)
        out[name] = rec
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path, metavar="FILE")
    group.add_argument("--compare", type=Path, metavar="FILE")
    ap.add_argument("--data-dir", type=Path)
    a = ap.parse_args()
    t0 = time.perf_counter()
    now = snapshot(data_dir(a.data_dir))
    n_golds = sum(len(r.get("golds", [])) for r in now.values())
    skipped = [n for n, r in now.items() if "skipped" in r]
    print(f"{len(now)} tasks, {n_golds} golds rendered in {time.perf_counter() - t0:.0f} s; skipped (no data): {', '.join(skipped) or 'none'}")
    if a.write:
        a.write.write_text(json.dumps(now))
        print(f"wrote {a.write}")
        return 0
    before = json.loads(a.compare.read_text())
    bad = 0
    for name in sorted(set(before) | set(now)):
        b, n = before.get(name), now.get(name)
        if b is None or n is None:
            print(f"  {name}: only {'after' if b is None else 'before'}")
            bad += 1
            continue
        if b["hash"] != n["hash"]:
            print(f"  {name}: content hash {b['hash']} -> {n['hash']}")
            bad += 1
        if b.get("golds") != n.get("golds"):
            diff = sum(x != y for x, y in zip(b.get("golds") or [], n.get("golds") or []))
            print(f"  {name}: golds differ ({diff} of {len(n.get('golds') or [])}; before {len(b.get('golds') or [])})")
            bad += 1
    compared = sum(len(r.get("golds", [])) for name, r in now.items() if before.get(name, {}).get("golds") == r.get("golds"))
    print(f"{len(now) - bad} of {len(now)} tasks unchanged; {compared} golds identical")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
