"""What this machine has: GPUs (through NVML and torch), memory, and which workshop libraries are installed.

Every reading the device does not report comes back as ``None`` rather than raising, and NVML is
initialised in exactly one place (:func:`_nvml_session`) so that a missing driver reads as "no GPU".
The CPU side (cores, cgroup quota, fair thread counts) is :mod:`workshop_utils.core.cpus`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from workshop_utils.core.cpus import cpu_info
from workshop_utils.core.errors import HardwareRequirementError
from workshop_utils.core.inputs import bad_input, describe, require_choice, require_number

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
    """Data-sheet peak TFLOP/s of a GPU for ``dtype`` ('bf16' or 'fp32'), or None when not in the table.

    Args:
        name: the GPU's name, e.g. ``torch.cuda.get_device_name(0)``; matched by substring, case-insensitively.
        dtype: ``"bf16"`` for the dense tensor-core figure or ``"fp32"`` for plain FP32 (no TF32).

    Returns:
        The dense (no sparsity) peak in TFLOP/s, or None for a GPU the table does not list.

    Example:
        >>> peak = wu.gpu_peak_tflops(torch.cuda.get_device_name(0), "bf16")
    """
    if not isinstance(name, str):
        raise bad_input("gpu_peak_tflops", "name as the GPU's name (a string)", describe(name),
                        "Pass torch.cuda.get_device_name(0) or a GpuInfo's .name.")
    require_choice(dtype, "gpu_peak_tflops", "dtype", ("bf16", "fp32"),
                   "Use 'bf16' for the tensor-core figure or 'fp32' for plain FP32.")
    for key, peaks in GPU_PEAK_TFLOPS.items():
        if key.lower() in name.lower():
            return peaks.get(dtype)
    return None


def tritonserver_binary() -> str | None:
    """Path of a standalone ``tritonserver`` (NGC Triton container), or None.

    Returns:
        The ``tritonserver`` on ``PATH``, else ``/opt/tritonserver/bin/tritonserver`` if it exists, else None.

    Example:
        >>> binary = wu.tritonserver_binary()
    """
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
    """Print a short description of the machine for the first cell of a lab, and return it.

    Args:
        file: a text stream with ``.write()`` to print to; None prints to ``sys.stdout``.

    Returns:
        ``{"hardware": ..., "versions": ...}``: GPUs, CPU, torch's CUDA state and platform, and library versions.

    Example:
        >>> env = wu.print_env()
    """
    if file is not None and not callable(getattr(file, "write", None)):
        raise bad_input("print_env", "file as a text stream with .write() (or None for the screen)",
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
    require_number(min_memory_gib, "require_gpu", "min_memory_gib", minimum=0.0)
    if not isinstance(purpose, str) or not purpose.strip():
        raise bad_input("require_gpu", "purpose as a short text (what the cell does)", describe(purpose),
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
