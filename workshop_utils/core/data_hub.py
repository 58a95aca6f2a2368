"""Files of a Hugging Face Hub repository (a manifest's ``huggingface`` source), fetched with ``huggingface_hub``.

Every transfer names a commit, so the same manifest always means the same bytes. Where the manifest gives a branch,
the first fetch resolves it to its commit and records commit and sha256 (``core/data_store.py``); later fetches
use that commit and must match that hash, and ``prefetch`` prints the manifest line that pins it for good. The
file lands in a staging folder inside the data set's cache folder, its sha256 is checked here (never trusted from
the hub alone), and only then does it take its final name. ``HF_ENDPOINT`` names the hub (read at each call).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workshop_utils.core.data_store import (
    PREFETCH_HINT,
    check_size,
    expectation,
    expected_size,
    file_digest,
    offline,
    offline_error,
    read_record,
    write_record,
)
from workshop_utils.core.errors import ChecksumError, DownloadError
from workshop_utils.core.manifests import FileEntry, HubSource

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")


def endpoint() -> str:
    """The hub's address: ``HF_ENDPOINT`` when set, else https://huggingface.co."""
    return os.environ.get("HF_ENDPOINT", "").rstrip("/") or "https://huggingface.co"


@contextlib.contextmanager
def _hub_online() -> Iterator[None]:
    """Let a manifest's transfer through even where a lab set ``HF_HUB_OFFLINE=1`` to stop ``from_pretrained``
    reaching the hub: the workshop's switch for downloads is ``WORKSHOP_OFFLINE``, checked before any call."""
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def _transient(exc: BaseException) -> bool:
    import httpx
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, (httpx.TransportError, TimeoutError, ConnectionError))


def _unreachable(source: HubSource, exc: BaseException, folder: Path) -> DownloadError:
    return DownloadError(
        f"Could not fetch {source.describe()} from the Hugging Face Hub at {endpoint()}: expected the file; got "
        f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}. Nothing was left under the "
        f"final name. Next step: check the network (and HF_ENDPOINT), then run `{PREFETCH_HINT}` again, or copy a "
        f"verified file into {folder}."
    )


def _call_hub(source: HubSource, folder: Path, retries: int, call: Any) -> Any:
    """``call()`` with retries on transient errors; a missing repository, revision or file is a clear error."""
    import httpx
    from huggingface_hub.errors import (
        FileMetadataError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    for attempt in range(retries + 1):
        try:
            with _hub_online():
                return call()
        except RevisionNotFoundError as exc:
            raise DownloadError(
                f"{source.describe()}: expected 'revision' to be a 40-hex commit or a branch of {source.repo}; got "
                f"{source.revision!r}, which the hub does not know ({type(exc).__name__}). Next step: put a commit "
                f"from {endpoint()}/{source.repo}/commits/main (or an existing branch) in the manifest."
            ) from exc
        except RemoteEntryNotFoundError as exc:
            raise DownloadError(
                f"{source.describe()}: expected the file {source.file!r} in {source.repo}; the hub has no such file at "
                "that revision. Next step: check 'huggingface.file' in the manifest."
            ) from exc
        except RepositoryNotFoundError as exc:
            raise DownloadError(
                f"{source.describe()}: expected the {source.repo_type} repository {source.repo!r} on {endpoint()}; "
                "the hub has none (or it is private). Next step: check 'huggingface.repo' and 'huggingface.type'."
            ) from exc
        except (HfHubHTTPError, FileMetadataError, LocalEntryNotFoundError, httpx.HTTPError, OSError) as exc:
            if isinstance(exc, DownloadError):  # ours (a checksum or a consistency check): already clear
                raise
            transient = _transient(exc) or (exc.__cause__ is not None and _transient(exc.__cause__))
            if attempt == retries or not transient:
                raise _unreachable(source, exc, folder) from exc
            time.sleep(min(0.5 * 2**attempt, 4.0))
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def resolve_commit(source: HubSource, folder: Path, timeout_s: float, retries: int) -> str:
    """The commit ``source.revision`` names now: itself when it is one, else the branch's head on the hub."""
    if source.pinned:
        return source.revision
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint(), token=False)
    info = _call_hub(source, folder, retries,
                     lambda: api.repo_info(source.repo, repo_type=source.repo_type, revision=source.revision,
                                           timeout=timeout_s))
    commit = str(getattr(info, "sha", "") or "")
    if not _SHA1.match(commit):
        raise DownloadError(
            f"{source.describe()}: expected the hub to resolve {source.revision!r} to a 40-hex commit; got "
            f"{commit!r}. Next step: put a commit in the manifest's 'huggingface.revision'."
        )
    return commit


