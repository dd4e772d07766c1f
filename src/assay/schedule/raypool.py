"""``--executor ray``: a model's batches computed by Ray actors, one per replica.

Each replica is an actor (``Replica``) that loads the model once, in its own worker process,
with the CPUs and GPUs its placement asks for (``replicas=N,num_cpus=C,num_gpus=G`` among the
model's arguments). The driver (the ``assay run`` process) never loads the model: it asks a
replica for what building requests needs (the model's identity, capabilities and chat
template), makes the same batches as a local run (``scheduler.plan_batches``), keeps at most
``IN_FLIGHT`` of them queued at each replica, and is the only writer of the run store: each
finished batch is committed in one transaction, under the compute session of the replica that
computed it (whose node, process, device and versions are kept as ``worker:<session>``).

A replica that dies (its process killed, its node gone) loses only its batches in flight:
they go back to the front of the queue and are computed by the other replicas, and a
replacement is started while there are replacements left (as many as there were replicas).
Nothing is stored twice: a batch is stored only when its results are back, and a response
already stored is never written again. A driver that dies takes its actors with it; the same
command resumes from the run store, with any number of replicas.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from assay.backends.base import Backend, Capabilities, ModelInfo
from assay.backends.cpus import available_cpus
from assay.backends.registry import ModelSpec, backend_class, load_backend
from assay.errors import AssayError, BackendError, ConfigError, MissingDependency
from assay.prompts.chat import ChatTemplate
from assay.requests import Request, Result
from assay.schedule.placement import Placement
from assay.schedule.scheduler import Commit, Progress, Stats, call, new_session, plan_batches
from assay.schedule.worker import worker_facts
from assay.store.runs import RunStore

IN_FLIGHT = 2  # batches queued at a replica: one computing, one waiting, so it never idles


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependency("--executor ray", "ray", "ray") from None
    return ray


# Ray turns 127.0.0.1 into the machine's network address; another loopback address keeps a
# private instance's traffic on this machine (Linux routes all of 127/8 to the loopback device)
LOCAL_NODE_IP = "127.0.0.2" if sys.platform.startswith("linux") else "127.0.0.1"


def connect(address: str | None) -> bool:
    """Join the Ray cluster at ``address`` ("auto": the one ``ray start`` made on this machine),
    or, with None, start a private local instance on a loopback address with the CPUs this
    process may use (usage statistics off). True when this call started Ray (the caller shuts
    it down)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    quiet: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if address is None:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            ray.init(address="local", num_cpus=available_cpus(), include_dashboard=False, _node_ip_address=LOCAL_NODE_IP, **quiet)
        else:
            host = address.rsplit(":", 1)[0].removeprefix("ray://")
            if _is_loopback(host):  # a cluster on this machine's loopback: the driver joins it there
                quiet["_node_ip_address"] = host
            ray.init(address=address, **quiet)
    except Exception as exc:  # noqa: BLE001  (Ray raises many kinds; the user gets one line)
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise BackendError(f"cannot start or join {where}: {_first_line(exc)}") from None
    return True


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def disconnect() -> None:
    ray = import_ray()
    if ray.is_initialized():
        ray.shutdown()


class RayPrograms:
    """Code answers checked as Ray tasks (one CPU each, anywhere in the cluster), each in the
    sandbox of the node it lands on; a task whose worker dies is run again. ``count``: how
    many programs ran this way."""

    def __init__(self) -> None:
        from assay.scoring.sandbox import run_job

        self.ray = import_ray()
        self.task = self.ray.remote(num_cpus=1, max_retries=3)(run_job)
        self.count = 0

    def __call__(self, jobs: Sequence[Any]) -> list[Any]:
        refs = [self.task.remote(src, stdin, limits) for src, stdin, limits in jobs]
        out = list(self.ray.get(refs))
        self.count += len(out)
        return out


