"""What is in the data cache, filling it ahead of time (``make prefetch``, the night before a workshop), and
:func:`try_fetch`, the fetch a lab uses when it can fall back to synthetic data.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import yaml

from workshop_utils.core import data, manifests, paths
from workshop_utils.core.data import fetch
from workshop_utils.core.data_store import OFFLINE_ENV, PREFETCH_HINT, expected_size, offline, read_record
from workshop_utils.core.errors import ChecksumError, DownloadError, ManifestError
from workshop_utils.core.inputs import (
    bad_input,
    describe,
    require_choice,
    require_int,
    require_path,
)
from workshop_utils.core.manifests import Dataset, FileEntry, size_text
from workshop_utils.core.profiles import PROFILES

SYNTHETIC_FALLBACK = "using the synthetic path"  # what try_fetch's notice says a lab does without its data


@dataclass(frozen=True)
class CacheState:
    """Whether one manifest file is available locally; ``size`` is None until a size-less file is first fetched."""

    dataset: str
    file: str
    source: str
    size: int | None
    present: bool
    location: str

    @property
    def size_text(self) -> str:
        """``"12.3 MB"``, or ``"size unknown until first download"``."""
        return manifests.size_text(self.size)


def cache_state(cache_dir: Path | None = None) -> list[CacheState]:
    """Which manifest files are already available (package files, or downloads in the cache).

    Args:
        cache_dir: the download cache to look in; None uses ``WORKSHOP_DATA_DIR``, else ``<repo>/data_cache``.

    Returns:
        One :class:`CacheState` per manifest file: ``dataset``, ``file``, ``source`` (URL or package), ``size``
        (bytes: the manifest's, else the one recorded at the first verified download, else None), ``present`` and
        ``location``.

    Example:
        >>> ready = sum(state.present for state in wu.cache_state())
    """
    cache_dir = None if cache_dir is None else require_path(cache_dir, "cache_state", "cache_dir", "Pass a pathlib.Path, or leave cache_dir out to use the default.")
    states = []
    for ds in manifests.load_all().values():
        folder = (cache_dir or paths.data_cache_dir()) / ds.name
        for entry in ds.files:
            size = entry.size
            if entry.from_package:
                spec = importlib.util.find_spec(entry.package or "")
                base = Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None
                location = base / (entry.package_path or "") if base else None
                present = bool(location and location.is_file())
            else:
                location = folder / entry.name
                size = expected_size(entry, folder)
                present = location.is_file() and (size is None or location.stat().st_size == size)
            states.append(CacheState(ds.name, entry.name, entry.source_text, size, present, str(location or "—")))
    return states


def prefetch_plan(lab: int | None = None, manifest: Path | None = None,
                  profile: str | None = None) -> list[tuple[Dataset, FileEntry]]:
    """The files :func:`prefetch` would fetch: a lab's (or one manifest's, or every manifest's), kept to ``profile``.

    Args:
        lab: only the data sets whose ``used_by`` lists this lab number (0-99); None for all.
        manifest: only this manifest file; None for those in ``data_manifests/``.
        profile: only the data sets this profile needs (``smoke``, ``cpu``, ``gpu``); None for all.

    Returns:
        ``(data set, file entry)`` pairs, in manifest order.

    Example:
        >>> downloads, unknown = prefetch_total(prefetch_plan(profile="gpu"))
    """
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
    return [(ds, entry) for ds in datasets for entry in ds.files]


def prefetch_total(plan: list[tuple[Dataset, FileEntry]], cache_dir: Path | None = None) -> tuple[int, int]:
    """``(bytes, files of unknown size)`` that ``plan`` downloads: url and hub files, not those inside packages.

    A size the manifest leaves out counts as recorded at the first verified download, else as unknown.
    """
    known = unknown = 0
    for ds, entry in plan:
        if entry.from_package:
            continue
        size = expected_size(entry, (cache_dir or paths.data_cache_dir()) / ds.name)
        known, unknown = (known + size, unknown) if size is not None else (known, unknown + 1)
    return known, unknown


def total_text(plan: list[tuple[Dataset, FileEntry]], cache_dir: Path | None = None) -> str:
    """One line: how many files, how much to download (or check), and what ships inside installed packages."""
    known, unknown = prefetch_total(plan, cache_dir)
    downloads = sum(not entry.from_package for _, entry in plan)
    packaged = [entry for _, entry in plan if entry.from_package]
    text = f"{len(plan)} file(s): {downloads} to download or check, {size_text(known)} in total"
    if unknown:
        text += f" plus {unknown} of unknown size"
    if packaged:
        text += f"; {len(packaged)} inside installed packages ({size_text(sum(e.size or 0 for e in packaged))})"
    return text


def pin_line(ds: Dataset, entry: FileEntry, cache_dir: Path | None = None) -> str | None:
    """The manifest entry, as one YAML line, that pins what the first verified download was; None when nothing is
    left to pin (a commit, a sha256 and a size are all in the manifest) or nothing was recorded yet."""
    if entry.from_package:
        return None
    hub = entry.huggingface
    if entry.size is not None and entry.sha256 is not None and (hub is None or hub.pinned):
        return None
    record = read_record((cache_dir or paths.data_cache_dir()) / ds.name, entry)
    if not record or (hub is not None and not isinstance(record.get("commit"), str)):
        return None
    pinned: dict[str, object] = {"name": entry.name}
    if hub is not None:
        pinned["huggingface"] = {"repo": hub.repo, "file": hub.file, "revision": record["commit"],
                                 **({"type": hub.repo_type} if hub.repo_type != "model" else {})}
    else:
        pinned["url"] = entry.urls[0]
        if entry.urls[1:]:
            pinned["mirrors"] = list(entry.urls[1:])
    pinned |= {"sha256": record["sha256"], "size": record["size"]}
    if entry.extract:
        pinned["extract"] = entry.extract
    flow = yaml.safe_dump(pinned, default_flow_style=True, sort_keys=False, width=10**6).strip()
    return (f"pin {ds.name}/{entry.name} for good: in {ds.source_file.name}, replace that file's entry with "
            f"this line:  - {flow}")


def prefetch(lab: int | None = None, manifest: Path | None = None, profile: str | None = None) -> list[Path]:
    """Fetch every file the given lab (or manifest, or all manifests) needs, only what ``profile`` uses if given.

    Prints the total first, then one line per file (with a progress bar while a file downloads), and for a file the
    manifest does not pin fully (a branch, or a missing hash or size) the line to paste into the manifest.
    """
    plan = prefetch_plan(lab, manifest, profile)
    print(f"prefetch{f' --profile {profile}' if profile else ''}: {total_text(plan)}")
    fetched = []
    for ds, entry in plan:
        fetched.append(fetch(ds, entry.name))
        size = expected_size(entry, None if entry.from_package else paths.data_cache_dir() / ds.name)
        print(f"ok  {ds.name}/{entry.name}  ({size_text(size)}, {ds.licence})")
        if line := pin_line(ds, entry):
            print(line)
    return fetched


def prefetch_command(ds: Dataset) -> str:
    """How an attendee fills the cache for ``ds``: ``make prefetch PROFILE=cpu (or python -m ... --profile cpu)``."""
    profile = "cpu" if "cpu" in ds.profiles else ds.profiles[0]
    return f"make prefetch PROFILE={profile} (or {PREFETCH_HINT} --profile {profile})"


def try_fetch(dataset: str | Dataset, file: str | None = None, *, instead: str = SYNTHETIC_FALLBACK) -> Path | None:
    """:func:`fetch`, or one printed line and None when the data cannot be had, so a lab falls back to synthetic data.

    The data cannot be had when ``WORKSHOP_OFFLINE=1`` and it is not cached, when no source answers (offline
    machine, hub or server down), when it fails its checksum after the retries, or when the package that ships it
    is missing. A manifest problem (an unknown data set or file) still raises: that is a bug in the lab.

    Args:
        dataset: a data set's name in ``data_manifests/``, e.g. ``"stardist_dsb2018_nucleus"``, or its ``Dataset``.
        file: the file's name in the data set, e.g. ``"img2d.tif"``; None when the data set has only one file.
        instead: what the lab does without the data, for the notice line (default: the synthetic path).

    Returns:
        The verified local path (as :func:`fetch` returns it), or None after printing one notice line such as
        ``"stardist_dsb2018_nucleus (82.9 MB) is not in the cache and WORKSHOP_OFFLINE=1: using the synthetic
        path. To use the real data: make prefetch PROFILE=cpu (or python -m workshop_utils prefetch --profile cpu)"``.

    Example:
        >>> path = wu.try_fetch("stardist_dsb2018_nucleus", "img2d.tif")
        >>> image = tifffile.imread(path) if path else synthetic_image()
    """
    where = "try_fetch"
    if file is not None and not isinstance(file, str):
        raise bad_input(where, "file as a file name of the data set (a string)", describe(file),
                        "Pass e.g. wu.try_fetch('stardist_dsb2018_nucleus', 'img2d.tif').")
    if not isinstance(instead, str) or not instead.strip():
        raise bad_input(where, "instead as a short phrase saying what the lab does without the data", describe(instead),
                        "Pass e.g. instead='counting on the packaged image only', or leave it out.")
    ds = data.dataset_of(dataset, where)
    entry = ds.file(file)
    try:
        return fetch(ds, entry.name)
    except DownloadError as exc:
        print(fallback_notice(ds, entry, exc, instead))
        return None


def unavailable_reason(entry: FileEntry, error: DownloadError) -> str:
    """Why ``entry`` cannot be had, as the middle of a notice: ``"is not in the cache and WORKSHOP_OFFLINE=1"``."""
    if entry.from_package:
        return f"could not be read from the package {entry.package} ({type(error).__name__}; run `make setup`)"
    if offline():
        return f"is not in the cache and {OFFLINE_ENV}=1"
    if isinstance(error, ChecksumError):
        return "failed its checksum check after the retries (nothing was kept)"
    return "could not be downloaded (no source answered: offline machine, or the server is down)"


def fallback_notice(ds: Dataset, entry: FileEntry, error: DownloadError, instead: str = SYNTHETIC_FALLBACK) -> str:
    """The one line :func:`try_fetch` prints when ``entry`` cannot be had: what, why, and how to get the real data."""
    label = ds.name if len(ds.files) == 1 else f"{ds.name}/{entry.name}"
    folder = None if entry.from_package else paths.data_cache_dir() / ds.name
    size = size_text(expected_size(entry, folder))
    return f"{label} ({size}) {unavailable_reason(entry, error)}: {instead}. To use the real data: {prefetch_command(ds)}"
