"""The hf vision-language backend on a tiny random IDEFICS built here (tests/vision_models.py):
the processor path, batched log-likelihood against a direct transformers computation, images
that change the numbers, batch-size independence, and generation."""

from __future__ import annotations

import io
import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("PIL")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from assay.backends.registry import load_backend, parse_model  # noqa: E402
from assay.data import images  # noqa: E402
from assay.requests import GenerateRequest, LoglikelihoodRequest  # noqa: E402
from vision_models import tiny_idefics  # noqa: E402

Q = "User:<image>What color is the circle?<end_of_utterance>\nAssistant:"


def _png(color: tuple[int, int, int], shape: str = "square") -> str:
    im = Image.new("RGB", (96, 96), (255, 255, 255))
    from PIL import ImageDraw

    d = ImageDraw.Draw(im)
    (d.ellipse if shape == "circle" else d.rectangle)((20, 20, 76, 76), fill=color)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return images.register_bytes(buf.getvalue())


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_idefics(tmp_path_factory.mktemp("idefics") / "tiny-idefics")


@pytest.fixture(scope="module")
def backend(model_dir):
    b = load_backend(parse_model(f"hf:{model_dir}"))
    yield b
    b.close()


@pytest.fixture(scope="module")
def pics():
    return {"red": _png((255, 0, 0), "circle"), "blue": _png((0, 0, 255), "circle"), "green": _png((0, 160, 0))}


def _requests(p):
    return [
        LoglikelihoodRequest(Q, " red", images=(p["red"],)),
        LoglikelihoodRequest(Q, " red", images=(p["blue"],)),
        LoglikelihoodRequest(Q, " blue", images=(p["blue"],)),
        LoglikelihoodRequest("Question: What is this? Answer:", " a square"),
        LoglikelihoodRequest("<image><image>Two pictures. Caption:", " a red circle and a green square", images=(p["red"], p["green"])),
        LoglikelihoodRequest("<image>A photo of a", " circle", images=(p["green"],)),
    ]


def _direct(model_dir: Path, req: LoglikelihoodRequest) -> float:
    """log P(continuation | context) computed straight with transformers: the processor on the
    interleaved prompt, one forward pass, the continuation's tokens summed by hand."""
    from transformers import AutoProcessor, IdeficsForVisionText2Text

    proc = AutoProcessor.from_pretrained(model_dir)
    model = IdeficsForVisionText2Text.from_pretrained(model_dir).eval()

    def items(text):
        pics = iter(images.load(r) for r in req.images)
        out = []
        for j, chunk in enumerate(text.split("<image>")):
            if j:
                out.append(next(pics))
            if chunk:
                out.append(chunk)
        return out

    full = proc(text=[items(req.context + req.continuation)], return_tensors="pt")
    n_ctx = proc(text=[items(req.context)], return_tensors="pt")["input_ids"].shape[1]
    with torch.no_grad():
        logits = model(**full).logits[0]
    ids = full["input_ids"][0]
    logp = torch.log_softmax(logits.float(), -1)
    return sum(logp[i - 1, ids[i]].item() for i in range(n_ctx, ids.shape[0]))


def test_routed_to_the_vision_backend_with_its_capabilities(backend):
    assert type(backend).__name__ == "HFVisionBackend"
    caps = backend.capabilities
    assert caps.images and caps.loglikelihood and caps.generate and not caps.rolling
    assert backend.info.args["model_type"] == "idefics"


def test_batched_loglikelihood_equals_direct_transformers(backend, model_dir, pics):
    reqs = _requests(pics)
    batched = backend.loglikelihood(reqs)
    for req, res in zip(reqs, batched):
        assert res.logprob == pytest.approx(_direct(model_dir, req), abs=1e-4)
        assert res.n_tokens >= 1 and math.isfinite(res.logprob)


def test_batch_size_does_not_change_scores(backend, pics):
    reqs = _requests(pics)
    together = backend.loglikelihood(reqs)
    alone = [backend.loglikelihood([r])[0] for r in reqs]
    for a, b in zip(together, alone):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-5)
        assert a.is_greedy == b.is_greedy


