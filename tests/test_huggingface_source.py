"""The ``huggingface`` source against a loopback stand-in hub (``HF_ENDPOINT``), answering the routes
``huggingface_hub`` calls: ``GET /api/{models,datasets}/<repo>/revision/<rev>`` (a branch to its commit) and
``HEAD``/``GET /[datasets/]<repo>/resolve/<commit>/<file>`` with ``X-Repo-Commit``, ``ETag``/``X-Linked-Etag``
and ``X-Linked-Size``."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from workshop_utils.core import data, data_cache, data_store, manifests
from workshop_utils.core.errors import ChecksumError, DownloadError, ManifestError
from workshop_utils.core.manifests import Dataset, parse_manifest

from .conftest import LoopbackServer, sha256_hex

WEIGHTS = random.Random(1).randbytes(150_000)
OTHER = random.Random(2).randbytes(150_000)
COMMIT = "a1" * 20
NEXT_COMMIT = "b2" * 20
REPO = "workshop/tiny-model"


class StandInHub:
    """Routes on a LoopbackServer that look like the Hugging Face Hub to ``huggingface_hub``."""

    def __init__(self, server: LoopbackServer, repo_type: str = "model") -> None:
        self.server = server
        self.prefix = "/datasets" if repo_type == "dataset" else ""
        self.api = f"/api/{repo_type}s"

    def branch(self, name: str, commit: str, repo: str = REPO) -> None:
        body = json.dumps({"id": repo, "sha": commit}).encode()
        self.server.add(f"{self.api}/{repo}/revision/{name}", body, headers={"Content-Type": "application/json"})

    def missing_revision(self, name: str, repo: str = REPO) -> None:
        for path in (f"{self.api}/{repo}/revision/{name}", f"{self.prefix}/{repo}/resolve/{name}/model.safetensors"):
            self.server.add(path, b"", fault="404", headers={"X-Error-Code": "RevisionNotFound"})

    def file(self, commit: str, body: bytes, name: str = "model.safetensors", lfs: bool = True,
             etag_of: bytes | None = None, repo: str = REPO, **kwargs: Any) -> str:
        """Serve ``body`` at ``commit``; ``etag_of`` makes the hub announce another content's hash (a lying hub)."""
        announced = body if etag_of is None else etag_of
        headers = {"X-Repo-Commit": commit}
        if lfs:
            headers |= {"X-Linked-Etag": f'"{sha256_hex(announced)}"', "X-Linked-Size": str(len(body)),
                        "ETag": f'"{hashlib.sha1(announced).hexdigest()}"'}  # noqa: S324 - what the hub sends
        else:
            blob = hashlib.sha1(f"blob {len(announced)}\0".encode() + announced).hexdigest()  # noqa: S324 - git's id
            headers["ETag"] = f'"{blob}"'
        path = f"{self.prefix}/{repo}/resolve/{commit}/{name}"
        self.server.add(path, body, headers=headers, **kwargs)
        return path

    def requests(self) -> int:
        return sum(self.server.hits.values())


