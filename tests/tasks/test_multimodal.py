"""Multimodal tasks end to end: the synthetic shapes set through `assay run` with a tiny random
IDEFICS (tests/vision_models.py), stored answers through `replay`, image few-shot selection
(seeded random, RICES with a pluggable embedding, text-only examples) and the errors a user can
hit. Numbers of a random model are meaningless; what is checked is that every stage does what
it says (the right pictures in the right places, scores independent of the batch size, metrics
that reward right answers)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("PIL")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assay.cli import main  # noqa: E402
from assay.data.sources import synthetic_dir  # noqa: E402
from assay.errors import TaskError  # noqa: E402
from assay.plan import plan_task  # noqa: E402
from assay.requests import IMAGE  # noqa: E402
from assay.tasks.loader import load_task  # noqa: E402
from assay.tasks.registry import builtin_index  # noqa: E402

SHAPES = ["shapes_vqa", "shapes_vqa_0shot_text", "shapes_vqa_4shot", "shapes_vqa_4shot_rices", "shapes_caption", "shapes_classify", "shapes_match"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    import os

    old = os.environ.get("ASSAY_CACHE_DIR")
    path = tmp_path_factory.mktemp("cache")
    os.environ["ASSAY_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("ASSAY_CACHE_DIR", None)
    else:
        os.environ["ASSAY_CACHE_DIR"] = old


@pytest.fixture(scope="module")
def idefics(tmp_path_factory):
    pytest.importorskip("transformers")
    from vision_models import tiny_idefics

    return tiny_idefics(tmp_path_factory.mktemp("m") / "tiny-idefics")


def _plan(name: str, root: Path):
    path = builtin_index().tasks[name]
    return plan_task(load_task(path), path, root)


def _results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())["results"]


def _samples(run: Path, label: str, task: str) -> list[dict]:
    return [json.loads(x) for x in (run / "samples" / label / f"{task}.jsonl").read_text().splitlines()]


def test_builtin_shapes_group_lists_every_task(cache):
    idx = builtin_index()
    assert sorted(idx.groups["shapes"]) == sorted(SHAPES)


def test_synthetic_data_is_generated_once_into_the_cache(cache, tmp_path):
    folder = synthetic_dir("shapes")
    assert folder.is_relative_to(cache) and (folder / "vqa.jsonl").is_file() and (folder / ".complete").is_file()
    stamp = (folder / "vqa.jsonl").stat().st_mtime_ns
    assert synthetic_dir("shapes") == folder and (folder / "vqa.jsonl").stat().st_mtime_ns == stamp


def test_instances_place_each_picture_at_its_placeholder(cache, tmp_path):
    zero = _plan("shapes_vqa", tmp_path).instances
    assert all(len(i.images) == 1 and i.query.count(IMAGE) == 1 and not i.shots for i in zero)
    # the image is the row's own picture
    folder = synthetic_dir("shapes")
    from assay.data.images import register_file

    row = zero[0].doc
    assert zero[0].images == (register_file(folder / row["image"]),)

    four = _plan("shapes_vqa_4shot", tmp_path).instances
    for inst in four[:10]:
        assert len(inst.shots) == 4 and len(inst.images) == 5
        assert sum(q.count(IMAGE) for q, _ in inst.shots) + inst.query.count(IMAGE) == len(inst.images)
        assert inst.images[-1] == inst.doc["_images"][0]
        assert all(a == a.strip() and a for _, a in inst.shots)  # the canonical answer, not an annotator's variant

    text = _plan("shapes_vqa_0shot_text", tmp_path).instances
    for inst in text[:10]:
        assert len(inst.shots) == 2 and inst.images == inst.doc["_images"]
        assert all(IMAGE not in q and q.startswith("Question:") for q, _ in inst.shots)


def test_rices_picks_the_most_similar_pictures_most_similar_last(cache, tmp_path):
    import numpy as np

    from assay.data import images
    from assay.tasks.fewshot import pixels

    inst = _plan("shapes_vqa_4shot_rices", tmp_path).instances
    support = {json.loads(x)["id"]: json.loads(x) for x in (synthetic_dir("shapes") / "vqa_support.jsonl").read_text().splitlines()}
    folder = synthetic_dir("shapes")
    for one in inst[:5]:
        q = pixels([images.load(one.doc["_images"][0])])[0]
        sims = {sid: float(pixels([images.load(images.register_file(folder / row["image"]))])[0] @ q) for sid, row in support.items()}
        shot_ids = [im for im in one.images[:-1]]
        got = [float(pixels([images.load(r)])[0] @ q) for r in shot_ids]
        best = sorted(sims.values())[-4:]
        assert got == pytest.approx(best)  # the four most similar of the support set
        assert got == sorted(got)  # ascending: the most similar example sits next to the question
        assert np.isfinite(got).all()


def test_rices_takes_a_pluggable_embedding(cache, tmp_path, monkeypatch):
    mod = tmp_path / "my_embed.py"
    mod.write_text(
        "import numpy as np\n"
        "CALLS = []\n"
        "def redness(pictures):\n"
        "    CALLS.append(len(pictures))\n"
        "    return np.array([[np.asarray(p)[..., 0].mean(), 1.0] for p in pictures])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    task = tmp_path / "t.yaml"
    src = (builtin_index().tasks["shapes_vqa_4shot_rices"]).read_text().replace("embedding: pixels", "embedding: my_embed:redness")
    task.write_text(src.replace("include: _vqa.yaml", f"include: {builtin_index().tasks['shapes_vqa'].parent / '_vqa.yaml'}"))
    plan = plan_task(load_task(task), task, tmp_path, limit=3)
    import my_embed

    assert sum(my_embed.CALLS) > 0 and len(plan.instances[0].shots) == 4
    bad = tmp_path / "bad.yaml"
    bad.write_text(task.read_text().replace("my_embed:redness", "my_embed:nothing_here"))
    with pytest.raises(TaskError, match="fewshot.embedding 'my_embed:nothing_here' cannot be imported"):
        plan_task(load_task(bad), bad, tmp_path, limit=3)


def _image_task(tmp_path: Path, template: str, extra: str = "") -> Path:
    from PIL import Image

    (tmp_path / "img").mkdir(exist_ok=True)
    rows = []
    for i, c in enumerate([(255, 0, 0), (0, 0, 255), (0, 200, 0)]):
        Image.new("RGB", (32, 32), c).save(tmp_path / "img" / f"{i}.png")
        rows.append({"id": str(i), "pic": f"img/{i}.png", "q": "What color?", "a": ["red", "blue", "green"][i]})
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    t = tmp_path / "t.yaml"
    t.write_text(
        f"task: colours\noutput_type: generate\ndataset: {{local: {{path: {tmp_path / 'd.jsonl'}}}, id_field: id}}\nimages: pic\ntarget: a\n"
        f"prompts:\n  - id: p\n    template: {json.dumps(template)}\nmetrics: [vqa_accuracy]\n{extra}"
    )
    return t


def test_a_prompt_without_its_placeholder_is_an_error_naming_the_row(tmp_path, capsys):
    t = _image_task(tmp_path, "Question: {{ q }} Answer:")
    assert main(["validate", str(t)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "task colours, prompt p, row 0" in err and "0 <image> placeholder(s) for 1 image(s)" in err


def test_a_missing_image_file_is_an_error_naming_it(tmp_path, capsys):
    t = _image_task(tmp_path, "<image>{{ q }}")
    (tmp_path / "img" / "1.png").unlink()
    assert main(["validate", str(t)]) == 2
    err = capsys.readouterr().err
    assert "row 1" in err and "image file not found" in err and "1.png" in err


def test_text_models_refuse_image_tasks_before_any_work(tmp_path, capsys):
    pytest.importorskip("transformers")
    from llama_layout import tiny_llama

    model = tiny_llama(tmp_path / "llama")
    t = _image_task(tmp_path, "<image>{{ q }}")
    run = tmp_path / "run"
    assert main(["run", "-m", f"hf:{model}", "-t", str(t), "-o", str(run)]) == 2
    err = capsys.readouterr().err
    assert "reads no images" in err and "colours" in err
    from assay.store.runs import RunStore

    store = RunStore(run)
    try:
        assert store.n_responses() == 0
    finally:
        store.close()


def test_shapes_run_end_to_end_with_a_tiny_idefics_batch_independent(cache, idefics, tmp_path):
    tasks = ",".join(SHAPES)
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["run", "-m", f"hf:{idefics}", "-t", tasks, "--limit", "4", "-o", str(a), "-q"]) == 0
    assert main(["run", "-m", f"hf:{idefics}", "-t", tasks, "--limit", "4", "-o", str(b), "-q", "--batch-size", "1"]) == 0
    ra, rb = _results(a), _results(b)
    label = next(iter(ra))
    assert set(ra[label]) >= set(SHAPES)
    for task in SHAPES:
        for name, m in ra[label][task]["metrics"].items():
            assert m["value"] == pytest.approx(rb[label][task]["metrics"][name]["value"], abs=1e-9), (task, name)
            assert m["value"] is not None
    # the samples say which pictures were shown, and the match task stores its 2×2 matrix
    s = _samples(a, label, "shapes_match")[0]
    assert len(s["images"]) == 2 and len(s["logprobs"]) == 2 and all(len(r) == 2 for r in s["logprobs"])
    assert all(x.startswith("img:") for x in _samples(a, label, "shapes_vqa_4shot")[0]["images"])
    # a re-run computes nothing: every (model, request) was computed exactly once
    assert main(["run", "-m", f"hf:{idefics}", "-t", tasks, "--limit", "4", "-o", str(a), "-q"]) == 0
    from assay.store.runs import RunStore

    store = RunStore(a)
    try:
        counts = store.compute_counts()
        assert counts and set(counts.values()) == {1} and store.n_responses() == len(counts)
    finally:
        store.close()


def test_replayed_answers_score_as_the_metrics_say(cache, tmp_path):
    folder = synthetic_dir("shapes")
    vqa = [json.loads(x) for x in (folder / "vqa.jsonl").read_text().splitlines()][:12]
    caps = [json.loads(x) for x in (folder / "captions.jsonl").read_text().splitlines()][:12]
    right = tmp_path / "right.jsonl"
    wrong = tmp_path / "wrong.jsonl"
    right.write_text("\n".join(
        [json.dumps({"task": "shapes_vqa", "id": r["id"], "prompt": "base", "answer": f" {r['answer'].capitalize()}."}) for r in vqa]
        + [json.dumps({"task": "shapes_caption", "id": r["id"], "prompt": "base", "answer": r["captions"][0]}) for r in caps]
    ))
    wrong.write_text("\n".join(
        [json.dumps({"task": "shapes_vqa", "id": r["id"], "prompt": "base", "answer": "a teapot"}) for r in vqa]
        + [json.dumps({"task": "shapes_caption", "id": r["id"], "prompt": "base", "answer": "a teapot on a table"}) for r in caps]
    ))
    out = {}
    for name, f in (("right", right), ("wrong", wrong)):
        run = tmp_path / name
        assert main(["run", "-m", f"replay:{f}", "-t", "shapes_vqa,shapes_caption", "--limit", "12", "-o", str(run), "-q", "--prompt", "base"]) == 0
        out[name] = next(iter(_results(run).values()))
    # the canonical answer is what most annotators said: full VQA accuracy after normalisation
    assert out["right"]["shapes_vqa"]["metrics"]["vqa_accuracy"]["value"] == pytest.approx(1.0)
    assert out["wrong"]["shapes_vqa"]["metrics"]["vqa_accuracy"]["value"] == 0.0
    rc, wc = out["right"]["shapes_caption"]["metrics"], out["wrong"]["shapes_caption"]["metrics"]
    assert rc["cider"]["value"] > 1.0 and rc["bleu4"]["value"] > 0.3
    assert wc["cider"]["value"] < 0.2 and wc["bleu4"]["value"] < 0.05
    assert rc["cider"]["stderr"] > 0