class Replica:
    """One copy of a model in a Ray worker process (the class of the replica actors). A model
    that fails to load is kept as an error and said by ``describe``, so the driver reports it
    in one line instead of Ray's actor-death traceback."""

    def __init__(self, spec: ModelSpec, num_cpus: float | None):
        self.backend: Backend | None = None
        self.error = ""
        try:
            cls = backend_class(spec.backend)
            if num_cpus and "n_threads" in cls.options and "n_threads" not in spec.args:
                # threads as many as the CPUs reserved: replicas on one node do not fight
                spec = ModelSpec(spec.text, spec.backend, spec.target, {**spec.args, "n_threads": max(1, int(num_cpus))}, spec.raw)
            self.backend = load_backend(spec)
        except AssayError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001  (any failure to load is reported, in one line)
            self.error = f"{type(exc).__name__}: {exc}"

    def describe(self) -> dict[str, Any]:
        if self.backend is None:
            return {"error": self.error}
        ray = import_ray()
        b = self.backend
        facts = worker_facts(b, node=ray.get_runtime_context().get_node_id(), gpus=ray.get_gpu_ids())
        return {"info": b.info, "capabilities": b.capabilities, "chat_template": b.chat_template(), "worker": facts}

    def run(self, kind: str, requests: list[Request]) -> list[Result]:
        if self.backend is None:
            raise BackendError(self.error)
        return list(call(self.backend, kind, requests))


@dataclass
class _Slot:
    index: int
    actor: Any
    session: str
    live: bool = False
    dead: bool = False
    inflight: int = 0
    facts: dict[str, Any] = field(default_factory=dict)
    group: Any = None  # its placement group (vLLM over several GPUs)

    def where(self) -> str:
        node = self.facts.get("node_ip") or (self.facts.get("node") or "?")[:12]
        return f"replica {self.index} (node {node}, pid {self.facts.get('pid', '?')})"


