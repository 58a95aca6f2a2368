"""The CPUs this process may use: cores, the cgroup quota, a fair thread count right now, a peak estimate.

A lab's thread count follows these: ``os.sched_getaffinity``, the cgroup CPU quota (``cpu.max``, set by a
JupyterHub or Kubernetes pod) and the cores other processes leave free, so both sides of a comparison get the
same count and a busy neighbour slows a lab instead of stalling it.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
from typing import Any

from workshop_utils.core.inputs import require_int, require_number, require_path


def cpu_info() -> dict[str, Any]:
    """Processor model, usable cores and total memory of this machine."""
    model = platform.processor() or None
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    cores = usable_cores()
    memory_mib = None
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    memory_mib = int(line.split()[1]) / 1024
                    break
    return {"model": model, "cores": cores, "memory_total_mib": memory_mib, "machine": platform.machine()}


def cgroup_cpu_limit(cpu_max: str = "/sys/fs/cgroup/cpu.max") -> float | None:
    """CPUs' worth of time this container may use (a JupyterHub or Kubernetes pod's quota), or None when unlimited.

    Reads cgroup v2's ``cpu.max`` ("<quota> <period>" in microseconds, or "max <period>").
    """
    require_path(cpu_max, "cgroup_cpu_limit", "cpu_max", "Leave it at its default, /sys/fs/cgroup/cpu.max.")
    try:
        with open(cpu_max, encoding="utf-8") as limit:
            quota, period = limit.read().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by the cgroup quota (rounded up), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity call
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def fair_cpu_threads(sample_s: float = 0.3) -> int:
    """Threads for a CPU benchmark or training: usable cores (affinity, cgroup quota) minus those busy now, >= 1.

    On a shared machine, intra-op threads that outnumber the free cores spin against other processes and can run
    ten times slower than one thread; on an idle machine this returns every core. "Busy" is measured over
    ``sample_s`` seconds now, not from the load average, which still counts processes that ended a minute ago
    (in CI, the previous lab) and would make thread counts, and so results, vary from run to run.

    Args:
        sample_s: how long to measure the CPU load now (s, above 0 and at most 60).

    Returns:
        Threads to use: the usable cores minus the busy ones, at least 1.

    Example:
        >>> torch.set_num_threads(wu.fair_cpu_threads())
    """
    require_number(sample_s, "fair_cpu_threads", "sample_s", minimum=0.0, maximum=60.0, strict=True)
    import psutil

    cores = usable_cores()
    busy = round(psutil.cpu_percent(interval=sample_s) / 100 * (os.cpu_count() or cores))
    return max(1, min(cores, cores - busy))


def cpu_peak_gflops_estimate(cores: int | None = None) -> float | None:
    """Rough fp32 peak of this CPU: cores x clock x FLOPs per cycle from its SIMD flags (an estimate, not a spec).

    Args:
        cores: the cores the measurement may use (the threads a benchmark ran with); None means all usable cores.

    Returns:
        GFLOP/s over those cores, or None where ``/proc/cpuinfo`` gives no flags or clock (e.g. macOS).

    Example:
        >>> peak_gflops = wu.cpu_peak_gflops_estimate(torch.get_num_threads())
    """
    if cores is not None:
        require_int(cores, "cpu_peak_gflops_estimate", "cores", minimum=1)
    flags, mhz = "", None
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags") and not flags:
                    flags = line
                elif line.startswith("cpu MHz") and mhz is None:
                    mhz = float(line.split(":", 1)[1])
    if not flags or not mhz:
        return None
    words = set(flags.split())
    # Two FMA units per core: AVX-512 does 2x16 fp32 FMAs (64 FLOPs) a cycle, AVX2 2x8 (32 FLOPs).
    per_cycle = 64 if "avx512f" in words else 32 if {"avx2", "fma"} <= words else 8
    return (cores or cpu_info()["cores"]) * mhz / 1000 * per_cycle
