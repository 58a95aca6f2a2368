"""Lab 05 Part B: a vision-language model built on a frozen, pretrained LLM (LLaVA's stage 1).

The lab writes the model (vision encoder -> MLP projector -> visual tokens as ``inputs_embeds`` of SmolLM2), its
training step and its decoding in its own cells. This module holds what those cells read: the question the VLM
answers, its one-token answers, the images that have one, and the training sizes per profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from workshop_utils import cell_images as phenotypes
from workshop_utils.core.inputs import bad_input, describe, require_int
from workshop_utils.multimodal.checks import require_cells

# The LLM continues "Microscope image: <visual tokens> This cell is" with one of these words (one token each).
PROMPT_BEFORE = "Microscope image:"
PROMPT_AFTER = " This cell is"
ANSWERS: dict[str, str] = {"interphase": " resting", "mitotic": " dividing", "apoptotic": " dying"}


@dataclass(frozen=True)
class VlmSettings:
    """Part B's training: visual tokens per image (a square number), steps, batch, peak learning rate, held-out size."""

    n_tokens: int = 4
    steps: int = 40
    batch: int = 16
    lr: float = 1e-2
    n_heldout: int = 120
    seed: int = 0
    threads: int | None = None


VLM_PROFILES: dict[str, VlmSettings] = {
    "smoke": VlmSettings(threads=1),
    "cpu": VlmSettings(steps=120, n_heldout=300),
    "gpu": VlmSettings(n_tokens=16, steps=400, batch=64, lr=5e-3, n_heldout=1000),
}


def question_set(cells: phenotypes.CellSet, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The cells whose phenotype has an answer in :data:`ANSWERS`, and each one's answer index.

    Args:
        cells: a set from ``wu.cell_images.make_cells``.
        limit: keep at most this many (the first ones); None keeps all.

    Returns:
        ``(images, answers)``: (N, H, W, 3) float images and (N,) int64 indices into ``list(ANSWERS)``.

    Example:
        >>> images, answers = wu.vlm.question_set(heldout, limit=vlm_settings.n_heldout)
    """
    require_cells(cells, "question_set")
    if limit is not None:
        limit = require_int(limit, "question_set", "limit", minimum=1)
    names = list(ANSWERS)
    keep = [i for i, name in enumerate(cells.label_names) if name in ANSWERS][:limit]
    if not keep:
        raise bad_input("question_set", f"cells with a phenotype among {names}", "none in this set",
                        "Pass a set from wu.cell_images.make_cells (every phenotype is drawn in turn).")
    return cells.images[keep], np.array([names.index(cells.label_names[i]) for i in keep], dtype=np.int64)


def answer_token_ids(tokenizer: Any) -> torch.Tensor:
    """The token id of each answer in :data:`ANSWERS`, checked to be exactly one token of ``tokenizer``.

    Args:
        tokenizer: the LLM's tokenizer, from ``wu.multimodal.load_llm()``.

    Returns:
        A (len(ANSWERS),) int64 tensor of token ids.

    Example:
        >>> answer_ids = wu.vlm.answer_token_ids(tokenizer)
    """
    if not callable(tokenizer) or not hasattr(tokenizer, "convert_ids_to_tokens"):
        raise bad_input("answer_token_ids", "a transformers tokenizer", describe(tokenizer),
                        "Pass the tokenizer from wu.multimodal.load_llm().")
    ids = []
    for word in ANSWERS.values():
        pieces = tokenizer(word, add_special_tokens=False).input_ids
        if len(pieces) != 1:
            raise bad_input("answer_token_ids", f"{word!r} to be one token", f"{len(pieces)} tokens {pieces}",
                            "Use SmolLM2's tokenizer (wu.multimodal.load_llm()), or answers that are single tokens.")
        ids.append(pieces[0])
    return torch.tensor(ids, dtype=torch.long)
