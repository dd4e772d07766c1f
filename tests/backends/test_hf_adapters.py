"""The hf backend's PEFT adapters, dtype, device_map and quantised loads, on a tiny random
Llama and LoRA adapters built here (no downloads)."""

from __future__ import annotations

import json
import math

import pytest

from conftest import run_cli

pytest.importorskip("transformers")
pytest.importorskip("peft")

import torch  # noqa: E402

from assay.backends.registry import load_backend, parse_model  # noqa: E402
from assay.errors import BackendError, ConfigError  # noqa: E402
from assay.requests import LoglikelihoodRequest  # noqa: E402

PAIRS = [("How are you today", " ?"), ("What is 2 + 3", " ? Answer : 5"), ("Hello", " , How are you ?")]
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="asserts the message on a machine without CUDA")


def _make_adapter(base, folder, seed):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM.from_pretrained(base)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from llama_layout import tiny_llama

    root = tmp_path_factory.mktemp("adapters")
    base = tiny_llama(root / "base")
    return base, _make_adapter(base, root / "lora-a", 1), _make_adapter(base, root / "lora-b", 2)


def _scores(spec):
    b = load_backend(parse_model(spec))
    try:
        return [r.logprob for r in b.loglikelihood([LoglikelihoodRequest(c, x) for c, x in PAIRS])], b.info
    finally:
        b.close()


@pytest.fixture(scope="module")
def base_scores(tiny):
    return _scores(f"hf:{tiny[0]}")


@pytest.fixture(scope="module")
def adapter_scores(tiny):
    return _scores(f"hf:{tiny[0]},adapter={tiny[1]}")


def _direct(base, adapter=None):
    """log P(continuation | context) with transformers (and PeftModel) by hand: one full
    forward pass per pair, no padding, no batching."""
    from peft import PeftModel
    from transformers import AutoTokenizer, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(base)
    model = LlamaForCausalLM.from_pretrained(base)
    model = (model if adapter is None else PeftModel.from_pretrained(model, adapter)).eval()
    # the backend's convention: a BOS first where the tokenizer says add_bos_token
    prefix = [tok.bos_token_id] if getattr(tok, "add_bos_token", False) else []
    out = []
    with torch.inference_mode():
        for ctx, cont in PAIRS:
            c = prefix + tok(ctx, add_special_tokens=False)["input_ids"]
            x = tok(cont, add_special_tokens=False)["input_ids"]
            logp = torch.log_softmax(model(input_ids=torch.tensor([c + x])).logits[0].float(), -1)
            out.append(sum(logp[len(c) - 1 + k, t].item() for k, t in enumerate(x)))
    return out


@pytest.mark.hf
def test_adapter_scores_equal_peft_and_differ_from_the_base(tiny, base_scores, adapter_scores):
    ours, info = adapter_scores
    assert base_scores[0] == pytest.approx(_direct(tiny[0]), abs=1e-4)
    assert ours == pytest.approx(_direct(tiny[0], tiny[1]), abs=1e-4)
    assert all(abs(a - b) > 1e-3 for a, b in zip(ours, base_scores[0]))  # the adapter changes outputs
    assert info.args["adapter"] == str(tiny[1]) and info.args["merge"] is False
    assert info.args["adapter_identity"][0] == "folder"


@pytest.mark.hf
def test_merged_adapter_scores_equal_unmerged(tiny, adapter_scores):
    merged, info = _scores(f"hf:{tiny[0]},adapter={tiny[1]},merge=true")
    assert merged == pytest.approx(adapter_scores[0], abs=1e-4)
    assert info.args["merge"] is True


@pytest.mark.hf
def test_fingerprints_name_the_adapter(tiny, base_scores, adapter_scores):
    _, other = _scores(f"hf:{tiny[0]},adapter={tiny[2]}")
    prints = {base_scores[1].fingerprint, adapter_scores[1].fingerprint, other.fingerprint}
    assert len(prints) == 3
    assert "adapter" not in base_scores[1].args


