"""What the transformers backends share (``hf``: causal, encoder-decoder and vision-language
models): their arguments, dtypes, CPU threads, load errors, and generation
(``HFGeneration``: decoding settings, stop ids and strings, trimming the new tokens)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

try:
    import torch
    import transformers
except ImportError as exc:  # pragma: no cover - guarded by the registry
    from assay.errors import MissingDependency

    raise MissingDependency("the 'hf' backend", "hf", "transformers") from exc

from assay.backends.common import missing, trim_at_stop
from assay.backends.cpus import N_THREADS, available_cpus
from assay.backends.options import Option
from assay.errors import BackendError
from assay.requests import GenerateRequest, GenerateResult

DTYPES: dict[str, Any] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}

# the arguments of every transformers backend
OPTIONS: dict[str, Option] = {
    "dtype": Option(str, "float32", "weights' dtype", choices=tuple(DTYPES)),
    "max_length": Option(int, None, "context window in tokens (default 2048, capped by the model's)", min=1),
    "revision": Option(str, None, "hub revision (branch, tag or commit)"),
    "trust_remote_code": Option(bool, False, "run the checkpoint's own modelling code"),
    "n_threads": Option(int, None, N_THREADS, min=1),
}
# how the weights are loaded (hf_load.LoadOptions): causal and vision-language models
LOAD_OPTIONS: dict[str, Option] = {
    "adapter": Option(str, None, "a PEFT LoRA adapter (folder or hub id) on the base model"),
    "adapter_revision": Option(str, None, "the adapter's hub revision"),
    "merge": Option(bool, False, "merge the adapter into the base weights"),
    "device_map": Option(str, None, "auto, cpu or cuda[:N]"),
    "load_in_8bit": Option(bool, False, "8-bit weights (bitsandbytes, CUDA)"),
    "load_in_4bit": Option(bool, False, "4-bit weights (bitsandbytes, CUDA)"),
}
BATCH_TOKENS = Option(int, 4096, "tokens of one scoring pass (rows × longest row)", min=1)


def set_threads(n_threads: int | None) -> None:
    """torch's CPU threads: ``n_threads`` when given, else at most the CPUs this process may
    use (torch counts the affinity mask, not a container's cgroup quota)."""
    if n_threads is not None:
        torch.set_num_threads(n_threads)
    elif available_cpus() < torch.get_num_threads():
        torch.set_num_threads(available_cpus())


def load_error(spec: Any, exc: Exception, what: str = "this model") -> BackendError:
    """A transformers loading failure as one line naming the model."""
    from assay.backends import hub

    if hub.offline() and hub.not_cached(exc):
        return BackendError(hub.offline_hint(spec.target))
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return BackendError(f"{spec.target}: transformers cannot load {what}: {msg}")



class StopStrings(transformers.StoppingCriteria):
    """Ends a row once its decoded new text contains a stop string.

    transformers' own ``stop_strings`` precomputes over the vocabulary and fails on some
    tokenizers; decoding the (short) new text each step works with any tokenizer."""

    def __init__(self, tok: object, until: tuple[str, ...], start: int):
        self.tok, self.until, self.start = tok, [s for s in until if s], start

    def __call__(self, input_ids: torch.LongTensor, scores: object, **kwargs: object) -> torch.BoolTensor:
        texts = self.tok.batch_decode(input_ids[:, self.start:], skip_special_tokens=False)  # type: ignore[attr-defined]
        return torch.tensor([any(s in t for s in self.until) for t in texts], dtype=torch.bool, device=input_ids.device)


class HFGeneration:
    """Generation shared by the transformers backends: one ``model.generate`` call per
    distinct decoding setting, stop ids, explicit sampling settings, and the trimming of each
    row's new tokens. The class it is mixed into provides ``model``, ``tok``, ``pad`` and
    ``_generate_group``."""

    model: Any
    tok: Any
    pad: int

    def _generate_group(self, reqs: list[GenerateRequest]) -> list[GenerateResult]:
        """Generate for requests that share every decoding setting."""
        raise missing(self, "_generate_group", "HFGeneration")

    def _stop_ids(self, r: GenerateRequest) -> list[int]:
        """Token ids that end this request: the model's end-of-generation tokens, the request's
        ``until_ids``, and stop strings that are one added (special) token of this tokenizer,
        so that ``<|end_of_turn|>`` stops even where decoding would hide it."""
        eos = self.model.generation_config.eos_token_id
        ids = list(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        added = self.tok.get_added_vocab()
        ids += [added[s] for s in r.until if s in added]
        ids += list(r.until_ids)
        return list(dict.fromkeys(ids))

    @torch.inference_mode()
    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        results: list[GenerateResult | None] = [None] * len(requests)
        # one call per distinct decoding setting (stops included); sampled requests one at a
        # time, each with its own seed, so a sample never depends on what else is in the batch
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            key = (r.max_tokens, r.temperature, r.top_p, r.top_k, r.repetition_penalty, r.until, r.until_ids, i if r.temperature > 0 else -1)
            groups.setdefault(key, []).append(i)
        for idxs in groups.values():
            for i, res in zip(idxs, self._generate_group([requests[i] for i in idxs])):
                results[i] = res
        return results  # type: ignore[return-value]

    def _generate_kwargs(self, r0: GenerateRequest, stop_ids: list[int], prompt_width: int) -> dict:
        kwargs: dict = dict(
            max_new_tokens=r0.max_tokens, min_new_tokens=0, pad_token_id=self.pad, eos_token_id=stop_ids or None,
            repetition_penalty=r0.repetition_penalty,
        )
        if r0.temperature > 0:
            torch.manual_seed(r0.sampling_seed)
            # every sampling setting explicit: the model's generation_config never adds its own
            kwargs.update(do_sample=True, temperature=r0.temperature, top_p=r0.top_p, top_k=r0.top_k, min_p=None, typical_p=1.0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if r0.until:
            kwargs["stopping_criteria"] = transformers.StoppingCriteriaList([StopStrings(self.tok, r0.until, prompt_width)])
        return kwargs

    def _results(self, reqs: list[GenerateRequest], rows: list[list[int]], stop_ids: list[int]) -> list[GenerateResult]:
        """Each row's new tokens, cut at the first stop id (also the padding of a row that ended
        early: pad is often EOS) and at the first stop string."""
        results = []
        stop_set = set(stop_ids)
        for r, new in zip(reqs, rows):
            n = len(new)
            for k, t in enumerate(new):
                if t in stop_set:
                    n = k
                    break
            else:  # in a batch, a row that ended on a stop string is padded while others go on
                while len(reqs) > 1 and n and new[n - 1] == self.pad:
                    n -= 1
            text, stopped = trim_at_stop(self.tok.decode(new[:n], skip_special_tokens=False), r.until)
            results.append(GenerateResult(text, n, "stop" if stopped or n < len(new) else "length"))
        return results
