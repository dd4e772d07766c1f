"""The thread count local backends choose: the affinity mask, capped by a cgroup CPU quota
(v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), and for llama.cpp what other processes leave
free. Fake cgroup trees and load averages in tmp_path; no model."""

from __future__ import annotations

import pytest

from assay.backends.cpus import available_cpus, cgroup_cpus, free_cpus, threads_option
from assay.errors import ConfigError


def _tree(tmp_path, files: dict[str, str], proc: str):
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    root.mkdir(exist_ok=True)
    (tmp_path / "proc_cgroup").write_text(proc)
    return root, tmp_path / "proc_cgroup"


def test_cgroup_v2_quota_of_the_process_and_its_parents(tmp_path):
    root, proc = _tree(tmp_path, {"cpu.max": "max 100000\n", "user/cpu.max": "300000 100000\n", "user/job/cpu.max": "max 100000\n"}, "0::/user/job\n")
    assert cgroup_cpus(root, proc) == 3.0  # the parent's limit applies to the child
    assert available_cpus({0, 1, 2, 3, 4, 5, 6, 7}, root, proc) == 3
    assert available_cpus({0, 1}, root, proc) == 2  # affinity is smaller
    # a fractional quota rounds down, never below one thread
    (root / "user/job/cpu.max").write_text("150000 100000\n")
    assert available_cpus(set(range(8)), root, proc) == 1
    (root / "user/job/cpu.max").write_text("50000 100000\n")
    assert available_cpus(set(range(8)), root, proc) == 1


def test_cgroup_v2_container_root_and_no_quota(tmp_path):
    # inside a container the process's path names the host's cgroup; the limit is at the root
    root, proc = _tree(tmp_path, {"cpu.max": "200000 100000\n"}, "0::/kubepods/pod1/abc\n")
    assert available_cpus(set(range(16)), root, proc) == 2
    (root / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpus(root, proc) is None
    assert available_cpus(set(range(16)), root, proc) == 16


def test_cgroup_v1_cfs_quota(tmp_path):
    files = {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n",
             "cpu,cpuacct/docker/x/cpu.cfs_quota_us": "250000\n", "cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000\n"}
    root, proc = _tree(tmp_path, files, "12:memory:/docker/x\n4:cpu,cpuacct:/docker/x\n0::/\n")
    assert cgroup_cpus(root, proc) == 2.5
    assert available_cpus(set(range(8)), root, proc) == 2
    (root / "cpu,cpuacct/docker/x/cpu.cfs_quota_us").write_text("-1\n")
    assert available_cpus(set(range(8)), root, proc) == 8


def test_no_cgroup_files_means_the_affinity_mask(tmp_path):
    assert available_cpus({3, 5, 7}, tmp_path / "none", tmp_path / "none") == 3
    # unreadable or odd values are ignored, not errors
    root, proc = _tree(tmp_path, {"cpu.max": "lots\n"}, "garbage\n")
    assert available_cpus({0, 1}, root, proc) == 2


def test_free_cpus_leaves_out_what_other_processes_use(tmp_path):
    load = tmp_path / "loadavg"
    load.write_text("2.10 1.50 1.00 3/120 999\n")
    assert free_cpus(2, load, cpu_count=2) == 1  # a busy 2-core machine: one thread
    assert free_cpus(8, load, cpu_count=8) == 6
    load.write_text("0.05 0.50 1.00 1/120 999\n")
    assert free_cpus(2, load, cpu_count=2) == 2
    assert free_cpus(4, load, cpu_count=64) == 4  # never more than the process may use
    load.write_text("100.0 90.0 80.0 50/900 999\n")
    assert free_cpus(4, load, cpu_count=64) == 1  # never fewer than one
    assert free_cpus(3, tmp_path / "missing", cpu_count=8) == 3


def test_real_affinity_mask_is_what_counts(tmp_path):
    import os
    import subprocess
    import sys

    # no quota anywhere: exactly the process's affinity mask
    assert available_cpus(root=tmp_path, proc_cgroup=tmp_path / "none") == len(os.sched_getaffinity(0))
    # a process pinned to one CPU (taskset) gets one thread, whatever the machine has
    code = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); from assay.backends.cpus import available_cpus; print(available_cpus())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


@pytest.mark.parametrize("bad", [0, -2, "four", 1.5, True])
def test_n_threads_option_is_checked(bad):
    with pytest.raises(ConfigError, match="n_threads must be a whole number"):
        threads_option("llamacpp:m.gguf,n_threads=x", bad)
    assert threads_option("m", 3) == 3
