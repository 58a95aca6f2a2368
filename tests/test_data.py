"""Fetching against a loopback HTTP server: good file, faults, mirrors, locking, safe extraction."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import random
import tarfile
import zipfile
from pathlib import Path

import pytest

from workshop_utils.core import data, data_cache, data_store
from workshop_utils.core.errors import ChecksumError, DownloadError, ManifestError, UnsafeArchiveError
from workshop_utils.core.manifests import Dataset, parse_manifest, size_text

from .conftest import LoopbackServer, sha256_hex

PAYLOAD = random.Random(0).randbytes(200_000)  # same bytes in spawned processes


def dataset(urls: list[str], body: bytes = PAYLOAD, name: str = "blob.bin", extract: str | None = None,
            size: bool = True, md5: bool = False) -> Dataset:
    entry: dict[str, object] = {"name": name, "url": urls[0]}
    entry.update({"md5": hashlib.md5(body).hexdigest()} if md5 else {"sha256": sha256_hex(body)})
    if size:
        entry["size"] = len(body)
    if urls[1:]:
        entry["mirrors"] = urls[1:]
    if extract:
        entry["extract"] = extract
    raw = {"name": "testset", "description": "d", "licence": "CC0", "citation": "c", "used_by": [0], "files": [entry]}
    return parse_manifest(raw)


def cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "testset").iterdir() if p.is_file() and not p.name.endswith(".lock")) if (cache / "testset").exists() else []


def test_an_md5_manifest_is_fetched_and_checked(isolated_dirs: Path, loopback_server: LoopbackServer) -> None:
    ds = dataset([loopback_server.add("/md5.bin", PAYLOAD)], md5=True)
    assert data.fetch(ds, progress=False).read_bytes() == PAYLOAD
    assert data.fetch(ds, progress=False).read_bytes() == PAYLOAD
    assert loopback_server.hits["/md5.bin"] == 1
    loopback_server.add("/md5-wrong.bin", PAYLOAD, fault="wrong")
    wrong = dataset([loopback_server.url("/md5-wrong.bin")], md5=True, name="other.bin")
    with pytest.raises(ChecksumError, match=r"(?s)expected md5=.*md5 mismatch"):
        data.fetch(wrong, progress=False, retries=0)
    assert "other.bin" not in cache_files(isolated_dirs / "cache")


def test_a_size_less_file_records_its_size_then_is_held_to_it(isolated_dirs: Path, loopback_server: LoopbackServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ds = dataset([loopback_server.add("/nosize.bin", PAYLOAD)], size=False, md5=True)
    folder = isolated_dirs / "cache" / "testset"
    assert data_store.expected_size(ds.file(), folder) is None
    path = data.fetch(ds, progress=False)
    record = json.loads(data_store.record_path(folder, ds.file()).read_text())
    assert record["size"] == len(PAYLOAD) and record["sha256"] == sha256_hex(PAYLOAD)
    assert data_store.expected_size(ds.file(), folder) == len(PAYLOAD)
    monkeypatch.setattr(data_cache.manifests, "load_all", lambda directory=None: {"testset": ds})
    [state] = data_cache.cache_state()
    assert state.present and state.size == len(PAYLOAD) and state.size_text == "0.2 MB"
    path.write_bytes(PAYLOAD[:-1])  # a cut-off copy no longer has the recorded size
    assert not data_cache.cache_state()[0].present
    # An md5 collision stand-in: the server now sends bytes that pass the hash check but not the recorded size.
    path.unlink()
    record["size"] = len(PAYLOAD) + 1
    data_store.record_path(folder, ds.file()).write_text(json.dumps(record))
    with pytest.raises(ChecksumError, match=r"expected 200001 bytes \(the size recorded"):
        data.fetch(ds, progress=False)
    assert not path.exists()


def test_a_manifest_size_is_checked_after_download(isolated_dirs: Path, loopback_server: LoopbackServer) -> None:
    raw = {"name": "testset", "description": "d", "licence": "CC0", "citation": "c", "used_by": [0],
           "files": [{"name": "blob.bin", "url": loopback_server.add("/sized.bin", PAYLOAD),
                      "sha256": sha256_hex(PAYLOAD), "size": len(PAYLOAD) - 1}]}
    with pytest.raises(ChecksumError, match="the manifest's size is out of date"):
        data.fetch(parse_manifest(raw), progress=False)
    assert cache_files(isolated_dirs / "cache") == []


def test_try_fetch_returns_the_path_when_the_data_can_be_had(isolated_dirs: Path, loopback_server: LoopbackServer,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    ds = dataset([loopback_server.add("/try.bin", PAYLOAD)])
    path = data_cache.try_fetch(ds)
    assert path is not None and path.read_bytes() == PAYLOAD
    assert "synthetic" not in capsys.readouterr().out


def test_try_fetch_offline_prints_one_notice_and_returns_none(isolated_dirs: Path, loopback_server: LoopbackServer,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WORKSHOP_OFFLINE", "1")
    assert data_cache.try_fetch(dataset([loopback_server.add("/off.bin", PAYLOAD)])) is None
    assert loopback_server.hits["/off.bin"] == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["testset (0.2 MB) is not in the cache and WORKSHOP_OFFLINE=1: using the synthetic path. To use "
                     "the real data: make prefetch PROFILE=cpu (or python -m workshop_utils prefetch --profile cpu)"]


@pytest.mark.parametrize("fault, why", [("500", "could not be downloaded"), ("wrong", "failed its checksum")])
def test_try_fetch_falls_back_when_the_server_fails(isolated_dirs: Path, loopback_server: LoopbackServer,
                                                   capsys: pytest.CaptureFixture[str], fault: str, why: str) -> None:
    ds = dataset([loopback_server.add(f"/{fault}.bin", PAYLOAD, fault=fault)], size=False)
    assert data_cache.try_fetch(ds) is None
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(f"testset (size unknown until first download) {why}") and "make prefetch" in line
    assert cache_files(isolated_dirs / "cache") == []


def test_try_fetch_still_raises_on_a_lab_bug() -> None:
    with pytest.raises(ManifestError, match="Known"):
        data_cache.try_fetch("no_such_set")


def test_good_file_is_fetched_verified_and_cached(isolated_dirs: Path, loopback_server: LoopbackServer) -> None:
    ds = dataset([loopback_server.add("/good.bin", PAYLOAD)])
    path = data.fetch(ds, progress=False)
    assert path.read_bytes() == PAYLOAD
    again = data.fetch(ds, progress=False)
    assert again == path
    assert loopback_server.hits["/good.bin"] == 1, "a cached, verified file must not be downloaded again"


def test_sha256_mismatch_is_clear_and_leaves_nothing(isolated_dirs: Path, loopback_server: LoopbackServer) -> None:
    url = loopback_server.add("/wrong.bin", PAYLOAD, fault="wrong")
    ds = dataset([url])
    with pytest.raises(ChecksumError) as excinfo:
        data.fetch(ds, progress=False, retries=0)
    message = str(excinfo.value)
    assert "blob.bin" in message and url in message and "prefetch" in message
    assert "blob.bin" not in cache_files(isolated_dirs / "cache")
    assert not any(name.endswith(".part") for name in cache_files(isolated_dirs / "cache"))
    # The fault is gone: a rerun succeeds.
    loopback_server.routes["/wrong.bin"].fault = None
    assert data.fetch(ds, progress=False).read_bytes() == PAYLOAD


def test_404_on_first_url_falls_back_to_mirror(isolated_dirs: Path, loopback_server: LoopbackServer) -> None:
    primary = loopback_server.add("/missing.bin", PAYLOAD, fault="404")
    mirror = loopback_server.add("/mirror.bin", PAYLOAD)
    path = data.fetch(dataset([primary, mirror]), progress=False)
    assert path.read_bytes() == PAYLOAD
    assert loopback_server.hits["/missing.bin"] == 1, "a 404 is final for that URL: no retries"
    assert loopback_server.hits["/mirror.bin"] == 1


def test_http_500_is_retried(isolated_dirs: Path, loopback_server: LoopbackServer) -> None:
    url = loopback_server.add("/flaky.bin", PAYLOAD, fault="500", faulty=1)
    assert data.fetch(dataset([url]), progress=False).read_bytes() == PAYLOAD
    assert loopback_server.hits["/flaky.bin"] == 2


def test_slow_server_times_out_then_retry_succeeds(isolated_dirs: Path, loopback_server: LoopbackServer) -> None:
    url = loopback_server.add("/slow.bin", PAYLOAD, fault="slow", faulty=1)
    assert data.fetch(dataset([url]), progress=False, timeout_s=1.0).read_bytes() == PAYLOAD
    assert loopback_server.hits["/slow.bin"] == 2


def test_connection_dropped_mid_file_resumes(isolated_dirs: Path, loopback_server: LoopbackServer) -> None:
    url = loopback_server.add("/drop.bin", PAYLOAD, fault="drop", faulty=1)
    assert data.fetch(dataset([url]), progress=False).read_bytes() == PAYLOAD
    assert loopback_server.hits["/drop.bin"] == 2


def test_every_url_failing_names_file_urls_and_fix(isolated_dirs: Path, loopback_server: LoopbackServer) -> None:
    a = loopback_server.add("/a.bin", PAYLOAD, fault="404")
    b = loopback_server.add("/b.bin", PAYLOAD, fault="500")
    with pytest.raises(DownloadError) as excinfo:
        data.fetch(dataset([a, b]), progress=False, retries=1)
    message = str(excinfo.value)
    assert "blob.bin" in message and a in message and b in message and "Next step" in message
    assert cache_files(isolated_dirs / "cache") == []


def test_offline_mode_refuses_to_download(isolated_dirs: Path, loopback_server: LoopbackServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_OFFLINE", "1")
    with pytest.raises(DownloadError, match="WORKSHOP_OFFLINE"):
        data.fetch(dataset([loopback_server.add("/x.bin", PAYLOAD)]), progress=False)
    assert loopback_server.hits["/x.bin"] == 0


def _fetch_in_process(urls: list[str], cache: str) -> None:
    os.environ["WORKSHOP_DATA_DIR"] = cache
    data.fetch(dataset(urls), progress=False)


@pytest.mark.parametrize("processes", [2, 8])
def test_concurrent_processes_download_once(isolated_dirs: Path, loopback_server: LoopbackServer,
                                            processes: int) -> None:
    url = loopback_server.add("/shared.bin", PAYLOAD, delay_s=0.5)
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_fetch_in_process, args=([url], str(isolated_dirs / "cache"))) for _ in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert all(worker.exitcode == 0 for worker in workers)
    assert loopback_server.hits["/shared.bin"] == 1
    assert (isolated_dirs / "cache" / "testset" / "blob.bin").read_bytes() == PAYLOAD


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _tar_bytes(members: dict[str, bytes], symlink: tuple[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
        if symlink:
            info = tarfile.TarInfo(symlink[0])
            info.type, info.linkname = tarfile.SYMTYPE, symlink[1]
            archive.addfile(info)
    return buffer.getvalue()


def test_zip_is_extracted_into_a_folder(isolated_dirs: Path, loopback_server: LoopbackServer) -> None:
    body = _zip_bytes({"images/a.txt": b"a", "images/b.txt": b"b"})
    folder = data.fetch(dataset([loopback_server.add("/ok.zip", body)], body, "set.zip", "zip"), progress=False)
    assert (folder / "images" / "a.txt").read_bytes() == b"a"


@pytest.mark.parametrize(
    "body, fmt",
    [
        (_zip_bytes({"../escape.txt": b"x"}), "zip"),
        (_zip_bytes({"/abs/escape.txt": b"x"}), "zip"),
        (_tar_bytes({"ok/../../escape.txt": b"x"}), "tar.gz"),
        (_tar_bytes({"/etc/escape.txt": b"x"}), "tar.gz"),
        (_tar_bytes({"ok.txt": b"x"}, symlink=("link", "../../outside")), "tar.gz"),
    ],
)
def test_unsafe_archive_members_are_refused(isolated_dirs: Path, loopback_server: LoopbackServer,
                                            body: bytes, fmt: str) -> None:
    name = "set.zip" if fmt == "zip" else "set.tar.gz"
    ds = dataset([loopback_server.add(f"/bad.{fmt}", body)], body, name, fmt)
    with pytest.raises(UnsafeArchiveError):
        data.fetch(ds, progress=False)
    assert not (isolated_dirs / "escape.txt").exists()
    assert not (isolated_dirs / "cache" / "testset" / "set").exists()


def test_package_file_is_located_and_verified() -> None:
    path = data.fetch("stardist_dsb2018_nucleus", "img2d.tif")
    assert path.is_file() and path.stat().st_size == 524544


def test_package_source_missing_package_says_make_setup() -> None:
    raw = {"name": "p", "description": "d", "licence": "l", "citation": "c", "used_by": [1],
           "files": [{"name": "f.bin", "package": "no_such_package_xyz", "path": "f.bin", "sha256": "0" * 64, "size": 1}]}
    with pytest.raises(DownloadError, match="make setup"):
        data.fetch(parse_manifest(raw))


def test_prefetch_of_everything_keeps_to_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"description": "d", "licence": "CC0", "citation": "c", "used_by": [1],
            "files": [{"name": "f.bin", "url": "http://127.0.0.1:9/f.bin", "sha256": "0" * 64, "size": 1}]}
    sets = {name: parse_manifest({**base, "name": name, "profiles": profiles})
            for name, profiles in (("everywhere", ["smoke", "cpu", "gpu"]), ("gpu-only", ["gpu"]))}
    monkeypatch.setattr(data_cache.manifests, "load_all", lambda directory=None: sets)
    fetched: list[str] = []
    monkeypatch.setattr(data_cache, "fetch", lambda ds, file=None, **kw: fetched.append(ds.name) or Path(ds.name))
    data_cache.prefetch(profile="smoke")
    assert fetched == ["everywhere"]
    fetched.clear()
    data_cache.prefetch()
    assert sorted(fetched) == ["everywhere", "gpu-only"]


def test_a_broken_install_is_not_reported_as_an_offline_machine(isolated_dirs: Path, loopback_server: LoopbackServer,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Only network and hash errors become DownloadError; a missing tqdm must surface as what it is."""
    def no_tqdm(*args: object, **kwargs: object) -> None:
        raise ModuleNotFoundError("No module named 'tqdm'")

    monkeypatch.setattr(data._ResumableDownloader, "__call__", no_tqdm)
    with pytest.raises(ModuleNotFoundError, match="tqdm"):
        data.fetch(dataset([loopback_server.add("/needs-tqdm.bin", PAYLOAD)]), progress=False)


