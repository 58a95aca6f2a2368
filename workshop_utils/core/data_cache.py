"""What is in the data cache, and filling it ahead of time (``make prefetch``, the night before a workshop).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from workshop_utils.core import manifests, paths
from workshop_utils.core.data import fetch
from workshop_utils.core.errors import ManifestError
from workshop_utils.core.inputs import (
    require_choice,
    require_int,
    require_path,
)
from workshop_utils.core.profiles import PROFILES


@dataclass(frozen=True)
class CacheState:
    """Whether one manifest file is available locally."""

    dataset: str
    file: str
    source: str
    size: int
    present: bool
    location: str


def cache_state(cache_dir: Path | None = None) -> list[CacheState]:
    """Which manifest files are already available (package files, or downloads in the cache).

    Args:
        cache_dir: the download cache to look in; None uses ``WORKSHOP_DATA_DIR``, else ``<repo>/data_cache``.

    Returns:
        One :class:`CacheState` per manifest file: ``dataset``, ``file``, ``source`` (URL or package), ``size``
        (bytes), ``present`` and ``location``.

    Example:
        >>> ready = sum(state.present for state in wu.cache_state())
    """
    cache_dir = None if cache_dir is None else require_path(cache_dir, "cache_state", "cache_dir", "Pass a pathlib.Path, or leave cache_dir out to use the default.")
    states = []
    for ds in manifests.load_all().values():
        for entry in ds.files:
            if entry.from_package:
                spec = importlib.util.find_spec(entry.package or "")
                base = Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None
                location = base / (entry.package_path or "") if base else None
                present = bool(location and location.is_file())
                source = f"package {entry.package}"
            else:
                location = (cache_dir or paths.data_cache_dir()) / ds.name / entry.name
                present = location.is_file() and location.stat().st_size == entry.size
                source = entry.urls[0]
            states.append(CacheState(ds.name, entry.name, source, entry.size, present, str(location or "—")))
    return states


def prefetch(lab: int | None = None, manifest: Path | None = None, profile: str | None = None) -> list[Path]:
    """Fetch every file the given lab (or manifest, or all manifests) needs, only what ``profile`` uses if given."""
    where = "prefetch"
    if lab is not None:
        require_int(lab, where, "lab", minimum=0, maximum=99)
    if profile is not None:
        require_choice(profile, where, "profile", PROFILES, "Pass smoke, cpu or gpu, or leave profile out.")
    if manifest is not None:
        datasets = [manifests.load_manifest(manifest)]
    elif lab is not None:
        datasets = manifests.for_lab(lab, profile)
        if not datasets:
            labs = sorted({n for ds in manifests.load_all().values() for n in ds.used_by})
            scope = f" for profile {profile}" if profile else ""
            raise ManifestError(
                f"No data set in data_manifests/ lists lab {lab} in 'used_by'{scope}; nothing to fetch. "
                f"Expected one of the labs with data: {', '.join(map(str, labs)) or 'none'}. "
                "Check the lab number, or leave --lab out to fetch everything."
            )
    else:
        datasets = [ds for ds in manifests.load_all().values() if profile is None or profile in ds.profiles]
    fetched = []
    for ds in datasets:
        for entry in ds.files:
            fetched.append(fetch(ds, entry.name))
            print(f"ok  {ds.name}/{entry.name}  ({ds.licence})")
    return fetched
