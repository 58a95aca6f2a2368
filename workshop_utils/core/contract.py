"""What a Triton client and the workshop's server agree on, in one torch-free module.

The ONNX export (lab 02), the PyTriton worker and ``tritonserver`` repository (lab 03), and every client (lab 03's
``tritonclient`` calls, the capstone's :class:`~workshop_utils.serving.predictors.TritonPredictor`) read these names
from here, so a rename cannot leave one side behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

# The nuclei model's tensors: float32 (N, 1, T, T) in, float32 (N, C, T, T) out, N dynamic.
INPUT_NAME = "image"
OUTPUT_NAME = "logits"

# Model names on the server: the nuclei UNet, and a model whose cost per call is fixed (lab 03's batching study).
NUCLEI_MODEL = "nuclei_unet"
FIXED_COST_MODEL = "fixed_cost"
MODELS: tuple[str, ...] = (NUCLEI_MODEL, FIXED_COST_MODEL)  # what the PyTriton worker serves

# Access control: the server process reads its token from TOKEN_ENV; clients send it in TOKEN_HEADER (HTTP) or
# GRPC_TOKEN_HEADER (gRPC metadata, which Triton names with its protocol prefix).
TOKEN_ENV = "WORKSHOP_TRITON_TOKEN"
TOKEN_HEADER = "triton-access-token"
GRPC_TOKEN_HEADER = f"triton-grpc-protocol-{TOKEN_HEADER}"

# PyTriton names its shared-memory regions after the worker's pid (its own spelling, "pytrtion").
SHARED_MEMORY_DIR = Path("/dev/shm")
SHARED_MEMORY_PREFIX = "pytrtion"


# PyTriton's tensor store also keeps request and response tensors in multiprocessing.shared_memory segments, named
# psm_<random>; a process killed before it unlinks them leaves them in /dev/shm (64 MB in a default container).
TENSOR_STORE_PREFIX = "psm_"


def shared_memory_regions(pid: int) -> list[Path]:
    """PyTriton's shared-memory files for the worker process ``pid`` (left behind only when it crashed)."""
    return sorted(SHARED_MEMORY_DIR.glob(f"{SHARED_MEMORY_PREFIX}{pid}-*"))


def tensor_store_segments(pids: Iterable[int]) -> set[Path]:
    """The ``psm_*`` shared-memory files that processes ``pids`` have mapped or open, read from ``/proc``.

    Read them before the processes are killed and unlink what is left after: only segments these processes use are
    touched, never another server's. Empty where there is no ``/proc`` (not Linux) or a process has gone.
    """
    pids = list(pids)  # read twice: maps, then descriptors
    found: set[Path] = set()
    for pid in pids:
        proc = Path(f"/proc/{pid}")
        with contextlib.suppress(OSError):
            for line in (proc / "maps").read_text().splitlines():
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and not fields[5].endswith("(deleted)"):
                    found.add(Path(fields[5]))
    found |= {Path(target) for target in open_file_targets(pids)}
    return {path for path in found if path.parent == SHARED_MEMORY_DIR and path.name.startswith(TENSOR_STORE_PREFIX)}


def open_file_targets(pids: Iterable[int]) -> set[str]:
    """What the open descriptors of processes ``pids`` point to (``/proc/<pid>/fd``): paths, ``socket:[inode]``...

    A process that has gone, or whose descriptors this user may not read, adds nothing.
    """
    found: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    found.add(os.readlink(fd))
    return found


def unlink_all(paths: Iterable[Path]) -> None:
    """Remove each file of ``paths`` that still exists (a process may have unlinked its own meanwhile)."""
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
