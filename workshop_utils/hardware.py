"""What this machine has: GPUs (through NVML and torch), CPU, memory, and which workshop libraries are installed.

Every reading the device does not report comes back as ``None`` rather than raising, and NVML is
initialised in exactly one place (:func:`_nvml_session`) so that a missing driver reads as "no GPU".
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import math
import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass
from typing import Any, Iterator

from .errors import HardwareRequirementError
from .inputs import bad_input, describe, require_choice, require_number

# Distribution name -> import name, for the libraries the labs teach.
WORKSHOP_LIBRARIES: dict[str, str] = {
    "torch": "torch",
    "monai": "monai",
    "nemo_toolkit": "nemo",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "tensorrt": "tensorrt",
    "nvidia-pytriton": "pytriton",
    "tritonclient": "tritonclient",
    "numpy": "numpy",
    "transformers": "transformers",
}

TROUBLESHOOTING = "docs/troubleshooting.md"

# Dense (no sparsity) peak TFLOP/s from NVIDIA's data sheets, by a substring of the NVML device name.
# fp32 is plain FP32 (no TF32); bf16 is the tensor-core figure.
GPU_PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989.4, "fp32": 66.9},
    "H100 80GB HBM3": {"bf16": 989.4, "fp32": 66.9},
    "H100 PCIe": {"bf16": 756.0, "fp32": 51.2},
    "A100": {"bf16": 312.0, "fp32": 19.5},
    "L40S": {"bf16": 362.1, "fp32": 91.6},
    "L4": {"bf16": 121.0, "fp32": 30.3},
    "A10G": {"bf16": 70.0, "fp32": 31.2},
    "A10": {"bf16": 125.0, "fp32": 31.2},
    "T4": {"bf16": 65.0, "fp32": 8.1},  # T4 has no bf16: the figure is its fp16 tensor-core peak
}


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as NVML reports it; fields the driver does not report are None."""

    index: int
    name: str
    memory_total_mib: float | None
    memory_free_mib: float | None
    compute_capability: str | None
    driver_version: str | None
    cuda_driver_version: str | None


def _load_pynvml() -> Any | None:
    try:
        import pynvml  # provided by nvidia-ml-py
    except ImportError:
        return None
    return pynvml


@contextlib.contextmanager
def _nvml_session() -> Iterator[Any | None]:
    """Yield an initialised pynvml module, or None when there is no NVML library or driver."""
    pynvml = _load_pynvml()
    if pynvml is None:
        yield None
        return
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...: all mean "no GPU here"
        yield None
        return
    try:
        yield pynvml
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _maybe(read: Any, *args: Any) -> Any | None:
    try:
        return read(*args)
    except Exception:
        return None


def gpus() -> list[GpuInfo]:
    """The GPUs NVML can see; an empty list where there is no NVML or no driver."""
    found: list[GpuInfo] = []
    with _nvml_session() as nvml:
        if nvml is None:
            return found
        count = _maybe(nvml.nvmlDeviceGetCount) or 0
        driver = _maybe(nvml.nvmlSystemGetDriverVersion)
        cuda = _maybe(nvml.nvmlSystemGetCudaDriverVersion_v2) or _maybe(nvml.nvmlSystemGetCudaDriverVersion)
        cuda_text = f"{cuda // 1000}.{cuda % 1000 // 10}" if isinstance(cuda, int) else None
        for index in range(count):
            handle = _maybe(nvml.nvmlDeviceGetHandleByIndex, index)
            if handle is None:
                continue
            memory = _maybe(nvml.nvmlDeviceGetMemoryInfo, handle)
            capability = _maybe(nvml.nvmlDeviceGetCudaComputeCapability, handle)
            found.append(
                GpuInfo(
                    index=index,
                    name=_text(_maybe(nvml.nvmlDeviceGetName, handle) or "unknown GPU"),
                    memory_total_mib=memory.total / 2**20 if memory else None,
                    memory_free_mib=memory.free / 2**20 if memory else None,
                    compute_capability=f"{capability[0]}.{capability[1]}" if capability else None,
                    driver_version=_text(driver) if driver else None,
                    cuda_driver_version=cuda_text,
                )
            )
    return found


def torch_cuda() -> dict[str, Any]:
    """What torch sees: its version, the CUDA it was built with, and whether a GPU is usable."""
    if importlib.util.find_spec("torch") is None:
        return {"torch": None, "built_with_cuda": None, "cuda_available": False, "device_count": 0}
    import torch

    available = bool(torch.cuda.is_available())
    return {
        "torch": torch.__version__,
        "built_with_cuda": torch.version.cuda,
        "cuda_available": available,
        "device_count": torch.cuda.device_count() if available else 0,
    }


def gpu_usable() -> bool:
    """True when torch can run work on a GPU (NVML alone is not enough: torch may be a CPU build)."""
    return bool(gpus()) and bool(torch_cuda()["cuda_available"])


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
    if not isinstance(cpu_max, (str, os.PathLike)) or not str(cpu_max):
        raise bad_input("hardware.cgroup_cpu_limit", "cpu_max as a file path", describe(cpu_max),
                        "Leave it at its default, /sys/fs/cgroup/cpu.max.")
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
    """
    require_number(sample_s, "hardware.fair_cpu_threads", "sample_s", minimum=0.0, maximum=60.0, strict=True)
    import psutil

    cores = usable_cores()
    busy = round(psutil.cpu_percent(interval=sample_s) / 100 * (os.cpu_count() or cores))
    return max(1, min(cores, cores - busy))


def library_versions() -> dict[str, str | None]:
    """Installed version of each workshop library (None when absent), read without importing it."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for dist in WORKSHOP_LIBRARIES:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    if versions.get("tensorrt") is None and importlib.util.find_spec("tensorrt") is not None:
        # NGC containers install TensorRT without pip metadata; fall back to importing it.
        with contextlib.suppress(Exception):
            import tensorrt

            versions["tensorrt"] = tensorrt.__version__
    return versions


