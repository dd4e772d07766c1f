"""Choosing in-context examples: by a seeded draw, the first rows, or by image similarity (RICES).

RICES (retrieval-based in-context example selection, as in the IDEFICS and Flamingo
evaluations) ranks the support set by the cosine similarity of its first image to the
document's first image and keeps the k closest, ordered so the most similar example sits last,
next to the question. The image embedding is pluggable: ``pixels`` (built in, no model: a
16×16 colour thumbnail, centred and normalised) or any ``package.module:function`` that maps a
list of RGB Pillow images to one vector per image (a CLIP encoder, for instance).
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from assay.errors import TaskError

Embed = Callable[[list[Any]], Any]


def pixels(pictures: list[Any]) -> np.ndarray:
    """A model-free embedding: each picture as a 16×16 RGB thumbnail, centred, unit length."""
    rows = []
    for im in pictures:
        v = np.asarray(im.convert("RGB").resize((16, 16)), dtype=np.float64).ravel()
        v = v - v.mean()
        rows.append(v / (np.linalg.norm(v) or 1.0))
    return np.stack(rows)


EMBEDDINGS: dict[str, Embed] = {"pixels": pixels}


def embedding(name: str, task: str) -> Embed:
    if name in EMBEDDINGS:
        return EMBEDDINGS[name]
    if ":" not in name:
        raise TaskError(f"task {task}: fewshot.embedding '{name}' is neither built in ({', '.join(EMBEDDINGS)}) nor 'package.module:function'")
    module, attr = name.split(":", 1)
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise TaskError(f"task {task}: fewshot.embedding '{name}' cannot be imported: {exc}") from None
    if not callable(fn):
        raise TaskError(f"task {task}: fewshot.embedding '{name}' is not a function")
    return fn


class Rices:
    """Nearest support examples by first-image similarity, embeddings computed once per image.

    Rows name their pictures by image id (``_images``); ``load`` gives the picture of an id
    (``data.images.load``: the image store is the data layer's, above this one)."""

    def __init__(self, embed: Embed, task: str, load: Callable[[str], Any], batch: int = 64):
        self.embed, self.task, self.load, self.batch = embed, task, load, batch
        self._vec: dict[str, np.ndarray] = {}

    def _first_image(self, doc: dict[str, Any]) -> str:
        refs = doc.get("_images") or ()
        if not refs:
            raise TaskError(f"task {self.task}: row {doc.get('_id')} has no image to compare (fewshot.sampler: rices)")
        return refs[0]

    def _ensure(self, refs: Sequence[str]) -> None:
        todo = [r for r in dict.fromkeys(refs) if r not in self._vec]
        for i in range(0, len(todo), self.batch):
            chunk = todo[i : i + self.batch]
            vecs = np.asarray(self.embed([self.load(r) for r in chunk]), dtype=np.float64)
            if vecs.ndim != 2 or vecs.shape[0] != len(chunk):
                raise TaskError(f"task {self.task}: the embedding returned shape {vecs.shape} for {len(chunk)} images (want one vector per image)")
            norms = np.linalg.norm(vecs, axis=1, keepdims=True)
            vecs = vecs / np.where(norms == 0, 1.0, norms)
            self._vec.update(zip(chunk, vecs))

    def pick(self, doc: dict[str, Any], candidates: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
        refs = [self._first_image(d) for d in candidates]
        mine = self._first_image(doc)
        self._ensure(refs + [mine])
        q = self._vec[mine]
        sims = [float(self._vec[r] @ q) for r in refs]
        # the k most similar, ties broken by row id; most similar last
        order = sorted(range(len(candidates)), key=lambda i: (-sims[i], str(candidates[i]["_id"])))[:k]
        return [candidates[i] for i in reversed(order)]


def pick_random(doc: dict[str, Any], candidates: list[dict[str, Any]], k: int, seed: int) -> list[dict[str, Any]]:
    """k rows drawn with a generator seeded by (seed, document id): independent of order and limit."""
    rng = random.Random(f"{seed}:{doc['_id']}")
    return rng.sample(candidates, min(k, len(candidates)))
