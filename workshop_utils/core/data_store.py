"""The data cache's bookkeeping: hashes in pooch's form, the record of a first verified download, the offline switch.

A record, ``<cache>/<data set>/.<file>.record.json``, holds what the first verified download of a file was: its
size and sha256 (and, for a Hugging Face file, the commit it came from). Where a manifest leaves ``size`` (or, for
a Hugging Face file, the commit and ``sha256``) out, later fetches and :func:`cache_state` are held to the record.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from workshop_utils.core.errors import ChecksumError, DownloadError
from workshop_utils.core.files import atomic_write
from workshop_utils.core.manifests import FileEntry

OFFLINE_ENV = "WORKSHOP_OFFLINE"
PREFETCH_HINT = "python -m workshop_utils prefetch"
RECORD_SUFFIX = ".record.json"


def file_digest(path: Path, algorithm: str, chunk_bytes: int = 1 << 20) -> str:
    """Hex digest of a file with ``algorithm`` (``"sha256"``, ``"md5"``, ``"sha1"``), read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def hash_matches(path: Path, known_hash: str) -> bool:
    """Whether the file at ``path`` hashes to ``known_hash`` (pooch's form: ``"sha256:<hex>"`` or ``"md5:<hex>"``)."""
    algorithm, _, expected = known_hash.partition(":")
    return path.is_file() and file_digest(path, algorithm) == expected.lower()


def record_path(folder: Path, entry: FileEntry) -> Path:
    """Where the record of ``entry``'s first verified download lives: ``<folder>/.<name>.record.json``."""
    return folder / f".{entry.name}{RECORD_SUFFIX}"


def _record_source(entry: FileEntry) -> str:
    """What a record was made for; a manifest that changes the hash makes its old record void."""
    return entry.known_hash or ""


def read_record(folder: Path, entry: FileEntry) -> dict[str, Any]:
    """The record of ``entry``'s first verified download in ``folder`` (``size``, ``sha256``), or ``{}``.

    A record written for another hash of the same file name (the manifest changed), or one that cannot be read,
    counts as none.
    """
    path = record_path(folder, entry)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) and record.get("source") == _record_source(entry) else {}


def write_record(folder: Path, entry: FileEntry, path: Path, **extra: Any) -> dict[str, Any]:
    """Record the verified file at ``path`` (its size and sha256, plus ``extra``), atomically; returns the record."""
    record = {"source": _record_source(entry), "file": entry.name, "size": path.stat().st_size,
              "sha256": file_digest(path, "sha256"), **extra}
    with atomic_write(record_path(folder, entry)) as staging:
        staging.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return record


def expected_size(entry: FileEntry, folder: Path | None) -> int | None:
    """The size a cached copy must have: the manifest's, else the one recorded at the first verified download."""
    if entry.size is not None or folder is None:
        return entry.size
    size = read_record(folder, entry).get("size")
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def check_size(entry: FileEntry, folder: Path, path: Path) -> None:
    """After a verified download: the size must equal the manifest's or the recorded one; else nothing stays."""
    expected = expected_size(entry, folder)
    actual = path.stat().st_size
    if expected is not None and actual != expected:
        path.unlink()
        origin = "the manifest's" if entry.size is not None else f"the size recorded at the first download ({record_path(folder, entry).name})"
        raise ChecksumError(
            f"{entry.name}: expected {expected} bytes ({origin}); got {actual} bytes with a matching hash. "
            "Nothing was left under the final name. Likely cause: the manifest's size is out of date. Next step: "
            "correct 'size' in the manifest (or delete the record file if the manifest's hash changed)."
        )
    if entry.size is None and not read_record(folder, entry):
        write_record(folder, entry, path)


def expectation(entry: FileEntry, folder: Path | None = None) -> str:
    """``"sha256=ab12cd34ef56…, size=1024 bytes"`` for messages (the size says so when it is not known yet)."""
    algorithm, _, digest = (entry.known_hash or "sha256:unknown until first download").partition(":")
    size = expected_size(entry, folder)
    return f"{algorithm}={digest[:12]}…, " + ("size unknown until first download" if size is None else f"size={size} bytes")


def offline() -> bool:
    """Whether ``WORKSHOP_OFFLINE=1`` forbids downloads."""
    return os.environ.get(OFFLINE_ENV) == "1"


def offline_error(entry: FileEntry, folder: Path) -> DownloadError:
    """The error for a file that is not cached while ``WORKSHOP_OFFLINE=1``."""
    return DownloadError(
        f"{entry.name} is not in the cache {folder} and {OFFLINE_ENV}=1 forbids downloads. "
        f"Next step: on a machine with network run `{PREFETCH_HINT}`, then share WORKSHOP_DATA_DIR."
    )