def _git_blob_sha1(path: Path) -> str:
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())  # noqa: S324 - git's object id, not security
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _changed(entry: FileEntry, commit: str, expected: str, got: str, folder: Path) -> ChecksumError:
    source = entry.huggingface
    assert source is not None
    return ChecksumError(
        f"{entry.name} from {source.describe(commit)}: expected sha256={expected}; got {got}. The content at that "
        "name has changed (or the transfer was altered); it was refused and nothing was left under the final name. "
        f"Next step: if the change is intended, update 'sha256' in the manifest (and delete {folder}/.{entry.name}"
        f".record.json); otherwise run `{PREFETCH_HINT}` again."
    )


def fetch_hub_file(entry: FileEntry, folder: Path, timeout_s: float, retries: int, progress: bool) -> Path:
    """The verified file of a ``huggingface`` entry in ``folder`` (called under the entry's file lock)."""
    source = entry.huggingface
    if source is None:
        raise ValueError(f"{entry.name} has no huggingface source")
    final = folder / entry.name
    record = read_record(folder, entry)
    commit = source.revision if source.pinned else record.get("commit")
    expected = entry.sha256 or record.get("sha256")
    if expected and final.is_file() and file_digest(final, "sha256") == expected:
        return final
    if offline():
        raise offline_error(entry, folder)
    if not isinstance(commit, str) or not _SHA1.match(commit):
        commit = resolve_commit(source, folder, timeout_s, retries)
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    url = hf_hub_url(source.repo, source.file, repo_type=source.repo_type, revision=commit, endpoint=endpoint())
    meta = _call_hub(source, folder, retries,
                     lambda: get_hf_file_metadata(url, token=False, timeout=timeout_s, endpoint=endpoint()))
    etag = (meta.etag or "").lower()
    if meta.commit_hash and meta.commit_hash != commit:
        raise DownloadError(
            f"{source.describe(commit)}: expected the hub to serve commit {commit}; got {meta.commit_hash}. Next "
            f"step: check HF_ENDPOINT points at a Hugging Face Hub, then run `{PREFETCH_HINT}` again."
        )
    if expected and _SHA256.match(etag) and etag != expected:
        raise _changed(entry, commit, expected, f"sha256={etag} (the hub's LFS hash, before any download)", folder)
    staging = folder / f".{entry.name}.hub"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        fetched = Path(_call_hub(source, folder, retries, lambda: hf_hub_download(
            source.repo, source.file, repo_type=source.repo_type, revision=commit, local_dir=staging,
            cache_dir=staging / ".cache", endpoint=endpoint(), etag_timeout=timeout_s, token=False,
            tqdm_class=None if progress else _silent_tqdm())))
        actual = file_digest(fetched, "sha256")
        want = expected or (etag if _SHA256.match(etag) else None)
        if want and actual != want:
            raise _changed(entry, commit, want, f"sha256={actual}", folder)
        if not want and _SHA1.match(etag) and _git_blob_sha1(fetched) != etag:
            raise _changed(entry, commit, f"git blob {etag}", f"git blob {_git_blob_sha1(fetched)}", folder)
        size = expected_size(entry, folder) or meta.size
        if size is not None and fetched.stat().st_size != size:
            raise ChecksumError(f"{entry.name} from {source.describe(commit)}: expected {expectation(entry, folder)} "
                                f"({size} bytes); got {fetched.stat().st_size} bytes. Nothing was left under the final "
                                f"name. Next step: run `{PREFETCH_HINT}` again, or correct 'size' in the manifest.")
        os.replace(fetched, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    check_size(entry, folder, final)
    write_record(folder, entry, final, commit=commit, revision=source.revision)
    return final


def _silent_tqdm() -> type:
    from tqdm.auto import tqdm

    class Silent(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return Silent
