"""Pieces every local backend shares: model fingerprints (of files and checkpoint folders),
the context/continuation token split, rolling windows, stop-string trimming and a tokenizer's
chat template. Pure Python, no heavy imports."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from assay.prompts.chat import ChatTemplate
from assay.requests import LoglikelihoodRequest, LoglikelihoodResult, RollingRequest, RollingResult

_CACHE = Path(os.environ.get("ASSAY_CACHE_DIR", Path.home() / ".cache" / "assay"))


def cache_dir() -> Path:
    """Where assay keeps what it can compute again (``ASSAY_CACHE_DIR``, else ~/.cache/assay)."""
    return _CACHE


def file_sha256(path: Path) -> str:
    """sha256 of a (large) file, remembered by path, size and mtime."""
    st = path.stat()
    memo = _CACHE / "sha256.json"
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return known[key]
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    known[key] = h.hexdigest()
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known))
        tmp.replace(memo)
    except OSError:
        pass
    return known[key]


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def local_fingerprint(folder: Path) -> str:
    """What identifies a local checkpoint folder: the names and sha256 of its weight,
    config and tokenizer files (the size alone of a file of 1 GiB or more)."""
    parts = []
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix in (".json", ".safetensors", ".bin", ".model", ".gguf", ".txt"):
            parts.append((f.name, file_sha256(f) if f.stat().st_size < (1 << 30) else f.stat().st_size))
    return fingerprint(parts)


def chat_template_of(tok: Any) -> ChatTemplate | None:
    """A transformers tokenizer's (or processor's) chat template, with its BOS and EOS text."""
    src = getattr(tok, "chat_template", None)
    if not src or not isinstance(src, str):
        return None
    return ChatTemplate(src, getattr(tok, "bos_token", None) or "", getattr(tok, "eos_token", None) or "")


def split_pair(
    req: LoglikelihoodRequest, encode: Callable[[str], list[int]], prefix: list[int]
) -> tuple[list[int], list[int]]:
    """(context tokens, continuation tokens), split where the strings split.

    Trailing spaces of the context move to the continuation; the whole string is tokenised
    once and the continuation is what follows the context's own tokenisation, as the
    established harnesses do, so that scores are comparable with theirs.
    """
    context, continuation = req.context, req.continuation
    n_spaces = len(context) - len(context.rstrip(" "))
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = encode(context + continuation)
    ctx = encode(context)
    cont = whole[len(ctx):]
    if not cont:  # a continuation that merged into the context's last token
        cont = whole[-1:]
        ctx = whole[:-1]
    return prefix + ctx, cont


def fit_window(ctx: list[int], cont: list[int], max_length: int) -> tuple[list[int], int]:
    """Input ids (context+continuation minus the last token, cut from the left) and the
    number of continuation tokens scored at the end of it."""
    seq = (ctx + cont)[:-1]
    if len(cont) > max_length:
        raise ValueError(f"a continuation of {len(cont)} tokens does not fit a {max_length}-token window")
    return seq[-max_length:], len(cont)


def keep_last(tokens: list[int], room: int) -> tuple[list[int], int]:
    """The last ``room`` tokens of a prompt and how many were cut from its left: the one
    truncation rule of every backend, so each result can say what its model did not read."""
    return tokens[-room:], max(0, len(tokens) - room)


def n_cut(ctx: list[int], cont: list[int], max_length: int) -> int:
    """How many context tokens ``fit_window`` cuts from the left (0 when the pair fits).
    Results carry this count, so a truncated prompt is recorded and counted, never silent."""
    return max(0, len(ctx) + len(cont) - 1 - max_length)


def rolling_windows(tokens: Sequence[int], prefix: int, max_length: int) -> list[tuple[list[int], list[int]]]:
    """Windows (input ids, target ids) that predict every token once.

    Window j predicts tokens[a:b] with b - a <= max_length from the longest preceding
    stretch of ``[prefix] + tokens`` that fits the window.
    """
    seq = [prefix] + list(tokens)
    out = []
    for a in range(0, len(tokens), max_length):
        b = min(len(tokens), a + max_length)
        s = max(0, b - max_length)
        out.append((seq[s:b], list(tokens[a:b])))
    return out


def trim_at_stop(text: str, until: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop string; True when one was found."""
    cut = len(text)
    for s in until:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut], cut < len(text)


def missing(obj: object, method: str, mixin: str) -> NotImplementedError:
    """The error of a mixin whose host class lacks a method the mixin calls."""
    return NotImplementedError(f"{type(obj).__name__} must implement {method}(), which {mixin} calls")


class TokenScoring:
    """``loglikelihood`` and ``loglikelihood_rolling`` for a backend that scores token rows.

    The backend provides ``max_length``, ``_encode(text, special)``, ``_prefix(first_tokens)``
    (the BOS to prepend, if any), ``_start()`` (the token an empty context starts from) and
    ``_score_rows(rows)``: for each (input ids, target ids) the summed log-probability of the
    targets, predicted by the last len(targets) positions, and whether each was the argmax.
    """

    max_length: int

    def _encode(self, text: str, special: bool) -> list[int]:
        raise missing(self, "_encode", "TokenScoring")

    def _prefix(self, first: list[int]) -> list[int]:
        raise missing(self, "_prefix", "TokenScoring")

    def _start(self) -> int:
        raise missing(self, "_start", "TokenScoring")

    def _score_rows(self, rows: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        raise missing(self, "_score_rows", "TokenScoring")

    def _pair(self, r: LoglikelihoodRequest) -> tuple[list[int], list[int]]:
        """(context tokens with their BOS/start token, continuation tokens) of one request."""
        enc = lambda s: self._encode(s, r.special)  # noqa: E731
        first = enc(r.context)
        prefix = self._prefix(first) if first else [self._start()]
        return split_pair(r, enc, prefix)

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        rows, cuts = [], []
        for r in requests:
            ctx, cont = self._pair(r)
            ids, _ = fit_window(ctx, cont, self.max_length)
            rows.append((ids, cont))
            cuts.append(n_cut(ctx, cont, self.max_length))
        return [LoglikelihoodResult(lp, g, len(t), c) for (lp, g), (_, t), c in zip(self._score_rows(rows), rows, cuts)]

    def loglikelihood_rolling(self, requests: Sequence[RollingRequest]) -> list[RollingResult]:
        rows, owner = [], []
        for i, r in enumerate(requests):
            for ids, targets in rolling_windows(self._encode(r.text, False), self._start(), self.max_length):
                rows.append((ids, targets))
                owner.append(i)
        sums, counts = [0.0] * len(requests), [0] * len(requests)
        for (lp, _), i, (_, t) in zip(self._score_rows(rows), owner, rows):
            sums[i] += lp
            counts[i] += len(t)
        return [RollingResult(s, c) for s, c in zip(sums, counts)]


class HFTokens:
    """Tokenisation with a transformers tokenizer, as ``TokenScoring`` needs it; shared by the
    backends that read a checkpoint's own tokenizer (``hf``, ``vllm``). Provides ``tok``,
    ``add_bos``, ``bos`` and ``eos``."""

    tok: Any
    add_bos: bool
    bos: int | None
    eos: int | None

    def _encode(self, text: str, special: bool) -> list[int]:
        if not text:
            return []
        if special:
            return self.tok(text, add_special_tokens=False)["input_ids"]
        return self.tok(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    def _prefix(self, first: list[int]) -> list[int]:
        if self.add_bos and not (first and first[0] == self.bos):
            return [self.bos]  # type: ignore[list-item]
        return []

    def _start(self) -> int:
        return self.bos if self.bos is not None else self.eos  # type: ignore[return-value]
