"""The manifest schema: every shipped manifest passes; malformed ones fail with a message that says what to fix."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from workshop_utils.core import manifests
from workshop_utils.core.errors import ManifestError

GOOD = {
    "name": "demo",
    "description": "A demo data set.",
    "licence": "CC0 1.0",
    "citation": "Someone, 2026.",
    "used_by": [1],
    "files": [{"name": "a.zip", "url": "https://example.org/a.zip", "sha256": "a" * 64, "size": 10, "extract": "zip"}],
}


def broken(**changes: object) -> dict:
    raw = copy.deepcopy(GOOD)
    for key, value in changes.items():
        if key.startswith("file_"):
            field = key.removeprefix("file_")
            if value is None:
                raw["files"][0].pop(field, None)
            else:
                raw["files"][0][field] = value
        elif value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


def test_every_shipped_manifest_passes_the_schema() -> None:
    datasets = manifests.load_all()
    assert "stardist_dsb2018_nucleus" in datasets
    for ds in datasets.values():
        assert ds.licence and ds.citation and ds.used_by


def test_good_manifest_parses() -> None:
    ds = manifests.parse_manifest(GOOD)
    assert ds.file().extract == "zip" and ds.file().urls == ("https://example.org/a.zip",)


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"licence": None}, "missing required key(s) ['licence']"),
        ({"colour": "blue"}, "unknown key(s) ['colour']"),
        ({"used_by": []}, "'used_by' must be a non-empty list"),
        ({"kind": "video"}, "'kind' must be one of"),
        ({"files": []}, "'files' must be a non-empty list"),
        ({"file_sha256": "abc"}, "'sha256' must be 64 hex digits"),
        ({"file_size": -1}, "'size' must be a positive number"),
        ({"file_size": 0}, "'size' must be a positive number"),
        ({"file_size": True}, "'size' must be a positive number"),
        ({"file_sha256": None}, "needs exactly one hash"),
        ({"file_md5": "b" * 32}, "needs exactly one hash"),
        ({"file_url": "ftp://x/a.zip"}, "must start with https://"),
        ({"file_extract": "rar"}, "'extract' must be one of"),
        ({"file_package": "stardist"}, "exactly one source"),
        ({"file_url": None}, "exactly one source"),
        ({"file_name": "../evil"}, "needs a 'name'"),
        ({"profiles": ["turbo"]}, "'profiles' must list"),
    ],
)
def test_schema_errors_say_what_is_wrong(changes: dict, fragment: str) -> None:
    with pytest.raises(ManifestError) as excinfo:
        manifests.parse_manifest(broken(**changes), source="demo.yaml")
    assert fragment in str(excinfo.value)
    assert "demo.yaml" in str(excinfo.value)


def test_size_may_be_left_out_where_no_source_publishes_it() -> None:
    entry = manifests.parse_manifest(broken(file_size=None)).file()
    assert entry.size is None and entry.size_text == "size unknown until first download"
    assert manifests.parse_manifest(GOOD).file().size_text == "0.0 MB"


def test_an_md5_stands_in_where_only_an_md5_is_published() -> None:
    entry = manifests.parse_manifest(broken(file_sha256=None, file_md5="AB" * 16)).file()
    assert entry.sha256 is None and entry.md5 == "ab" * 16 and entry.known_hash == "md5:" + "ab" * 16
    assert manifests.parse_manifest(GOOD).file().known_hash == "sha256:" + "a" * 64
    with pytest.raises(ManifestError, match="'md5' must be 32 hex digits"):
        manifests.parse_manifest(broken(file_sha256=None, file_md5="abc"))


def test_name_must_match_file_name(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(GOOD))
    with pytest.raises(ManifestError, match="must equal the file name"):
        manifests.load_manifest(tmp_path / "other.yaml")


def test_invalid_yaml_is_reported_with_the_file(tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ManifestError, match="not valid YAML"):
        manifests.load_manifest(tmp_path / "demo.yaml")


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(ManifestError, match="stardist_dsb2018_nucleus"):
        manifests.get_dataset("no_such_set")


def test_unknown_file_lists_the_files() -> None:
    with pytest.raises(ManifestError, match="img2d.tif"):
        manifests.get_dataset("stardist_dsb2018_nucleus").file("nope.tif")


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4),
                    max_leaves=12))
def test_parser_never_crashes_on_arbitrary_yaml_values(raw: object) -> None:
    try:
        manifests.parse_manifest(raw)
    except ManifestError:
        pass


@settings(max_examples=100, deadline=None)
@given(key=st.sampled_from(sorted(manifests.DATASET_REQUIRED)), value=st.none() | st.integers() | st.lists(st.integers()))
def test_parser_rejects_wrong_types_for_required_keys(key: str, value: object) -> None:
    raw = copy.deepcopy(GOOD)
    raw[key] = value
    if key == "used_by" and isinstance(value, list) and value and all(0 <= v <= 99 for v in value):
        manifests.parse_manifest(raw)
        return
    with pytest.raises(ManifestError):
        manifests.parse_manifest(raw)
