"""Name the phenotype of any cell crop with the lab-05 model: zero-shot, optionally averaged over rotations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from workshop_utils import cell_images as phenotypes
from workshop_utils.core.inputs import (
    as_array,
    bad_input,
    describe,
    require_texts,
)
from workshop_utils.multimodal.artifact import ensure_cell_clip, load_cell_clip
from workshop_utils.multimodal.clip import embed_images, embed_prompts


def _as_batch(images: Any, size: int, where: str = "classify_cells") -> np.ndarray:
    """Accept one image or many, (H, W) grey or (H, W, 3) RGB, uint8 or float; return (N, size, size, 3) in [0, 1]."""
    return _resized(_unit_batch(images, where), size)


def _unit_batch(images: Any, where: str) -> np.ndarray:
    """Checked (N, H, W, 3) float32 in [0, 1] at the images' own size (grey images rendered as a nucleus stain)."""
    fix = (f"{where} expects (H, W), (H, W, 3) or a batch of them: one cell per image, e.g. cells.images[:8] "
           "or a list of (32, 32) crops.")
    array = as_array(images, where, "images", ndim=(2, 3, 4), fix=fix).astype(np.float32)
    if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] != 3):
        array = array[None] if array.ndim == 2 else array
        grey = array / (array.max(axis=(1, 2), keepdims=True) + 1e-6)
        array = np.stack([0.15 * grey, 0.1 * grey, 0.95 * grey], -1)  # a nucleus stain, rendered like fluorescence
    elif array.ndim == 3:
        array = array[None]
    if array.shape[-1] != 3:
        raise bad_input(where, "a batch (N, H, W, 3) with the 3 colour channels last", describe(array),
                        "Move channels last (np.moveaxis(images, 1, -1)) or drop a single channel (images[..., 0]).")
    if array.max() > 1.5:
        array = array / 255.0
    return array


def _resized(array: np.ndarray, size: int) -> np.ndarray:
    if array.shape[1:3] != (size, size):
        batch = torch.as_tensor(array).permute(0, 3, 1, 2)
        array = F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True).permute(0, 2, 3, 1).numpy()
    return np.clip(array, 0, 1)


def phenotype_probabilities(images: Any, labels: Sequence[str], *, rotations: bool = False) -> np.ndarray:
    """(N, len(labels)) softmax over the labels' prompts per image, with the model's learned temperature.

    A phenotype name uses its class prompt, other text is used as is. ``rotations=True`` averages each image's
    embedding over its four 90-degree rotations first: a cell has no up or down, and the average is steadier.

    Uses lab 05's saved image-text model (trained first if it is missing, see :func:`ensure_cell_clip`).

    Args:
        images: (H, W) grey or (H, W, 3) RGB cells, one or a batch, uint8 or [0, 1] float; resized as needed.
        labels: the names to choose between, e.g. ``list(wu.cell_images.PHENOTYPES)`` or free-text prompts.
        rotations: True averages each image's embedding over its four 90-degree rotations.

    Returns:
        A float32 (N, len(labels)) array; each row sums to 1.

    Example:
        >>> probs = wu.multimodal.phenotype_probabilities(np.stack(crops), PHENOTYPES, rotations=True)
    """
    return _probabilities(images, labels, rotations, "phenotype_probabilities")


def _require_labels(labels: Any, where: str) -> list[str]:
    if not isinstance(labels, (str, bytes)) and hasattr(labels, "__len__") and len(labels) == 0:
        raise bad_input(where, "at least one label", "an empty list",
                        "Pass the names to choose between, e.g. ['mitotic', 'apoptotic'] or list(ph.PHENOTYPES).")
    return require_texts(labels, where, "labels")


def _probabilities(images: Any, labels: Sequence[str], rotations: bool, where: str) -> np.ndarray:
    labels = _require_labels(labels, where)
    unit = _unit_batch(images, where)  # checked before the model loads (or trains)
    model, payload = load_cell_clip(ensure_cell_clip())
    prompts = [phenotypes.CLASS_PROMPTS.get(label.strip().lower(), label) for label in labels]
    batch = _resized(unit, payload["settings"]["image_size"])
    views = [np.ascontiguousarray(np.rot90(batch, k, axes=(1, 2))) for k in range(4 if rotations else 1)]
    image_emb = F.normalize(torch.stack([embed_images(model, view) for view in views]).mean(0), dim=-1)
    logits = (image_emb @ embed_prompts(model, prompts).T) * model.logit_scale.exp().detach().cpu()
    return torch.softmax(logits, dim=1).numpy()


def classify_cells(images: Any, labels: Sequence[str], *, rotations: bool = False) -> list[str]:
    """The best-matching label for each image (see :func:`phenotype_probabilities`).

    Args:
        images: one image or a batch, as :func:`phenotype_probabilities` takes them.
        labels: the names to choose between, e.g. ``list(wu.cell_images.PHENOTYPES)``.
        rotations: True averages each image's embedding over its four 90-degree rotations.

    Returns:
        One label per image, taken from ``labels``.

    Example:
        >>> answers = wu.multimodal.classify_cells(sample, list(wu.cell_images.PHENOTYPES))
    """
    labels = _require_labels(labels, "classify_cells")
    probabilities = _probabilities(images, labels, rotations, "classify_cells")
    return [labels[i] for i in probabilities.argmax(axis=1)]
