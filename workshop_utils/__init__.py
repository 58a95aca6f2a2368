"""Plumbing for the Accelerated AI Workshop labs, one module per concern.

Notebooks do ``import workshop_utils as wu`` and call things by name. Light modules (hardware, profiles, data,
timing, results, checks) load at once; modules that pull in torch or a framework load on first use.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from .data import cache_state, describe, fetch, prefetch, sha256_of
from .errors import (
    ChecksumError,
    DownloadError,
    HardwareRequirementError,
    LabCheckFailed,
    ManifestError,
    ProfileError,
    UnsafeArchiveError,
    WorkshopError,
)
from .exercises import check
from .inputs import InputError
from .hardware import cpu_info, fair_cpu_threads, gpus, library_versions, print_env, require_gpu, usable_cores
from .paths import artifacts_dir, build_dir, data_cache_dir, repo_root, results_dir
from .profiles import PROFILES, choose_profile, explain_profile, per_profile
from .results import LabRecorder, load_results, start_lab
from .timing import Stopwatch, Timing, benchmark, compare, speedup_phrase

__version__ = "0.1.0"

# Attributes served from heavier modules, imported on first access: name -> module.
_LAZY: dict[str, str] = {}


def register_lazy(module: str, *names: str) -> None:
    """Expose ``names`` of ``workshop_utils.<module>`` as ``wu.<name>`` without importing it yet."""
    if not isinstance(module, str) or importlib.util.find_spec(f".{module}", __name__) is None:
        raise InputError(f"register_lazy: expected module as the name of a workshop_utils module; got {module!r}. "
                         "Use the file name without .py, e.g. register_lazy('serving', 'serve_models').")
    if not names or not all(isinstance(name, str) and name.isidentifier() for name in names):
        raise InputError(f"register_lazy: expected one or more attribute names; got {names!r}. "
                         "Name what wu.<name> should serve, e.g. register_lazy('serving', 'serve_models').")
    for name in names:
        _LAZY[name] = module


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'workshop_utils' has no attribute {name!r}")


__all__ = [
    "PROFILES",
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
    "data_cache_dir",
    "describe",
    "explain_profile",
    "fair_cpu_threads",
    "fetch",
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
    "usable_cores",
]
register_lazy("serving", "serve_models", "serve_side_by_side", "running_servers", "stop_all_servers", "leftover_workspaces", "run_load", "sweep", "plot_sweep", "read_metrics", "batching_summary", "write_model_repository", "config_pbtxt", "onnx_io", "repository_models")
register_lazy("asr", "transcribe", "ensure_asr_model")
register_lazy("nuclei", "NucleiConfig", "NucleiModel", "NORMALISATION", "ensure_nuclei_model", "load_nuclei_model", "save_nuclei_model", "segment_nuclei", "preprocess", "predict_logits", "postprocess", "count_nuclei", "dice", "nuclei_preset")
register_lazy("multimodal", "classify_cells", "ensure_cell_clip", "load_cell_clip")