class RayReplicas(Backend):
    """A model served by Ray actors, as a ``Backend``: building requests reads its ``info``,
    ``capabilities`` and chat template (from the first replica), and ``execute`` computes a
    run's requests on all replicas. The three batch methods send one batch to one replica."""

    def __init__(self, spec: ModelSpec, placement: Placement, note: Callable[[str], None] = lambda _: None):
        self.ray = import_ray()
        self.spec, self.note = spec, note
        self.num_cpus = placement.num_cpus if placement.num_cpus is not None else 1.0
        # vLLM split over several GPUs: each replica is a placement group of that many GPUs on
        # one node, whose bundles vLLM's own Ray workers take (one GPU each)
        self.tp = int(spec.args.get("tensor_parallel_size") or 1) if spec.backend == "vllm" else 1
        vllm_gpus = float(self.tp) if spec.backend == "vllm" else 0.0
        self.num_gpus = placement.num_gpus if placement.num_gpus is not None else vllm_gpus
        replicas = self._fitting(placement.replicas)
        self.restarts_left = replicas
        self.base_session = new_session()
        self.slots: list[_Slot] = []
        self._template: ChatTemplate | None = None
        self._node_ips: dict[str, str] = {}
        try:
            starting: dict[Any, _Slot] = {}
            for _ in range(replicas):
                slot = self._start()
                starting[slot.actor.describe.remote()] = slot
            first: dict[str, Any] | None = None
            for ref, slot in self._started(starting):
                desc = self._described(ref, slot)
                if "error" in desc:
                    raise BackendError(f"model '{spec.text}': {slot.where()} did not load: {desc['error']}")
                if first is None:
                    first = desc
                elif desc["info"].fingerprint != first["info"].fingerprint:
                    raise BackendError(
                        f"model '{spec.text}': its replicas compute different numbers (fingerprints {first['info'].fingerprint[:12]} and "
                        f"{desc['info'].fingerprint[:12]}: other library versions or files on their nodes); give every node the same"
                    )
                slot.live = True
        except BaseException:
            self.close()
            raise
        assert first is not None
        where = ", ".join(f"{s.facts.get('node_ip', '?')} pid {s.facts.get('pid', '?')}" for s in self.slots)
        self.note(f"  {len(self.slots)} replica(s) on Ray, {self.num_cpus:g} CPU(s) and {self.num_gpus:g} GPU(s) each: {where}")
        self.info: ModelInfo = first["info"]
        self.capabilities: Capabilities = first["capabilities"]
        self._template = first["chat_template"]

    # -- replicas -------------------------------------------------------------------------------
    def _fitting(self, replicas: int) -> int:
        """How many replicas the cluster's nodes can hold at once (at most ``replicas``); a
        placement no node can hold is refused in one line instead of waiting forever."""
        fit = 0
        for node in self.ray.nodes():
            if not node.get("Alive"):
                continue
            res = node.get("Resources", {})
            cpu, gpu = res.get("CPU", 0.0), res.get("GPU", 0.0)
            by_cpu = int(cpu // self.num_cpus) if self.num_cpus > 0 else replicas
            by_gpu = int(gpu // self.num_gpus) if self.num_gpus > 0 else replicas  # a group is packed on one node
            fit += min(by_cpu, by_gpu)
        if fit == 0:
            total = self.ray.cluster_resources()
            raise ConfigError(
                f"model '{self.spec.text}': no node of the Ray cluster has {self.num_cpus:g} CPU(s) and {self.num_gpus:g} GPU(s) free for a replica "
                f"(the cluster has {total.get('CPU', 0):g} CPUs and {total.get('GPU', 0):g} GPUs in all); lower num_cpus= / num_gpus="
            )
        if fit < replicas:
            self.note(f"[yellow]note:[/] the Ray cluster holds {fit} of the {replicas} replicas asked for; running {fit}")
        return min(fit, replicas)

    def _started(self, starting: dict[Any, _Slot], every: float = 30.0) -> list[tuple[Any, _Slot]]:
        """Wait for the replicas to load, in start order; every ``every`` seconds without news,
        say what is still awaited and what the cluster has free (a busy cluster places
        actors only when other jobs release their CPUs or GPUs)."""
        waiting = dict(starting)
        t0 = time.monotonic()
        while waiting:
            ready, _ = self.ray.wait(list(waiting), num_returns=len(waiting), timeout=every)
            for ref in ready:
                waiting.pop(ref)
            if waiting:
                free = self.ray.available_resources()
                self.note(
                    f"  waiting {time.monotonic() - t0:.0f}s for {len(waiting)} of {len(starting)} replica(s) to load "
                    f"(the cluster has {free.get('CPU', 0):g} CPUs and {free.get('GPU', 0):g} GPUs free; each replica takes "
                    f"{self.num_cpus:g} and {self.num_gpus:g})"
                )
        return list(starting.items())

    def _start(self) -> _Slot:
        options: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "max_restarts": 0, "max_concurrency": 1}
        group = None
        if self.tp > 1:
            from ray.util.placement_group import placement_group
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            per = self.num_gpus / self.tp
            group = placement_group([{"GPU": per, "CPU": 1.0}] * self.tp, strategy="STRICT_PACK")
            # the replica holds no GPU itself: vLLM's workers, started inside the group
            # (captured as its child tasks), take one bundle each
            options.update(num_cpus=0, num_gpus=0, scheduling_strategy=PlacementGroupSchedulingStrategy(
                placement_group=group, placement_group_capture_child_tasks=True))
        actor_cls = self.ray.remote(Replica).options(**options)
        index = len(self.slots)
        slot = _Slot(index, actor_cls.remote(self.spec, self.num_cpus), f"{self.base_session}-r{index}", group=group)
        self.slots.append(slot)
        return slot

    def _stop(self, slot: _Slot) -> None:
        try:
            self.ray.kill(slot.actor, no_restart=True)
        except Exception:  # noqa: BLE001,S110  (an actor already gone is fine)
            pass
        if slot.group is not None:
            from ray.util.placement_group import remove_placement_group

            try:
                remove_placement_group(slot.group)
            except Exception:  # noqa: BLE001,S110
                pass
            slot.group = None

    def _described(self, ref: Any, slot: _Slot) -> dict[str, Any]:
        try:
            desc: dict[str, Any] = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as exc:
            return {"error": f"its process died ({_first_line(exc)})"}
        slot.facts = desc.get("worker", {})
        node = slot.facts.get("node")
        if node is not None:  # the address the node joined the cluster with (not a guess from its interfaces)
            if node not in self._node_ips:  # the cluster is asked again only for a node not seen yet
                self._node_ips = {n.get("NodeID"): n.get("NodeManagerAddress") for n in self.ray.nodes()}
            if self._node_ips.get(node):
                slot.facts["node_ip"] = self._node_ips[node]
        return desc

    def _lose(self, slot: _Slot, why: str) -> _Slot | None:
        """Stop a lost replica; its replacement (started, still loading) while any are left."""
        if slot.dead:
            return None
        slot.dead, slot.live = True, False
        self._stop(slot)
        replace = self.restarts_left > 0
        self.note(f"[yellow]note:[/] {slot.where()} was lost ({why}); its batches in flight go to the other replicas"
                  + ("; starting a replacement" if replace else ""))
        if not replace:
            return None
        self.restarts_left -= 1
        return self._start()

    def _live(self) -> list[_Slot]:
        return [s for s in self.slots if s.live]

    # -- computing ------------------------------------------------------------------------------
    def execute(
        self,
        store: RunStore,
        model_fp: str,
        todo: dict[str, Request],
        batch_size: int,
        advance: Progress | None = None,
        on_batch: Callable[[list[tuple[str, Request, Result]]], None] | None = None,
    ) -> Stats:
        """Compute ``todo`` on the replicas; the driver stores each batch as it comes back."""
        ray = self.ray
        lost_errors = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError, ray.exceptions.NodeDiedError)
        commit = Commit(store, model_fp, len(todo), advance, on_batch)
        queue = deque(plan_batches(todo, batch_size))
        inflight: dict[Any, tuple[_Slot, str, list[tuple[str, Request]], float]] = {}
        starting: dict[Any, _Slot] = {}  # replacements loading: their describe() -> slot

        def lose(slot: _Slot, why: str) -> None:
            replacement = self._lose(slot, why)
            if replacement is not None:
                starting[replacement.actor.describe.remote()] = replacement

        fatal: BaseException | None = None
        while (queue and fatal is None) or inflight:
            if fatal is None:
                for slot in sorted(self._live(), key=lambda s: s.inflight):
                    while slot.inflight < IN_FLIGHT and queue:
                        kind, batch = queue.popleft()
                        ref = slot.actor.run.remote(kind, [r for _, r in batch])
                        inflight[ref] = (slot, kind, batch, time.perf_counter())
                        slot.inflight += 1
            if not inflight and not starting:
                raise BackendError(
                    f"model '{self.spec.text}': every replica was lost and none is left to start; "
                    "the finished batches are stored: run the same command again to resume"
                )
            ready, _ = ray.wait([*inflight, *starting], num_returns=1, timeout=None if inflight else 30.0)
            if not ready:  # nothing computing: only a replacement the cluster has not placed yet
                free = ray.available_resources()
                self.note(f"  waiting for a replacement replica (the cluster has {free.get('CPU', 0):g} CPUs and {free.get('GPU', 0):g} GPUs free)")
                continue
            ref = ready[0]
            if ref in starting:
                slot = starting.pop(ref)
                desc = self._described(ref, slot)
                if "error" in desc:
                    lose(slot, f"its replacement did not start: {desc['error']}")
                elif desc["info"].fingerprint != self.info.fingerprint:
                    lose(slot, "its replacement computes other numbers (another fingerprint)")
                else:
                    slot.live = True
            else:
                slot, kind, batch, t0 = inflight.pop(ref)
                slot.inflight -= 1
                try:
                    results: list[Result] = ray.get(ref)
                except lost_errors as exc:
                    queue.appendleft((kind, batch))
                    lose(slot, _first_line(exc))
                except ray.exceptions.RayTaskError as exc:
                    fatal = fatal or _cause(exc, slot)
                else:
                    commit(kind, batch, results, slot.session, slot.facts, t0)
        if fatal is not None:
            raise fatal
        return commit.finish()

    def _one(self, kind: str, requests: Sequence[Request]) -> list[Any]:
        live = self._live()
        if not live:
            raise BackendError(f"model '{self.spec.text}': no replica is running")
        return list(self.ray.get(live[0].actor.run.remote(kind, list(requests))))

    def loglikelihood(self, requests: Sequence[Any]) -> list[Any]:
        return self._one("loglikelihood", requests)

    def loglikelihood_rolling(self, requests: Sequence[Any]) -> list[Any]:
        return self._one("rolling", requests)

    def generate(self, requests: Sequence[Any]) -> list[Any]:
        return self._one("generate", requests)

    def chat_template(self) -> ChatTemplate | None:
        return self._template

    def close(self) -> None:
        """Stop every replica (their processes go, with the model's memory)."""
        for slot in self.slots:
            if not slot.dead:
                self._stop(slot)
                slot.dead = True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _cause(exc: Any, slot: _Slot) -> BaseException:
    """A replica's own error (a backend's one-line AssayError) as the driver raises it."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, AssayError):
        return cause
    if cause is not None:
        return BackendError(f"{slot.where()}: {type(cause).__name__}: {_first_line(cause)}")
    return BackendError(f"{slot.where()}: {_first_line(exc)}")
