"""The one parser of ``key=value`` model arguments (assay.backends.options) and what every
backend declares with it."""

from __future__ import annotations

import importlib

import pytest

from assay.backends import options
from assay.backends.options import Option, literal
from assay.backends.registry import BACKENDS, parse_model
from assay.errors import ConfigError, UnknownOptionError

DECLARED = {
    "n_ctx": Option(int, None, "context", min=1),
    "max_length": Option(int, 2048, "window", min=1),
    "rate": Option(float, None, "per second"),
    "chat": Option(bool, False, "chat mode"),
    "dtype": Option(str, "float32", "dtype", choices=("float32", "bfloat16")),
    "revision": Option(str, None, "revision"),
}


def _parse(text: str, declared=DECLARED, unsupported=None):
    return options.parse(parse_model(text), declared, unsupported)


def test_literal_reads_bools_numbers_and_text():
    assert literal("true") is True and literal("False") is False
    assert literal("12") == 12 and isinstance(literal("12"), int)
    assert literal("0.5") == 0.5 and literal("abc") == "abc" and literal("") == ""


def test_defaults_are_filled_and_values_converted():
    got = _parse("mock:m,n_ctx=4096,rate=2,chat=true")
    assert got == {"n_ctx": 4096, "max_length": 2048, "rate": 2.0, "chat": True, "dtype": "float32", "revision": None}
    assert isinstance(got["rate"], float)
    assert _parse("mock:m,chat=0")["chat"] is False  # 1/0 count as true/false


def test_text_options_keep_the_text_as_written():
    # literal() reads 1e5 as a float and 007 as 7; a text option gets what the user wrote
    assert _parse("mock:m,revision=1e5")["revision"] == "1e5"
    assert _parse("mock:m,revision=007")["revision"] == "007"
    # a ModelSpec built in code (no raw text) still gets text
    spec = parse_model("mock:m")
    spec.args["revision"] = 123
    assert options.parse(spec, DECLARED)["revision"] == "123"


def test_an_empty_value_means_the_default():
    assert _parse("mock:m,rate=,max_length=")["rate"] is None
    assert _parse("mock:m,max_length=")["max_length"] == 2048


def test_unknown_key_is_one_line_with_did_you_mean():
    with pytest.raises(UnknownOptionError) as err:
        _parse("mock:m,n_ctxx=5")
    msg = str(err.value)
    assert msg == "model 'mock:m,n_ctxx=5': unknown mock argument 'n_ctxx'. Did you mean: n_ctx?"
    assert isinstance(err.value, ConfigError) and err.value.suggestions == ["n_ctx"]
    assert "\n" not in msg


def test_unknown_key_without_a_close_match_lists_the_known_ones():
    with pytest.raises(UnknownOptionError, match=r"unknown mock argument 'zzz'\. Known: chat, dtype, max_length, n_ctx, rate, revision\.$"):
        _parse("mock:m,zzz=1")


@pytest.mark.parametrize(
    "text, message",
    [
        ("n_ctx=abc", "model 'mock:m,n_ctx=abc': n_ctx must be a whole number of at least 1, not 'abc'"),
        ("n_ctx=1.5", "n_ctx must be a whole number of at least 1, not '1.5'"),
        ("n_ctx=true", "n_ctx must be a whole number of at least 1, not 'true'"),
        ("max_length=0", "max_length must be a whole number of at least 1, not '0'"),
        ("rate=fast", "rate must be a number, not 'fast'"),
        ("chat=yes", "chat must be true or false, not 'yes'"),
        ("chat=2", "chat must be true or false, not '2'"),
        ("dtype=float64", "dtype must be one of float32, bfloat16, not 'float64'"),
    ],
)
def test_a_wrong_type_is_one_line_naming_the_argument(text, message):
    with pytest.raises(ConfigError) as err:
        _parse(f"mock:m,{text}")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not isinstance(err.value, UnknownOptionError)


def test_an_argument_of_the_family_not_served_says_why():
    with pytest.raises(ConfigError, match=r"hf argument 'adapter' is not supported for an encoder-decoder model"):
        options.parse(parse_model("hf:x/y,adapter=a/b"), {"dtype": DECLARED["dtype"]}, {"adapter": "for an encoder-decoder model"})


