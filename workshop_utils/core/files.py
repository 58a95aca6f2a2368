"""Writing files safely: atomic writes, and rebuilding a missing or stale artifact exactly once.

Every file a lab or a rebuild writes goes through :func:`atomic_write`, so a reader (another lab's kernel, the
Triton worker) never sees half a file, and two kernels writing at once never share a temporary file. Every
artifact a later lab needs goes through :func:`ensure_artifact`, which decides staleness one way and always holds
the artifact's file lock, so labs started together build it once.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from filelock import FileLock

from workshop_utils.core.errors import WorkshopError
from workshop_utils.core.inputs import require_path


@contextlib.contextmanager
def atomic_write(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target``; when the block ends without an error it replaces ``target`` at once.

    The temporary name is unique per call and keeps ``target``'s suffix (NeMo wants ``.nemo``, sox ``.wav``). On an
    error the temporary file is removed and ``target`` is left as it was.

    Args:
        target: the file to write; its folder is created when missing.

    Returns:
        A context manager yielding the temporary path to write to.

    Example:
        >>> with atomic_write(wu.build_dir() / "notes.txt") as tmp:  # doctest: +SKIP
        ...     tmp.write_text("hello")
    """
    target = require_path(target, "atomic_write", "target")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=f".partial{target.suffix}")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


def staleness(target: Path, inputs: Iterable[Path] = (), readable: Callable[[Path], bool] | None = None) -> str | None:
    """Why ``target`` must be rebuilt, or None when it is current.

    The one rule: an artifact is stale when it is missing, older than any of the ``inputs`` it was built from that
    exist, or (when ``readable`` is given) unreadable.
    """
    if not target.is_file():
        return "missing"
    built = target.stat().st_mtime
    newer = [Path(p).name for p in inputs if Path(p).is_file() and Path(p).stat().st_mtime > built]
    if newer:
        return f"older than {newer[0]}"
    if readable is not None and not readable(target):
        return "unreadable"
    return None


def ensure_artifact(target: Path, build: Callable[[Path], object], *, inputs: Iterable[Path] = (),
                    readable: Callable[[Path], bool] | None = None, what: str = "artifact") -> Path:
    """``target``, rebuilt by ``build(target)`` first when :func:`staleness` says so, under ``target``'s file lock.

    Args:
        target: the artifact's path, e.g. ``build/artifacts/nuclei_unet.pt``.
        build: writes ``target`` (through :func:`atomic_write`); runs only when the artifact is stale.
        inputs: files the artifact is built from; a newer input makes it stale.
        readable: an optional check that the file loads; False makes it stale.
        what: a few words for the message printed before a rebuild.

    Returns:
        ``target``.
    """
    target = require_path(target, "ensure_artifact", "target")
    target.parent.mkdir(parents=True, exist_ok=True)
    inputs = list(inputs)
    with FileLock(str(target) + ".lock"):  # labs (or a lab and a server) asking at once build it once
        reason = staleness(target, inputs, readable)
        if reason is None:
            return target
        print(f"{what} {target} is {reason}; rebuilding it with the lab's own code...")
        build(target)
        if staleness(target, inputs, readable) is not None:
            raise WorkshopError(f"ensure_artifact: expected {target} to exist after rebuilding the {what}; got "
                                f"{staleness(target, inputs, readable)}. Run the lab that makes it, then retry.")
    return target
