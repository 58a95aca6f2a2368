"""Plumbing and lesson code for the Accelerated AI Workshop labs.

A notebook needs one import, ``import workshop_utils as wu``, and spells every name one way:

- plumbing that every lab uses (hardware, profiles, data, timing, results, answer checks) is ``wu.<name>``:
  ``wu.start_lab``, ``wu.fetch`` (``wu.try_fetch``), ``wu.benchmark``, ``wu.check``. These come from :mod:`workshop_utils.core` and load
  at once (no torch);
- a lab's domain code is ``wu.<module>.<name>``: ``wu.nuclei.segment_nuclei``, ``wu.serving.serve_models``,
  ``wu.asr.transcribe``. Those modules import torch or a framework, so each loads on first use. They are listed in
  ``dir(wu)`` and ``__all__`` so tab completion offers them before they load.

The layers and what may import what: ``docs/architecture.md``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from workshop_utils.core.cpus import cpu_info, cpu_peak_gflops_estimate, fair_cpu_threads, usable_cores
from workshop_utils.core.data import describe, fetch, sha256_of
from workshop_utils.core.data_cache import cache_state, prefetch, try_fetch
from workshop_utils.core.errors import (
    ChecksumError,
    DownloadError,
    HardwareRequirementError,
    InputError,
    LabCheckFailed,
    ManifestError,
    ProfileError,
    UnsafeArchiveError,
    WorkshopError,
)
from workshop_utils.core.hardware import (
    gpu_peak_tflops,
    gpus,
    library_versions,
    print_env,
    require_gpu,
    tritonserver_binary,
)
from workshop_utils.core.paths import artifacts_dir, build_dir, data_cache_dir, repo_root, results_dir
from workshop_utils.core.profiles import PROFILES, choose_profile, explain_profile, per_profile, torch_device
from workshop_utils.core.results import LabRecorder, load_results, start_lab
from workshop_utils.core.timing import STABLE_SPREAD, Stopwatch, Timing, benchmark, compare, speedup_phrase
from workshop_utils.exercises import check

__version__ = "0.1.0"

# Modules a notebook reaches as wu.<module>: name -> import path. Imported on first access (torch, NeMo, PyTriton).
SUBMODULES: dict[str, str] = {
    "nuclei": "workshop_utils.nuclei",
    "nuclei_images": "workshop_utils.nuclei_images",
    "acceleration": "workshop_utils.acceleration",
    "serving": "workshop_utils.serving",
    "speech": "workshop_utils.speech",
    "asr": "workshop_utils.asr",
    "cell_images": "workshop_utils.cell_images",
    "multimodal": "workshop_utils.multimodal",
    "vlm": "workshop_utils.vlm",
    "assistant": "workshop_utils.assistant",
    "doctor": "workshop_utils.instructor.doctor",
}


def __getattr__(name: str) -> ModuleType:
    if name in SUBMODULES:
        module = importlib.import_module(SUBMODULES[name])
        globals()[name] = module  # later lookups skip __getattr__
        return module
    raise AttributeError(f"module 'workshop_utils' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])  # the public names, submodules included, for tab completion


__all__ = [
    "PROFILES",
    "STABLE_SPREAD",
    "ChecksumError",
    "DownloadError",
    "HardwareRequirementError",
    "InputError",
    "LabCheckFailed",
    "LabRecorder",
    "ManifestError",
    "ProfileError",
    "Stopwatch",
    "Timing",
    "UnsafeArchiveError",
    "WorkshopError",
    "artifacts_dir",
    "benchmark",
    "build_dir",
    "cache_state",
    "check",
    "choose_profile",
    "compare",
    "cpu_info",
    "cpu_peak_gflops_estimate",
    "data_cache_dir",
    "describe",
    "explain_profile",
    "fair_cpu_threads",
    "fetch",
    "gpu_peak_tflops",
    "gpus",
    "library_versions",
    "load_results",
    "per_profile",
    "prefetch",
    "print_env",
    "repo_root",
    "require_gpu",
    "results_dir",
    "sha256_of",
    "speedup_phrase",
    "start_lab",
    "torch_device",
    "tritonserver_binary",
    "try_fetch",
    "usable_cores",
    *SUBMODULES,
]