def test_every_backend_declares_its_options():
    # the names documented in README.md and the backends' docstrings, and their defaults
    expected = {
        "llamacpp": {"n_ctx": None, "max_length": 2048, "n_threads": None, "pack_tokens": 2048, "max_seqs": 1, "seed": 0, "share_context": True},
        "replay": {"model": None},
        "openai": {
            "base_url": None, "replicas": None, "api_key_env": None, "concurrency": 8, "rate": None, "timeout": 120.0, "max_retries": 8,
            "backoff": 0.5, "max_backoff": 30.0, "recheck": 10.0, "chat": False, "score_prefix": "", "tokenizer": None, "max_length": 2048,
            "probe": True, "extra_params": True,
        },
        "mock": {"seed": 0, "max_length": 2048, "answer": None, "latency": 0.0, "judge": None},
        "vllm": {
            "dtype": "auto", "tensor_parallel_size": None, "gpu_memory_utilization": None, "max_model_len": None, "max_length": 2048,
            "revision": None, "trust_remote_code": None, "seed": None, "quantization": None, "enforce_eager": None,
        },
    }
    for name, want in expected.items():
        module, attr = BACKENDS[name].split(":")
        cls = getattr(importlib.import_module(module), attr)
        assert {k: o.default for k, o in cls.options.items()} == want, name
        assert all(o.help for o in cls.options.values()), name


def test_hf_backends_declare_their_options():
    pytest.importorskip("transformers")
    from assay.backends.hf import HFBackend
    from assay.backends.hf_seq2seq import HFSeq2SeqBackend
    from assay.backends.hf_vision import HFVisionBackend

    common = {"dtype": "float32", "max_length": None, "revision": None, "trust_remote_code": False, "n_threads": None}
    load = {"adapter": None, "adapter_revision": None, "merge": False, "device_map": None, "load_in_8bit": False, "load_in_4bit": False}
    assert {k: o.default for k, o in HFBackend.options.items()} == {
        **common, "batch_tokens": 4096, "gen_batch_tokens": 16384, "share_context": True, **load
    }
    assert {k: o.default for k, o in HFSeq2SeqBackend.options.items()} == {**common, "batch_tokens": 4096}
    assert set(HFSeq2SeqBackend.unsupported_options) == {"gen_batch_tokens", "share_context", *load}
    assert {k: o.default for k, o in HFVisionBackend.options.items()} == {**common, "batch_size": 8, **load}
    # the hf family's arguments are checked before any weights are looked for
    with pytest.raises(UnknownOptionError, match="unknown hf argument 'batch_token'. Did you mean: batch_tokens"):
        HFBackend(parse_model("hf:/nonexistent/model,batch_token=5"))
    with pytest.raises(ConfigError, match="batch_tokens must be a whole number of at least 1, not '0'"):
        HFBackend(parse_model("hf:/nonexistent/model,batch_tokens=0"))


def test_backends_check_options_before_loading_anything(tmp_path):
    from assay.backends.llamacpp import LlamaCppBackend
    from assay.backends.replay import ReplayBackend

    with pytest.raises(UnknownOptionError, match=r"unknown llamacpp argument 'n_ctxx'\. Did you mean: n_ctx\?"):
        LlamaCppBackend(parse_model(f"llamacpp:{tmp_path / 'missing.gguf'},n_ctxx=5"))
    with pytest.raises(ConfigError, match=r"n_ctx must be a whole number of at least 1, not 'abc'"):
        LlamaCppBackend(parse_model(f"llamacpp:{tmp_path / 'missing.gguf'},n_ctx=abc"))
    with pytest.raises(UnknownOptionError, match=r"unknown replay argument 'modle'\. Did you mean: model\?"):
        ReplayBackend(parse_model(f"replay:{tmp_path / 'a.jsonl'},modle=x"))


def test_threads_option_uses_the_same_rule():
    from assay.backends.cpus import threads_option

    assert threads_option("m", 2) == 2
    with pytest.raises(ConfigError, match="model 'm': n_threads must be a whole number of at least 1, not 'four'"):
        threads_option("m", "four")


def test_hf_names_are_checked_before_the_checkpoint_is_looked_at(monkeypatch):
    pytest.importorskip("transformers")
    from assay.backends import registry
    from assay.backends.hf import HFBackend

    def no_peeking(spec):
        raise AssertionError("the config was fetched before the arguments were checked")

    monkeypatch.setattr(registry, "_hf_kind", no_peeking)
    with pytest.raises(UnknownOptionError, match="unknown hf argument 'batch_token'. Did you mean: batch_tokens"):
        registry.load_backend(parse_model("hf:some-org/some-model,batch_token=3"))
    # a name of the vision-language backend passes the family check; the causal one refuses it
    with pytest.raises(ConfigError, match="hf argument 'batch_size' is not supported for a text-only model"):
        HFBackend(parse_model("hf:/nonexistent/model,batch_size=3"))
