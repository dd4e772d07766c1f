"""Where a run computes its requests (``--executor``): ``local`` (this process, one batch after
the other) or ``ray`` / ``ray:ADDRESS`` (Ray actors, one per model replica; ``raypool``). Both
send the batches of ``scheduler.plan_batches`` and store each one in the run folder from this
process, so a run's results do not depend on the executor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from assay.backends.base import Backend
from assay.backends.registry import ModelSpec, load_backend
from assay.errors import ConfigError
from assay.requests import Request, Result
from assay.schedule.placement import split_placement
from assay.schedule.scheduler import Progress, Stats, execute
from assay.store.runs import RunStore

Note = Callable[[str], None]
OnBatch = Callable[[list[tuple[str, Request, Result]]], None]


class LocalExecutor:
    name = "local"

    def check(self, specs: list[ModelSpec]) -> None:
        for spec in specs:
            if split_placement(spec)[1].given:
                raise ConfigError(f"model '{spec.text}': replicas=, num_cpus= and num_gpus= place a model on Ray workers; add --executor ray")

    def open(self, spec: ModelSpec, note: Note) -> Backend:
        return load_backend(split_placement(spec)[0])

    def execute(self, backend: Backend, store: RunStore, fp: str, todo: dict[str, Request], batch_size: int,
                advance: Progress | None = None, on_batch: OnBatch | None = None) -> Stats:
        return execute(backend, store, fp, todo, batch_size, advance, on_batch)

    @contextmanager
    def scoring(self, note: Note) -> Iterator[None]:
        """Around the scoring of a run: where code answers run (here: this machine)."""
        yield

    def close(self) -> None:
        return None


class RayExecutor(LocalExecutor):
    """Models on Ray actors; a model whose answers are stored (``replay``) or computed by
    servers (``openai``, which spreads its requests over them itself) is used from this
    process."""

    name = "ray"

    def __init__(self, address: str | None):
        from assay.schedule.raypool import import_ray

        import_ray()  # a missing extra is said before any model loads
        self.address = address
        self.started = False
        self.connected = False

    def check(self, specs: list[ModelSpec]) -> None:
        for spec in specs:
            split_placement(spec)

    def open(self, spec: ModelSpec, note: Note) -> Backend:
        from assay.backends.registry import backend_class
        from assay.schedule.raypool import RayReplicas, connect

        spec, placement = split_placement(spec)
        cls = backend_class(spec.backend)
        if cls.serves_stored_answers or cls.remote:
            if placement.given:
                note(f"[yellow]note:[/] {spec.text}: {'its answers are read' if cls.serves_stored_answers else 'its servers compute'}, in this process; num_cpus= and num_gpus= are not used")
            return load_backend(spec)
        if not self.connected:
            self.started = connect(self.address)
            self.connected = True
        return RayReplicas(spec, placement, note)

    def execute(self, backend: Backend, store: RunStore, fp: str, todo: dict[str, Request], batch_size: int,
                advance: Progress | None = None, on_batch: OnBatch | None = None) -> Stats:
        from assay.schedule.raypool import RayReplicas

        if isinstance(backend, RayReplicas):
            return backend.execute(store, fp, todo, batch_size, advance, on_batch)
        return execute(backend, store, fp, todo, batch_size, advance, on_batch)

    @contextmanager
    def scoring(self, note: Note) -> Iterator[None]:
        """Code answers are checked as Ray tasks when the run is on Ray."""
        if not self.connected:
            yield
            return
        from assay.schedule.raypool import RayPrograms
        from assay.scoring.sandbox import programs_run_by

        programs = RayPrograms()
        with programs_run_by(programs):
            yield
        if programs.count:
            note(f"  checked {programs.count} code answers as Ray tasks")

    def close(self) -> None:
        if self.started:
            from assay.schedule.raypool import disconnect

            disconnect()
            self.started = False


def make_executor(setting: str) -> LocalExecutor:
    """``local``, ``ray`` (a private local Ray instance, or the cluster $RAY_ADDRESS names) or
    ``ray:ADDRESS`` (``ray:auto``: the cluster ``ray start`` made on this machine)."""
    if setting == "local":
        return LocalExecutor()
    if setting == "ray":
        import os

        return RayExecutor(os.environ.get("RAY_ADDRESS") or None)
    if setting.startswith("ray:") and len(setting) > 4:
        return RayExecutor(setting[4:])
    raise ConfigError(f"--executor {setting}: expected local, ray, or ray:ADDRESS")