def gpu_peak_tflops(name: str, dtype: str) -> float | None:
    """Data-sheet peak TFLOP/s of a GPU for ``dtype`` ('bf16' or 'fp32'), or None when not in the table."""
    if not isinstance(name, str):
        raise bad_input("hardware.gpu_peak_tflops", "name as the GPU's name (a string)", describe(name),
                        "Pass torch.cuda.get_device_name(0) or a GpuInfo's .name.")
    require_choice(dtype, "hardware.gpu_peak_tflops", "dtype", ("bf16", "fp32"),
                   "Use 'bf16' for the tensor-core figure or 'fp32' for plain FP32.")
    for key, peaks in GPU_PEAK_TFLOPS.items():
        if key.lower() in name.lower():
            return peaks.get(dtype)
    return None


def cpu_peak_gflops_estimate() -> float | None:
    """Rough fp32 peak of this CPU: cores x clock x FLOPs per cycle from its SIMD flags (an estimate, not a spec)."""
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
    return cpu_info()["cores"] * mhz / 1000 * per_cycle


def tritonserver_binary() -> str | None:
    """Path of a standalone ``tritonserver`` (NGC Triton container), or None."""
    return shutil.which("tritonserver") or (
        "/opt/tritonserver/bin/tritonserver" if os.path.exists("/opt/tritonserver/bin/tritonserver") else None
    )


def summary() -> dict[str, Any]:
    """Hardware description stored next to every figure a lab records."""
    return {
        "gpus": [asdict(gpu) for gpu in gpus()],
        "cpu": cpu_info(),
        "torch_cuda": torch_cuda(),
        "platform": platform.platform(),
    }


def print_env(file: Any = None) -> dict[str, Any]:
    """Print a short description of the machine for the first cell of a lab, and return it."""
    if file is not None and not callable(getattr(file, "write", None)):
        raise bad_input("hardware.print_env", "file as a text stream with .write() (or None for the screen)",
                        describe(file), "Leave file out, or pass sys.stdout or an open text file.")
    out = file or sys.stdout
    info = summary()
    versions = library_versions()
    cpu = info["cpu"]
    print(f"Python {versions['python']} on {info['platform']}", file=out)
    memory = f"{cpu['memory_total_mib'] / 1024:.1f} GiB" if cpu["memory_total_mib"] else "unknown memory"
    print(f"CPU: {cpu['model']} · {cpu['cores']} cores · {memory}", file=out)
    if info["gpus"]:
        for gpu in info["gpus"]:
            mem = f"{gpu['memory_total_mib'] / 1024:.0f} GiB" if gpu["memory_total_mib"] else "? GiB"
            print(
                f"GPU {gpu['index']}: {gpu['name']} · {mem} · compute {gpu['compute_capability']} · "
                f"driver {gpu['driver_version']} · CUDA {gpu['cuda_driver_version']}",
                file=out,
            )
    else:
        print("GPU: none found (no NVIDIA driver visible) — the labs run their CPU paths.", file=out)
    torch_state = info["torch_cuda"]
    if info["gpus"] and not torch_state["cuda_available"]:
        print(
            f"Warning: a GPU is present but torch {torch_state['torch']} cannot use it "
            f"(built with CUDA {torch_state['built_with_cuda']}). See {TROUBLESHOOTING}.",
            file=out,
        )
    shown = ", ".join(f"{name} {version or '—'}" for name, version in versions.items() if name != "python")
    print(f"Libraries: {shown}", file=out)
    return {"hardware": info, "versions": versions}


def require_gpu(min_memory_gib: float = 0.0, purpose: str = "this cell") -> GpuInfo:
    """Return the first usable GPU, or raise an error that says what to do instead."""
    require_number(min_memory_gib, "hardware.require_gpu", "min_memory_gib", minimum=0.0)
    if not isinstance(purpose, str) or not purpose.strip():
        raise bad_input("hardware.require_gpu", "purpose as a short text (what the cell does)", describe(purpose),
                        "Pass e.g. purpose='Building a TensorRT engine', or leave it out.")
    found = gpus()
    if not found:
        raise HardwareRequirementError(
            f"{purpose} needs an NVIDIA GPU: expected at least one visible through NVML; got none (no driver found). "
            "Likely cause: this is a CPU-only machine or the container was started without --gpus. "
            "Next step: run with PROFILE='cpu' (the lab's CPU path), or start a GPU instance "
            "(see docs/instructor_guide.md)."
        )
    gpu = max(found, key=lambda g: g.memory_free_mib or 0.0)
    if gpu.memory_free_mib is not None and gpu.memory_free_mib / 1024 < min_memory_gib:
        raise HardwareRequirementError(
            f"{purpose} needs {min_memory_gib:.1f} GiB of free GPU memory: expected that much on one GPU; the best "
            f"({gpu.name}, index={gpu.index}) has {gpu.memory_free_mib / 1024:.1f} GiB free. "
            "Likely cause: another kernel or server still holds memory. Next step: shut down other notebooks' "
            "kernels (Kernel > Shut Down All Kernels) or run `nvidia-smi` to see who holds it."
        )
    if not torch_cuda()["cuda_available"]:
        raise HardwareRequirementError(
            f"{purpose} needs torch with CUDA (expected torch.cuda.is_available()), but torch {torch_cuda()['torch']} "
            f"cannot use {gpu.name}. "
            "Likely cause: a CPU build of torch, or a driver older than torch's CUDA. "
            f"Next step: use the NGC PyTorch container (docs/instructor_guide.md); see {TROUBLESHOOTING}."
        )
    return gpu
