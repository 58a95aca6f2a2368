"""Where the workshop keeps things: repository root, build outputs, artifacts, results, data cache."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # workshop_utils/, beside data_manifests/


def repo_root() -> Path:
    """The repository checkout (``WORKSHOP_ROOT`` overrides), found next to this package."""
    override = os.environ.get("WORKSHOP_ROOT")
    if override:
        return Path(override).expanduser().resolve()
    candidate = _PACKAGE_DIR.parent
    if (candidate / "data_manifests").is_dir():
        return candidate
    return Path.cwd().resolve()


def build_dir() -> Path:
    """Everything a run produces (``WORKSHOP_BUILD_DIR`` overrides ``<repo>/build``).

    Returns:
        The build folder, created if missing.

    Example:
        >>> data_dir = wu.build_dir() / "data" / "lab01_synthetic"
    """
    override = os.environ.get("WORKSHOP_BUILD_DIR")
    path = Path(override).expanduser() if override else repo_root() / "build"
    path.mkdir(parents=True, exist_ok=True)
    return path


def artifacts_dir() -> Path:
    """Models and exports that later labs pick up (``build/artifacts``).

    Returns:
        ``build_dir() / "artifacts"``, created if missing.

    Example:
        >>> onnx_path = wu.artifacts_dir() / "nuclei_unet.onnx"
    """
    path = build_dir() / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir() -> Path:
    """One JSON file per lab run (``build/results``)."""
    path = build_dir() / "results"
    path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir() -> Path:
    """The figures each lab saves for the slides, one folder per lab (``build/figures/<lab>/<name>.png``)."""
    path = build_dir() / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_cache_dir() -> Path:
    """Downloaded and extracted data (``WORKSHOP_DATA_DIR`` overrides ``<repo>/data_cache``).

    Instructors point ``WORKSHOP_DATA_DIR`` at one shared volume so a room downloads once.
    """
    override = os.environ.get("WORKSHOP_DATA_DIR")
    path = Path(override).expanduser() if override else repo_root() / "data_cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def manifests_dir() -> Path:
    """The YAML data manifests shipped with the repository."""
    return repo_root() / "data_manifests"


def notebooks_dir() -> Path:
    """The lab notebooks (solution versions)."""
    return repo_root() / "notebooks"