@pytest.mark.hf
def test_adapter_base_mismatch_is_a_warning(tiny, tmp_path, capsys):
    cfg = json.loads((tiny[1] / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "someone/another-model"
    adapter = tmp_path / "moved"
    adapter.mkdir()
    for f in tiny[1].iterdir():
        (adapter / f.name).write_bytes(f.read_bytes())
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    scores, info = _scores(f"hf:{tiny[0]},adapter={adapter}")
    err = capsys.readouterr().err
    assert "warning: adapter" in err and "someone/another-model" in err
    assert info.args["adapter_base"] == "someone/another-model"


@pytest.mark.hf
def test_adapter_without_peft_names_the_install_line(tiny, monkeypatch):
    import importlib.util

    from assay.errors import MissingDependency

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "peft" else real(name, *a))
    with pytest.raises(MissingDependency, match=r"'peft' package.*pip install 'assay\[hf\]'"):
        load_backend(parse_model(f"hf:{tiny[0]},adapter={tiny[1]}"))


@pytest.mark.hf
def test_bad_load_options_are_config_errors(tiny):
    base = tiny[0]
    for spec, needle in [
        (f"hf:{base},merge=true", "merge=true needs adapter"),
        (f"hf:{base},load_in_4bit=true,load_in_8bit=true", "exclude each other"),
        (f"hf:{base},device_map=tpu", "device_map must be"),
        (f"hf:{base},load_in_4bit=yes", "must be true or false"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            load_backend(parse_model(spec))
    with pytest.raises(BackendError, match="no adapter_config.json"):
        load_backend(parse_model(f"hf:{base},adapter={base}"))


def _quantised_checkpoint(base, folder, method):
    cfg = json.loads((base / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": method, "bits": 4, "group_size": 128}
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(cfg))  # no weights: the check comes first
    return folder


@pytest.mark.hf
@NO_GPU
@pytest.mark.parametrize("case", ["load_in_4bit=true", "load_in_8bit=true", "device_map=cuda:0", "awq", "gptq"])
def test_gpu_only_loads_fail_clearly_through_the_cli(tiny, tmp_path, case):
    if "=" in case:
        model, needle = f"hf:{tiny[0]},{case}", case.split("=")[0] if "bit" in case else case
    else:
        model, needle = f"hf:{_quantised_checkpoint(tiny[0], tmp_path / case, case)}", f"this {case.upper()}-quantised"
    proc = run_cli("run", "-m", model, "-t", "copa", "--limit", "1", "-o", str(tmp_path / "out"), timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("assay: error:")]
    assert needle in line and "needs a CUDA GPU (torch.cuda.is_available() is False here)" in line
    assert "run on a GPU machine" in line


@pytest.mark.hf
def test_bfloat16_loads_and_scores_near_float32(tiny, base_scores):
    scores, info = _scores(f"hf:{tiny[0]},dtype=bfloat16")
    assert info.args["dtype"] == "bfloat16" and info.fingerprint != base_scores[1].fingerprint
    assert all(math.isfinite(s) for s in scores)
    assert scores == pytest.approx(base_scores[0], rel=0.05, abs=0.5)


@pytest.mark.hf
def test_device_map_cpu_scores_like_the_default(tiny, base_scores):
    scores, info = _scores(f"hf:{tiny[0]},device_map=cpu")
    assert scores == pytest.approx(base_scores[0], abs=1e-5)
    assert info.args["device_map"] == "cpu"


@pytest.mark.hf
@pytest.mark.slow
def test_cli_run_with_adapter_records_it(tiny, tmp_path):
    out = tmp_path / "run"
    proc = run_cli("run", "-m", f"hf:{tiny[0]},adapter={tiny[1]}", "-t", "copa", "--limit", "4", "-o", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((out / "results.json").read_text())
    (label,) = doc["results"]
    assert doc["results"][label]["copa"]["n_items"] >= 4
    model = doc["models"][label]
    assert model["backend"] == "hf" and model["args"]["adapter"] == str(tiny[1])
    assert model["args"]["adapter_identity"][0] == "folder" and model["args"]["peft"]
