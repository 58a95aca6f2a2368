"""Data manifests: one YAML file per data set or model under ``data_manifests/``, checked against a schema.

A file entry has exactly one source: a download (``url``, optional ``mirrors``, optional ``extract``) or a
file shipped inside an installed Python package (``package`` + ``path``). Each carries one hash, ``sha256`` (the
default) or ``md5`` (where a source publishes only an md5), and ``size`` in bytes where a source publishes it; a
missing size is recorded from the first verified download and checked from then on (``core/data.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workshop_utils.core import paths
from workshop_utils.core.errors import ManifestError
from workshop_utils.core.inputs import bad_input, describe, require_file, require_folder, require_int
from workshop_utils.core.profiles import PROFILES, require_profile

DATASET_KEYS = {"name", "kind", "description", "licence", "citation", "used_by", "profiles", "files", "notes"}
DATASET_REQUIRED = {"name", "description", "licence", "citation", "used_by", "files"}
FILE_KEYS = {"name", "url", "mirrors", "package", "path", "sha256", "md5", "size", "extract"}
EXTRACT_FORMATS = {"zip", "tar", "tar.gz", "tgz"}
KINDS = {"dataset", "model"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class FileEntry:
    """One file of a data set: where it comes from and what it must hash to.

    ``sha256`` is None only where the manifest gives an ``md5`` instead; ``size`` is None where no source publishes
    it (the first verified download records it).
    """

    name: str
    sha256: str | None
    size: int | None
    urls: tuple[str, ...] = ()
    package: str | None = None
    package_path: str | None = None
    extract: str | None = None
    md5: str | None = None

    @property
    def from_package(self) -> bool:
        return self.package is not None

    @property
    def known_hash(self) -> str | None:
        """The manifest's hash in pooch's form, ``"sha256:<hex>"`` or ``"md5:<hex>"``; None where none is given."""
        if self.sha256:
            return f"sha256:{self.sha256}"
        return f"md5:{self.md5}" if self.md5 else None

    @property
    def size_text(self) -> str:
        """The size for messages: ``"12.3 MB"``, or ``"size unknown until first download"``."""
        return size_text(self.size)


def size_text(size: int | None) -> str:
    """``"12.3 MB"`` for a byte count, ``"size unknown until first download"`` for None."""
    return "size unknown until first download" if size is None else f"{size / 1e6:.1f} MB"


@dataclass(frozen=True)
class Dataset:
    """A data set or model with its licence and provenance."""

    name: str
    kind: str
    description: str
    licence: str
    citation: str
    used_by: tuple[int, ...]
    profiles: tuple[str, ...]
    files: tuple[FileEntry, ...]
    source_file: Path

    def file(self, name: str | None = None) -> FileEntry:
        """The named file, or the only file when ``name`` is None."""
        if name is None and len(self.files) == 1:
            return self.files[0]
        for entry in self.files:
            if entry.name == name:
                return entry
        known = ", ".join(entry.name for entry in self.files)
        problem = "holds several files; name one" if name is None else f"has no file {name!r}"
        raise ManifestError(
            f"Data set {self.name!r} {problem}: expected one of its known files: {known}. "
            f"Next step: pass one of those names, e.g. wu.fetch({self.name!r}, {self.files[0].name!r})."
        )


def _fail(source: str, message: str) -> ManifestError:
    return ManifestError(f"{source}: {message} Fix the manifest (the expected schema is in data_manifests/README.md).")


def _parse_hash(raw: dict[str, Any], where: str) -> tuple[str | None, str | None]:
    """``(sha256, md5)`` from an entry: exactly one of them, lower-case hex."""
    if ("sha256" in raw) == ("md5" in raw):
        raise _fail(where, "needs exactly one hash: 'sha256' (64 hex digits), or 'md5' (32 hex digits) where the "
                           "source publishes only an md5.")
    if "md5" in raw:
        md5 = str(raw["md5"]).lower()
        if not _MD5.match(md5):
            raise _fail(where, f"'md5' must be 32 hex digits; got {raw['md5']!r}.")
        return None, md5
    sha256 = str(raw["sha256"]).lower()
    if not _SHA256.match(sha256):
        raise _fail(where, f"'sha256' must be 64 hex digits; got {raw['sha256']!r}.")
    return sha256, None


def _parse_file(raw: Any, source: str) -> FileEntry:
    if not isinstance(raw, dict):
        raise _fail(source, f"each entry of 'files' must be a mapping; got {type(raw).__name__}.")
    where = f"{source} file {raw.get('name', '?')!r}"
    unknown = set(raw) - FILE_KEYS
    if unknown:
        raise _fail(where, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(FILE_KEYS)}.")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(where, "needs a 'name' of letters, digits, '.', '_' or '-'.")
    sha256, md5 = _parse_hash(raw, where)
    size = raw.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        raise _fail(where, f"'size' must be a positive number of bytes (or left out where no source publishes it); "
                           f"got {size!r}.")
    has_url, has_package = "url" in raw, "package" in raw
    if has_url == has_package:
        raise _fail(where, "needs exactly one source: 'url' (a download) or 'package' + 'path' (inside a wheel).")
    if has_package:
        if not isinstance(raw.get("path"), str) or not raw["path"]:
            raise _fail(where, "a 'package' source needs 'path', the file's path inside the package.")
        if "mirrors" in raw or "extract" in raw:
            raise _fail(where, "'mirrors' and 'extract' apply to downloads only.")
        return FileEntry(name, sha256, size, package=str(raw["package"]), package_path=raw["path"], md5=md5)
    urls = [raw["url"], *(raw.get("mirrors") or [])]
    for url in urls:
        if not isinstance(url, str) or not re.match(r"^(https?|file)://", url):
            raise _fail(where, f"URL {url!r} must start with https://, http:// or file://.")
    extract = raw.get("extract")
    if extract is not None and extract not in EXTRACT_FORMATS:
        raise _fail(where, f"'extract' must be one of {sorted(EXTRACT_FORMATS)}; got {extract!r}.")
    return FileEntry(name, sha256, size, urls=tuple(urls), extract=extract, md5=md5)


def parse_manifest(raw: Any, source: str = "<manifest>", source_file: Path | None = None) -> Dataset:
    """Check one manifest mapping against the schema and return it as a :class:`Dataset`."""
    if not isinstance(source, str):
        raise bad_input("parse_manifest", "source as a name for messages (a string)", describe(source),
                        "Pass the manifest's file name, e.g. source='demo.yaml'.")
    if not isinstance(raw, dict):
        raise _fail(source, f"the top level must be a mapping; got {type(raw).__name__}.")
    missing = DATASET_REQUIRED - set(raw)
    if missing:
        raise _fail(source, f"missing required key(s) {sorted(missing)}.")
    unknown = set(raw) - DATASET_KEYS
    if unknown:
        raise _fail(source, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(DATASET_KEYS)}.")
    for key in ("name", "description", "licence", "citation"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise _fail(source, f"{key!r} must be a non-empty string.")
    if not _NAME.match(raw["name"]):
        raise _fail(source, f"'name' {raw['name']!r} may hold only letters, digits, '.', '_' and '-'.")
    kind = raw.get("kind", "dataset")
    if kind not in KINDS:
        raise _fail(source, f"'kind' must be one of {sorted(KINDS)}; got {kind!r}.")
    used_by = raw["used_by"]
    if not isinstance(used_by, list) or not used_by or not all(isinstance(n, int) and 0 <= n <= 99 for n in used_by):
        raise _fail(source, f"'used_by' must be a non-empty list of lab numbers (0-99); got {used_by!r}.")
    profiles = raw.get("profiles", list(PROFILES))
    if not isinstance(profiles, list) or not set(profiles) <= set(PROFILES) or not profiles:
        raise _fail(source, f"'profiles' must list some of smoke, cpu, gpu; got {profiles!r}.")
    files = raw["files"]
    if not isinstance(files, list) or not files:
        raise _fail(source, "'files' must be a non-empty list.")
    entries = tuple(_parse_file(item, source) for item in files)
    names = [entry.name for entry in entries]
    if len(set(names)) != len(names):
        raise _fail(source, f"file names must be unique within a data set; got {names}.")
    return Dataset(
        name=raw["name"],
        kind=kind,
        description=raw["description"].strip(),
        licence=raw["licence"].strip(),
        citation=raw["citation"].strip(),
        used_by=tuple(used_by),
        profiles=tuple(profiles),
        files=entries,
        source_file=source_file or Path(source),
    )


def load_manifest(path: Path) -> Dataset:
    """Read and check one manifest file."""
    path = require_file(path, "load_manifest", "path",
                        "Pass a manifest file, e.g. data_manifests/stardist_dsb2018_nucleus.yaml.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: not valid YAML ({exc}). Fix the file's syntax.") from exc
    dataset = parse_manifest(raw, source=path.name, source_file=path)
    if dataset.name != path.stem:
        raise _fail(path.name, f"'name' ({dataset.name!r}) must equal the file name without .yaml ({path.stem!r}).")
    return dataset



def load_all(directory: Path | None = None) -> dict[str, Dataset]:
    """Every manifest in ``data_manifests/`` by name."""
    folder = paths.manifests_dir() if directory is None else require_folder(directory, "load_all", "directory", "Leave directory out to use data_manifests/, or pass an existing folder of manifest .yaml files.")
    return {ds.name: ds for ds in (load_manifest(p) for p in sorted(folder.glob("*.yaml")))}


def get_dataset(name: str, directory: Path | None = None) -> Dataset:
    """The manifest entry ``name``, or an error listing the known ones."""
    if not isinstance(name, str):
        raise bad_input("get_dataset", "name as a data set's name (a string)", describe(name),
                        "Pass a name such as 'stardist_dsb2018_nucleus' (see data_manifests/).")
    datasets = load_all(directory)
    if name not in datasets:
        raise ManifestError(
            f"Unknown data set {name!r}. Known: {', '.join(sorted(datasets)) or 'none'}. "
            "Check the spelling, or add a manifest to data_manifests/."
        )
    return datasets[name]


def for_lab(lab: int, profile: str | None = None, directory: Path | None = None) -> list[Dataset]:
    """Data sets a lab uses (optionally only those its ``profile`` needs)."""
    require_int(lab, "for_lab", "lab", minimum=0, maximum=99)
    if profile is not None:
        profile = require_profile(profile, "for_lab")
    return [
        ds
        for ds in load_all(directory).values()
        if lab in ds.used_by and (profile is None or profile in ds.profiles)
    ]