def test_the_picture_changes_the_numbers_and_identical_bytes_do_not(backend, pics, tmp_path):
    red, blue = backend.loglikelihood([LoglikelihoodRequest(Q, " red", images=(pics["red"],)), LoglikelihoodRequest(Q, " red", images=(pics["blue"],))])
    assert abs(red.logprob - blue.logprob) > 1e-3
    # the same picture from a file: the same id, the same score
    path = tmp_path / "red.png"
    images.load(pics["red"]).save(path)
    ref = images.register_file(path)
    again = backend.loglikelihood([LoglikelihoodRequest(Q, " red", images=(ref,))])[0]
    if ref == pics["red"]:
        assert again.logprob == pytest.approx(red.logprob, abs=1e-6)
    else:  # re-encoding may change the bytes but never the pixels
        assert again.logprob == pytest.approx(red.logprob, abs=1e-5)


def test_placeholder_count_must_match_the_images(backend, pics):
    from assay.errors import BackendError

    with pytest.raises(BackendError, match="placeholder"):
        backend.loglikelihood([LoglikelihoodRequest(Q, " red", images=(pics["red"], pics["blue"]))])


def test_generation_is_batch_independent_and_respects_limits(backend, pics):
    reqs = [
        GenerateRequest(Q, ("\n",), 6, images=(pics["red"],)),
        GenerateRequest(Q, ("\n",), 6, images=(pics["blue"],)),
        GenerateRequest("Question: How many shapes are there? Answer:", (), 4),
    ]
    together = backend.generate(reqs)
    alone = [backend.generate([r])[0] for r in reqs]
    assert [r.text for r in together] == [r.text for r in alone]
    assert all(r.n_tokens <= q.max_tokens for r, q in zip(together, reqs))
    assert together[0].text != together[1].text  # the picture decides the reply
    ids = backend.tok.convert_tokens_to_ids(["<image>", "<fake_token_around_image>"])
    for r in together:  # image marker tokens are never generated
        assert "<image>" not in r.text and "<fake_token_around_image>" not in r.text
    assert all(i is not None for i in ids)


def test_sampled_generation_is_reproducible(backend, pics):
    r = GenerateRequest(Q, (), 5, temperature=1.0, seed=7, images=(pics["green"],))
    a, b = backend.generate([r])[0], backend.generate([r])[0]
    assert a.text == b.text
    other = backend.generate([GenerateRequest(Q, (), 5, temperature=1.0, seed=7, sample_index=1, images=(pics["green"],))])[0]
    assert other.text != a.text


def test_rolling_is_refused_with_a_reason(backend):
    from assay.errors import BackendError
    from assay.requests import RollingRequest

    with pytest.raises(BackendError, match="rolling"):
        backend.loglikelihood_rolling([RollingRequest("some text")])


def test_llava_style_models_share_the_code(tmp_path, pics):
    from vision_models import tiny_llava

    b = load_backend(parse_model(f"hf:{tiny_llava(tmp_path / 'llava')}"))
    try:
        assert type(b).__name__ == "HFVisionBackend" and b.info.args["model_type"] == "llava"
        q = "USER: <image>\nWhat color is the circle? ASSISTANT:"
        reqs = [
            LoglikelihoodRequest(q, " red", images=(pics["red"],)),
            LoglikelihoodRequest(q, " red", images=(pics["blue"],)),
            LoglikelihoodRequest("Question: What is this? Answer:", " a circle"),
        ]
        together = b.loglikelihood(reqs)
        alone = [b.loglikelihood([r])[0] for r in reqs]
        assert [r.logprob for r in together] == pytest.approx([r.logprob for r in alone], abs=1e-5)
        assert abs(together[0].logprob - together[1].logprob) > 1e-4
        gens = [GenerateRequest(q, ("\n",), 5, images=(pics["red"],)), GenerateRequest(q, ("\n",), 5, images=(pics["green"],))]
        assert [r.text for r in b.generate(gens)] == [b.generate([g])[0].text for g in gens]
    finally:
        b.close()
