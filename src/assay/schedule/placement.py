"""Where a model runs: ``replicas=N``, ``num_cpus=C``, ``num_gpus=G`` among a model's arguments
(``-m hf:org/model,replicas=4,num_gpus=1``). They are read here, before the backend sees the
model, so they never change a model's fingerprint or a run folder's identity."""

from __future__ import annotations

from dataclasses import dataclass, replace

from assay.backends.options import Option, check
from assay.backends.registry import ModelSpec, backend_class
from assay.config import PLACEMENT_KEYS, without_placement

OPTIONS = {
    "replicas": Option(int, 1, "Ray actors that each load the model and take batches (--executor ray)", min=1),
    "num_cpus": Option(float, None, "CPUs reserved for each replica (default 1; --executor ray)", min=0),
    "num_gpus": Option(float, None, "GPUs reserved for each replica (default 0, or vLLM's tensor_parallel_size; --executor ray)", min=0),
}


@dataclass(frozen=True)
class Placement:
    replicas: int = 1
    num_cpus: float | None = None
    num_gpus: float | None = None

    @property
    def given(self) -> bool:
        return self != Placement()


def split_placement(spec: ModelSpec) -> tuple[ModelSpec, Placement]:
    """The model without its placement arguments, and those arguments (checked, one line
    naming the model when one is wrong)."""
    keys = PLACEMENT_KEYS
    if backend_class(spec.backend).remote:  # a server's model: replicas= lists its servers
        keys = tuple(k for k in keys if k != "replicas")
    values = {k: check(spec.text, k, spec.args[k], OPTIONS[k]) for k in keys if k in spec.args}
    if not values:
        return spec, Placement()
    rest = replace(
        spec,
        text=without_placement(spec.text, keys),
        args={k: v for k, v in spec.args.items() if k not in keys},
        raw={k: v for k, v in spec.raw.items() if k not in keys},
    )
    return rest, Placement(**values)
