"""How many CPU threads a local backend should use: the CPUs this process may run on (its
affinity mask), capped by a cgroup CPU quota (a container's ``--cpus``), which
``os.cpu_count()`` ignores. Pure Python, no heavy imports."""

from __future__ import annotations

import math
import os
from pathlib import Path

_CGROUP = Path("/sys/fs/cgroup")
_PROC_CGROUP = Path("/proc/self/cgroup")
_LOADAVG = Path("/proc/loadavg")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _quota(folder: Path) -> float | None:
    """The CPU quota set in one cgroup folder, in CPUs: v2 ``cpu.max`` ("150000 100000"), or v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``. None where there is none ("max", -1)."""
    text = _read(folder / "cpu.max")
    if text is not None:
        parts = text.split()
        if len(parts) == 2 and parts[0] != "max":
            try:
                return int(parts[0]) / int(parts[1]) if int(parts[1]) > 0 else None
            except ValueError:
                return None
        return None
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    try:
        if quota is not None and period is not None and int(quota) > 0 and int(period) > 0:
            return int(quota) / int(period)
    except ValueError:
        pass
    return None


def _cgroup_folders(root: Path, proc_cgroup: Path) -> list[Path]:
    """The cgroup folders whose CPU quota applies to this process: its own cgroup (from
    ``/proc/self/cgroup``) and every folder above it, in the v2 hierarchy and in v1's cpu
    controller; the mount roots themselves too (inside a container, the process's path is the
    host's and the container's own limit sits at the root)."""
    mounts = [root, root / "cpu", root / "cpu,cpuacct", root / "cpuacct,cpu"]
    rels: list[str] = []
    for line in (_read(proc_cgroup) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and (parts[1] == "" or "cpu" in parts[1].split(",")):
            rels.append(parts[2].lstrip("/"))
    out: list[Path] = []
    for mount in mounts:
        for rel in rels:
            folder = mount / rel if rel else mount
            while True:
                if folder not in out:
                    out.append(folder)
                if folder == mount:
                    break
                folder = folder.parent
        if mount not in out:
            out.append(mount)
    return [f for f in out if f.is_dir()]


def cgroup_cpus(root: Path = _CGROUP, proc_cgroup: Path = _PROC_CGROUP) -> float | None:
    """The smallest CPU quota of the cgroups this process is in, in CPUs (1.5 = 150 ms of CPU
    time per 100 ms), or None where no quota is set."""
    quotas = [q for f in _cgroup_folders(root, proc_cgroup) if (q := _quota(f)) is not None]
    return min(quotas) if quotas else None


def available_cpus(affinity: set[int] | None = None, root: Path = _CGROUP, proc_cgroup: Path = _PROC_CGROUP) -> int:
    """CPUs this process can actually use: its affinity mask, capped by its cgroup quota
    (rounded down, at least 1: a thread that gets only part of a CPU stalls the others at
    every synchronisation point)."""
    if affinity is None:
        try:
            affinity = os.sched_getaffinity(0)
        except (AttributeError, OSError):  # not Linux
            affinity = set(range(os.cpu_count() or 1))
    n = max(1, len(affinity))
    quota = cgroup_cpus(root, proc_cgroup)
    if quota is not None:
        n = min(n, max(1, math.floor(quota)))
    return n


def free_cpus(available: int, loadavg: Path = _LOADAVG, cpu_count: int | None = None) -> int:
    """Of ``available`` CPUs, how many other processes leave free: the machine's CPUs minus its
    one-minute load average (taken when the backend starts, before this process computes
    anything), at most ``available``, at least 1. llama.cpp's threads wait for each other
    at every operation, so one more thread than there are free CPUs makes every decode wait
    for the scheduler (20 COPA items: 177 s with 2 threads, 10 s with 1, on a busy 2-core
    machine)."""
    text = _read(loadavg)
    try:
        load = float(text.split()[0]) if text else 0.0
    except ValueError:
        load = 0.0
    total = cpu_count or os.cpu_count() or available
    return max(1, min(available, math.floor(total - load + 0.5)))


N_THREADS = "CPU threads (default: the CPUs this process may use)"


def threads_option(model: str, value: object) -> int:
    """A model's ``n_threads=`` option, checked: a whole number of at least 1."""
    from assay.backends.options import Option, check

    return check(model, "n_threads", value, Option(int, None, N_THREADS, min=1))