def test_the_instructor_guide_names_todays_prefetch_totals(isolated_dirs: Path) -> None:
    import re

    guide = (Path(__file__).resolve().parents[1] / "docs" / "instructor_guide.md").read_text()
    span = re.search(r"<!-- prefetch-total -->(.*?)<!-- /prefetch-total -->\s*\((\S+ MB) more ship", guide, re.S)
    assert span, "the guide's night-before step must name the prefetch total between the prefetch-total markers"
    named = {profile: (figure, int(more or 0)) for profile, figure, more in
             re.findall(r"`--profile (\w+)` downloads (\S+ MB)(?: plus (\d+) file\(s\) of unknown size)?", span.group(1))}
    assert set(named) == {"gpu", "cpu"}
    for profile, (figure, more) in named.items():
        known, unknown = data_cache.prefetch_total(data_cache.prefetch_plan(profile=profile))
        assert (figure, more) == (size_text(known), unknown), (
            f"{profile}: the guide says {figure} plus {more} of unknown size, the manifests {size_text(known)} plus "
            f"{unknown}")
    packaged = sum(e.size or 0 for _, e in data_cache.prefetch_plan(profile="gpu") if e.from_package)
    assert span.group(2) == size_text(packaged)


def test_prefetch_profile_on_the_command_line_prints_the_total_sizes_and_pin_lines(
        isolated_dirs: Path, loopback_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from workshop_utils import __main__ as cli

    sized = dataset([loopback_server.add("/cli.bin", PAYLOAD)])
    sizeless = parse_manifest({"name": "sizeless", "description": "d", "licence": "CC0", "citation": "c",
                               "used_by": [0], "profiles": ["gpu"], "files": [
                                   {"name": "more.bin", "url": loopback_server.add("/more.bin", PAYLOAD[:1000]),
                                    "md5": hashlib.md5(PAYLOAD[:1000]).hexdigest()}]})
    sets = {"testset": sized, "sizeless": sizeless}
    monkeypatch.setattr(data_cache.manifests, "load_all", lambda directory=None: sets)
    assert cli.main(["prefetch", "--profile", "gpu", "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "testset/blob.bin  (0.2 MB)" in dry and "sizeless/more.bin  (size unknown until first download)" in dry
    assert "2 file(s): 2 to download or check, 0.2 MB in total plus 1 of unknown size" in dry
    assert sum(loopback_server.hits.values()) == 0, "--dry-run fetches nothing"
    assert cli.main(["prefetch", "--profile", "gpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("prefetch --profile gpu: 2 file(s)") and "ok  testset/blob.bin  (0.2 MB, CC0)" in out
    assert "ok  sizeless/more.bin  (0.0 MB, CC0)" in out and "2 file(s) ready in the cache." in out
    pin = next(line for line in out.splitlines() if line.startswith("pin sizeless/more.bin"))
    assert f"sha256: {sha256_hex(PAYLOAD[:1000])}, size: 1000" in pin
    assert "pin testset" not in out, "a fully pinned manifest needs no line"
    assert cli.main(["prefetch", "--profile", "smoke"]) == 0
    assert "sizeless" not in capsys.readouterr().out, "a profile fetches only what it uses"