@pytest.fixture
def hub(isolated_dirs: Path, loopback_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> StandInHub:
    monkeypatch.setenv("HF_ENDPOINT", loopback_server.url(""))
    monkeypatch.setenv("HF_HOME", str(isolated_dirs / "hf-home"))  # nothing read from or written to ~/.cache
    return StandInHub(loopback_server)


def hub_dataset(revision: str = COMMIT, sha256: str | None = sha256_hex(WEIGHTS), size: int | None = len(WEIGHTS),
                repo_type: str | None = None, file: str = "model.safetensors") -> Dataset:
    source: dict[str, Any] = {"repo": REPO, "file": file, "revision": revision}
    if repo_type:
        source["type"] = repo_type
    entry: dict[str, Any] = {"name": "model.safetensors", "huggingface": source}
    if sha256:
        entry["sha256"] = sha256
    if size:
        entry["size"] = size
    return parse_manifest({"name": "hubset", "kind": "model", "description": "d", "licence": "Apache-2.0",
                           "citation": "c", "used_by": [0], "files": [entry]})


def cached(isolated_dirs: Path) -> list[str]:
    folder = isolated_dirs / "cache" / "hubset"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_file_is_fetched_verified_cached_and_not_asked_for_again(hub: StandInHub, isolated_dirs: Path) -> None:
    route = hub.file(COMMIT, WEIGHTS)
    path = data.fetch(hub_dataset(), progress=False)
    assert path == isolated_dirs / "cache" / "hubset" / "model.safetensors" and path.read_bytes() == WEIGHTS
    assert hub.server.hits[route] == 3, "a HEAD for the announced hash, huggingface_hub's HEAD, one GET for the bytes"
    before = hub.requests()
    assert data.fetch(hub_dataset(), progress=False) == path
    assert hub.requests() == before, "a cached, verified hub file must not be asked for again"
    assert not any(name.endswith(".hub") for name in cached(isolated_dirs)), "the staging folder is cleaned up"


def test_a_dataset_repository_is_fetched_from_the_datasets_routes(isolated_dirs: Path, loopback_server: LoopbackServer,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", loopback_server.url(""))
    hub = StandInHub(loopback_server, "dataset")
    route = hub.file(COMMIT, WEIGHTS, name="train.parquet", lfs=False)
    path = data.fetch(hub_dataset(repo_type="dataset", file="train.parquet", sha256=None), progress=False)
    assert path.read_bytes() == WEIGHTS and route.startswith("/datasets/") and hub.server.hits[route] == 3


@pytest.mark.parametrize("lying", [False, True], ids=["hub-announces-it", "hub-hides-it"])
def test_changed_content_at_the_same_name_is_refused(hub: StandInHub, isolated_dirs: Path, lying: bool) -> None:
    route = hub.file(COMMIT, OTHER, etag_of=WEIGHTS if lying else None)
    with pytest.raises(ChecksumError) as excinfo:
        data.fetch(hub_dataset(), progress=False)
    message = str(excinfo.value)
    assert f"expected sha256={sha256_hex(WEIGHTS)}" in message and "changed" in message and "Next step" in message
    assert "model.safetensors" not in cached(isolated_dirs), "nothing may be left under the final name"
    assert not any(name.endswith((".hub", ".record.json")) for name in cached(isolated_dirs))
    assert hub.server.hits[route] == (3 if lying else 1), "an announced change is refused before any download"


def test_a_branch_is_resolved_recorded_and_then_held_to(hub: StandInHub, isolated_dirs: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    hub.branch("main", COMMIT)
    hub.file(COMMIT, WEIGHTS)
    ds = hub_dataset(revision="main", sha256=None, size=None)
    path = data.fetch(ds, progress=False)
    folder = isolated_dirs / "cache" / "hubset"
    record = json.loads(data_store.record_path(folder, ds.file()).read_text())
    assert record["commit"] == COMMIT and record["sha256"] == sha256_hex(WEIGHTS) and record["size"] == len(WEIGHTS)
    line = data_cache.pin_line(ds, ds.file())
    assert line is not None and f"revision: {COMMIT}" in line and f"sha256: {sha256_hex(WEIGHTS)}" in line
    pinned = manifests.parse_manifest({**_raw(ds), "files": [_flow_entry(line)]})
    assert pinned.file().huggingface.pinned and pinned.file().size == len(WEIGHTS)  # type: ignore[union-attr]
    # The branch moves on and the old file is gone from the cache: the recorded commit is still the one used.
    hub.branch("main", NEXT_COMMIT)
    hub.file(NEXT_COMMIT, OTHER)
    path.unlink()
    assert data.fetch(ds, progress=False).read_bytes() == WEIGHTS
    assert hub.server.hits[f"/{REPO}/resolve/{NEXT_COMMIT}/model.safetensors"] == 0
    # Content at the recorded commit that no longer matches the recorded hash is refused.
    path.unlink()
    hub.file(COMMIT, OTHER)
    with pytest.raises(ChecksumError, match="changed"):
        data.fetch(ds, progress=False)
    assert not path.exists()


def _raw(ds: Dataset) -> dict[str, Any]:
    return {"name": ds.name, "kind": ds.kind, "description": "d", "licence": "l", "citation": "c", "used_by": [0]}


def _flow_entry(line: str) -> dict[str, Any]:
    import yaml

    [entry] = yaml.safe_load(line[line.index("- {"):])
    return entry


def test_prefetch_prints_the_pin_line(hub: StandInHub, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    hub.branch("main", COMMIT)
    hub.file(COMMIT, WEIGHTS)
    ds = hub_dataset(revision="main", sha256=None, size=None)
    monkeypatch.setattr(data_cache.manifests, "load_all", lambda directory=None: {"hubset": ds})
    data_cache.prefetch()
    out = capsys.readouterr().out
    assert "pin hubset/model.safetensors" in out and f"revision: {COMMIT}" in out
    data_cache.prefetch()  # until the manifest is pinned, every prefetch repeats the line
    assert f"revision: {COMMIT}" in capsys.readouterr().out
    monkeypatch.setattr(data_cache.manifests, "load_all", lambda directory=None: {"hubset": hub_dataset()})
    data_cache.prefetch()
    assert "pin " not in capsys.readouterr().out


def test_a_revision_that_is_neither_commit_nor_branch_is_a_clear_error(hub: StandInHub, isolated_dirs: Path) -> None:
    hub.missing_revision("no-such-branch")
    with pytest.raises(DownloadError) as excinfo:
        data.fetch(hub_dataset(revision="no-such-branch", sha256=None), progress=False)
    message = str(excinfo.value)
    assert "40-hex commit or a branch" in message and "'no-such-branch'" in message and "Next step" in message
    assert cached(isolated_dirs) in ([], ["model.safetensors.lock"], [".model.safetensors.lock"])


def test_offline_with_a_warm_cache_makes_no_request(hub: StandInHub, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.branch("main", COMMIT)
    hub.file(COMMIT, WEIGHTS)
    ds = hub_dataset(revision="main", sha256=None, size=None)
    data.fetch(ds, progress=False)
    before = hub.requests()
    monkeypatch.setenv("WORKSHOP_OFFLINE", "1")
    assert data.fetch(ds, progress=False).read_bytes() == WEIGHTS
    assert hub.requests() == before


def test_offline_with_a_cold_cache_is_a_clear_error(hub: StandInHub, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    hub.file(COMMIT, WEIGHTS)
    monkeypatch.setenv("WORKSHOP_OFFLINE", "1")
    with pytest.raises(DownloadError, match=r"not in the cache .* WORKSHOP_OFFLINE=1 forbids downloads\. Next step"):
        data.fetch(hub_dataset(), progress=False)
    assert hub.requests() == 0
    assert data_cache.try_fetch(hub_dataset()) is None
    assert capsys.readouterr().out.startswith("hubset (0.1 MB) is not in the cache and WORKSHOP_OFFLINE=1")


def test_an_unreachable_hub_is_a_clear_error(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(DownloadError) as excinfo:
        data.fetch(hub_dataset(), progress=False, retries=0)
    message = str(excinfo.value)
    assert "Hugging Face Hub at http://127.0.0.1:9" in message and "Next step" in message
    assert cached(isolated_dirs) in ([], [".model.safetensors.lock"])


def test_a_server_error_is_retried(hub: StandInHub) -> None:
    route = hub.file(COMMIT, WEIGHTS, fault="500", faulty=1)
    assert data.fetch(hub_dataset(), progress=False, retries=1).read_bytes() == WEIGHTS
    assert hub.server.hits[route] == 4  # our HEAD fails once, is retried, then huggingface_hub's HEAD and GET


def test_cache_state_names_the_hub_source(hub: StandInHub, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.branch("main", COMMIT)
    hub.file(COMMIT, WEIGHTS)
    ds = hub_dataset(revision="main", sha256=None, size=None)
    monkeypatch.setattr(data_cache.manifests, "load_all", lambda directory=None: {"hubset": ds})
    [state] = data_cache.cache_state()
    assert not state.present and state.size is None and state.source == f"huggingface {REPO}@main:model.safetensors"
    data.fetch(ds, progress=False)
    [state] = data_cache.cache_state()
    assert state.present and state.size == len(WEIGHTS)


@pytest.mark.parametrize("hub_source, fragment", [
    ({"repo": "../x", "file": "f"}, "'huggingface.repo' must be"),
    ({"repo": "a/b", "file": "../f"}, "'huggingface.file' must be"),
    ({"repo": "a/b", "file": "f", "type": "space"}, "'huggingface.type' must be one of"),
    ({"repo": "a/b", "file": "f", "revision": "two words"}, "'huggingface.revision' must be"),
    ({"repo": "a/b", "file": "f", "branch": "main"}, "unknown 'huggingface' key(s) ['branch']"),
    ("a/b", "'huggingface' must be a mapping"),
])
def test_hub_schema_errors_say_what_is_wrong(hub_source: object, fragment: str) -> None:
    raw = {**_raw(hub_dataset()), "files": [{"name": "f.bin", "huggingface": hub_source}]}
    with pytest.raises(ManifestError) as excinfo:
        parse_manifest(raw, source="hubset.yaml")
    assert fragment in str(excinfo.value)


def test_a_hub_source_takes_no_md5_and_no_second_source() -> None:
    base = {**_raw(hub_dataset())}
    with pytest.raises(ManifestError, match="not an 'md5'"):
        parse_manifest({**base, "files": [{"name": "f", "huggingface": {"repo": "a/b", "file": "f"}, "md5": "0" * 32}]})
    with pytest.raises(ManifestError, match="exactly one source"):
        parse_manifest({**base, "files": [{"name": "f", "huggingface": {"repo": "a/b", "file": "f"},
                                           "url": "https://x/f", "sha256": "0" * 64}]})
    entry = parse_manifest({**base, "files": [{"name": "f", "huggingface": {"repo": "a/b", "file": "f"}}]}).file()
    assert entry.huggingface is not None and entry.huggingface.revision == "main" and not entry.huggingface.pinned
