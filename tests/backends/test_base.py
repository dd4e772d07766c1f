"""The Backend base class: what a subclass must implement, the defaults it inherits, and
mixins that fail loudly when their host class lacks a method they call."""

from __future__ import annotations

import importlib

import pytest

from assay.backends.base import Backend, Capabilities, ModelInfo, Origin
from assay.backends.common import TokenScoring
from assay.backends.registry import BACKENDS, load_backend, parse_model
from assay.requests import LoglikelihoodRequest, RollingRequest


class _Full(Backend):
    def __init__(self):
        self.info = ModelInfo("m", "test", "fp-1")
        self.capabilities = Capabilities()

    def loglikelihood(self, requests):
        return []

    def loglikelihood_rolling(self, requests):
        return []

    def generate(self, requests):
        return []


def test_a_subclass_missing_a_request_method_cannot_be_instantiated():
    for missing in ("loglikelihood", "loglikelihood_rolling", "generate"):
        body = {k: (lambda self, requests: []) for k in ("loglikelihood", "loglikelihood_rolling", "generate") if k != missing}
        cls = type(f"No_{missing}", (Backend,), body)
        with pytest.raises(TypeError, match=missing):
            cls()
    with pytest.raises(TypeError):
        Backend()  # type: ignore[abstract]


def test_defaults_of_the_base_class():
    b = _Full()
    assert b.chat_template() is None and b.close() is None
    assert b.fingerprint == "fp-1"
    assert b.serves_stored_answers is False and b.options == {} and b.unsupported_options == {}
    o = Origin("t", "p", "d", 0, True)
    assert b.answers(o) is True and b.bind("k", o) is None and b.unmatched() == []


def test_every_registered_backend_subclasses_backend():
    for name, target in BACKENDS.items():
        module, attr = target.split(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except ImportError:  # an optional extra not installed here
            continue
        assert issubclass(cls, Backend) and not cls.__abstractmethods__, name


def test_only_replay_serves_stored_answers():
    from assay.backends.mock import MockBackend
    from assay.backends.replay import ReplayBackend

    assert ReplayBackend.serves_stored_answers is True and MockBackend.serves_stored_answers is False
    for hook in ("answers", "bind", "unmatched"):
        assert getattr(ReplayBackend, hook) is not getattr(Backend, hook)


def test_load_backend_refuses_a_class_that_is_not_a_backend(monkeypatch):
    from assay.backends import registry

    monkeypatch.setitem(registry.BACKENDS, "mock", "assay.backends.common:TokenScoring")
    with pytest.raises(TypeError, match="does not subclass assay.backends.base.Backend"):
        load_backend(parse_model("mock:m"))


class _HalfScoring(TokenScoring, Backend):
    """Mixes TokenScoring in but provides only part of what it calls."""

    max_length = 8

    def __init__(self):
        self.info = ModelInfo("half", "test", "fp")
        self.capabilities = Capabilities()

    def _encode(self, text, special):
        return [len(w) for w in text.split()]

    def _prefix(self, first):
        return [0]

    def generate(self, requests):
        return []


def test_a_mixin_method_missing_from_the_host_class_fails_loudly():
    b = _HalfScoring()  # the request methods come from TokenScoring, so this instantiates
    with pytest.raises(NotImplementedError, match=r"_HalfScoring must implement _score_rows\(\), which TokenScoring calls"):
        b.loglikelihood([LoglikelihoodRequest("a b", " c")])
    with pytest.raises(NotImplementedError, match=r"_HalfScoring must implement _start\(\), which TokenScoring calls"):
        b.loglikelihood_rolling([RollingRequest("a b c")])


def test_hf_generation_mixin_fails_loudly_without_generate_group():
    pytest.importorskip("transformers")
    from assay.backends.hf_common import HFGeneration
    from assay.requests import GenerateRequest

    class NoGroups(HFGeneration, Backend):
        def loglikelihood(self, requests):
            return []

        def loglikelihood_rolling(self, requests):
            return []

    with pytest.raises(NotImplementedError, match=r"NoGroups must implement _generate_group\(\), which HFGeneration calls"):
        NoGroups().generate([GenerateRequest("x")])


def test_no_backend_imports_another_backends_private_names():
    import ast
    from pathlib import Path

    import assay.backends as pkg

    folder = Path(pkg.__file__).parent
    modules = {p.stem for p in folder.glob("*.py")}
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("assay.backends."):
                if node.module.rsplit(".", 1)[1] in modules:
                    private = [a.name for a in node.names if a.name.startswith("_")]
                    assert not private, f"{path.name} imports {private} from {node.module}"
