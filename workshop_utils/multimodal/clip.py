"""A CLIP-style image-text model for cell phenotypes: small CNN image tower + frozen MiniLM text tower.

The text tower is locked (its embeddings are computed once and cached): only the image tower, its linear head
into MiniLM's 384-d space and the temperature learn. The loss, the warm-up + cosine schedule and the training
loop are lab 05's own cells (``workshop_utils.lessons.lab05``); this module checks arguments and calls them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workshop_utils.cell_images import CellSet
from workshop_utils.core.inputs import (
    as_array,
    bad_input,
    describe,
    require_device,
    require_instance,
    require_int,
    require_nonempty,
    require_number,
    require_same_length,
    require_texts,
)
from workshop_utils.lessons.lab05 import clip_loss as lesson_clip_loss
from workshop_utils.lessons.lab05 import same_caption_targets, train_contrastive, warmup_cosine
from workshop_utils.multimodal.checks import (
    require_cells,
    require_image_batch,
    require_images,
    require_settings,
    require_tensor,
)
from workshop_utils.multimodal.text import TEXT_DIM, encode_texts

ARTIFACT = "cell_clip.pt"


@dataclass(frozen=True)
class ClipSettings:
    """Sizes and schedule of one training run (image side in px, steps, batch, peak learning rate)."""

    image_size: int = 32
    n_train: int = 2000
    n_heldout: int = 600
    steps: int = 350
    batch: int = 128
    lr: float = 3e-3
    width: int = 16
    warmup_frac: float = 0.1
    seed: int = 0
    heldout_seed: int = 1
    threads: int | None = None  # CPU threads for training; 1 is robust (and reproducible) on a shared runner


CLIP_PROFILES: dict[str, ClipSettings] = {
    "smoke": ClipSettings(threads=1),
    "cpu": ClipSettings(n_train=4000, n_heldout=1200, steps=1000, width=24),
    "gpu": ClipSettings(image_size=64, n_train=30000, n_heldout=3000, steps=3000, batch=512, width=64),
}


def require_clip_model(model: Any, where: str) -> CellClip:
    return require_instance(model, CellClip, where, "model",
                             "Pass the trained CellClip, or mm.load_cell_clip()[0].")


# ---------------------------------------------------------------- image tower
class ImageTower(nn.Module):
    """Three stride-2 3x3 convolutions and one stride-1 (no pooling): (B, 3, S, S) -> (B, 4*width, S/8, S/8)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        require_int(width, "ImageTower", "width", minimum=1)
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(chans[:-1], chans[1:], strict=False)):
            layers += [nn.Conv2d(cin, cout, 3, stride=2 if i < 3 else 1, padding=1, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.out_channels = chans[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(require_image_batch(x, "ImageTower.forward"))


class CellClip(nn.Module):
    """Image tower + a linear head into MiniLM's 384-d sentence space (the text side is locked), and a temperature.

    ``encode_image`` and ``encode_text`` give unit-norm embeddings; ``logit_scale`` is the learned log(1/T),
    starting at T = 0.07 as in CLIP.

    Args:
        width: channels of the tower's first convolution (the others are 2x and 4x that), e.g. ``settings.width``.

    Example:
        >>> model = wu.multimodal.CellClip(clip_settings.width).to(device).to(memory_format=torch.channels_last)
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        require_int(width, "CellClip", "width", minimum=1)
        self.tower = ImageTower(width)
        self.image_proj = nn.Linear(self.tower.out_channels, TEXT_DIM)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm image embeddings (B, 384)."""
        require_image_batch(x, "CellClip.encode_image")
        return F.normalize(self.image_proj(self.tower(x).mean(dim=(2, 3))), dim=-1)

    def encode_text(self, text_emb: torch.Tensor) -> torch.Tensor:
        """Frozen MiniLM embeddings (B, 384) are used as they are: no text parameter learns."""
        require_tensor(text_emb, "CellClip.encode_text", "text_emb", 2, width=TEXT_DIM,
                        fix="Pass MiniLM sentence embeddings from mm.encode_texts(texts).")
        return F.normalize(text_emb, dim=-1)


def to_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, H, W, 3) images in [0, 1] -> channels-last (N, 3, H, W) float tensor, centred on 0: the tower's input.

    Args:
        images: (N, H, W, 3) float images in [0, 1], e.g. ``train.images``.
        device: where the tensor goes, e.g. ``"cpu"`` or ``wu.torch_device(PROFILE)``.

    Returns:
        A float32 tensor (N, 3, H, W) in channels-last memory layout, values in [-0.5, 0.5].

    Example:
        >>> pixels = wu.multimodal.to_tensor(train.images, device)
    """
    images = require_images(images, "to_tensor")
    x = torch.as_tensor(np.ascontiguousarray(images), dtype=torch.float32).permute(0, 3, 1, 2) - 0.5
    return x.to(device).contiguous(memory_format=torch.channels_last)


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor,
              keys: torch.Tensor | None = None) -> torch.Tensor:
    """Lab 05's symmetric InfoNCE (the lesson's ``clip_loss``), checked; with ``keys``, equal keys are positives."""
    where = "clip_loss"
    require_tensor(image_emb, where, "image_emb", 2)
    require_tensor(text_emb, where, "text_emb", 2, width=image_emb.shape[1])
    require_same_length(where, image_emb=image_emb, text_emb=text_emb)
    if not isinstance(logit_scale, torch.Tensor) or logit_scale.numel() != 1:
        raise bad_input(where, "logit_scale as a one-element tensor (log of 1/temperature)", describe(logit_scale),
                        "Pass model.logit_scale, or torch.tensor(math.log(1 / 0.07)).")
    if keys is not None:
        require_tensor(keys, where, "keys", 1, floating=False, fix="Pass one integer key per pair, e.g. cells.keys.")
        require_same_length(where, image_emb=image_emb, keys=keys)
    targets = None if keys is None else same_caption_targets(keys)
    return lesson_clip_loss(image_emb, text_emb, 1 / logit_scale.exp().clamp(max=100), targets)


def lr_at(step: int, total: int, peak: float, warmup_frac: float = 0.1) -> float:
    """Linear warm-up to ``peak`` over the first ``warmup_frac`` of steps, then cosine decay to zero (lab 05's)."""
    total = require_int(total, "lr_at", "total", minimum=1)
    step = require_int(step, "lr_at", "step", minimum=0, maximum=total - 1)
    require_number(peak, "lr_at", "peak", minimum=0.0)
    require_number(warmup_frac, "lr_at", "warmup_frac", minimum=0.0, maximum=1.0)
    return peak * warmup_cosine(step, total, warmup_frac)


def train_clip(cells: CellSet, settings: ClipSettings, device: torch.device | str = "cpu",
               log_every: int = 25) -> tuple[CellClip, dict[str, Any]]:
    """Train a :class:`CellClip` on ``cells`` with lab 05's own loop (``lessons.lab05.train_contrastive``).

    Args:
        cells: the captioned training cells, from ``wu.cell_images.make_cells``.
        settings: sizes, steps, batch, peak learning rate, seed and CPU threads, e.g. ``CLIP_PROFILES[PROFILE]``.
        device: where to train, e.g. ``"cpu"`` or ``wu.torch_device(PROFILE)`` (bf16 autocast on CUDA).
        log_every: record loss and learning rate every this many steps (and at the last step).

    Returns:
        ``(model, history)``: the trained model in eval mode, and ``{"step", "loss", "lr", "train_s"}`` (s).

    Example:
        >>> model, history = wu.multimodal.train_clip(train, clip_settings, device)
    """
    require_cells(cells, "train_clip")
    require_settings(settings, ClipSettings, "train_clip", "mm.CLIP_PROFILES")
    device = cast(torch.device, require_device(device, "train_clip"))
    require_int(log_every, "train_clip", "log_every", minimum=1)
    images = require_images(cells.images, "train_clip")
    torch.manual_seed(settings.seed)  # the notebook's initial weights, then its data on the device
    model = CellClip(settings.width).to(device).to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's Module.to stubs omit memory_format
    pixels, text_table = to_tensor(images, device), encode_texts(cells.captions).to(device)
    keys = torch.as_tensor(cells.keys, device=device)
    threads_before = torch.get_num_threads()
    if settings.threads and device.type == "cpu":
        torch.set_num_threads(settings.threads)
    started = time.perf_counter()
    try:
        history: dict[str, Any] = dict(train_contrastive(
            model, pixels, text_table, keys, steps=settings.steps, batch=settings.batch, lr=settings.lr,
            warmup_frac=settings.warmup_frac, seed=settings.seed, log_every=log_every))
        if device.type == "cuda":
            torch.cuda.synchronize()
        history["train_s"] = time.perf_counter() - started
    finally:
        torch.set_num_threads(threads_before)
    return model, history


@torch.no_grad()
def embed_images(model: CellClip, images: np.ndarray, batch: int = 512) -> torch.Tensor:
    """Unit-norm image embeddings (N, 384) on the CPU.

    Args:
        model: the trained :class:`CellClip`.
        images: (N, H, W, 3) float images in [0, 1], e.g. ``heldout.images``.
        batch: images encoded per forward pass (a memory bound; results do not depend on it).

    Returns:
        A float32 tensor (N, 384), one unit-length row per image.

    Example:
        >>> image_emb = wu.multimodal.embed_images(model, heldout.images)
    """
    require_clip_model(model, "embed_images")
    images = require_images(images, "embed_images")
    batch = require_int(batch, "embed_images", "batch", minimum=1)
    device = next(model.parameters()).device
    return torch.cat([model.encode_image(to_tensor(images[i:i + batch], device)).float().cpu()
                      for i in range(0, len(images), batch)])


@torch.no_grad()
def embed_prompts(model: CellClip, prompts: Sequence[str]) -> torch.Tensor:
    """Unit-norm text embeddings (N, 384) of free-text prompts, on the CPU.

    Args:
        model: the trained :class:`CellClip` (its text side is the frozen MiniLM encoder).
        prompts: the texts to embed, e.g. class prompts or captions.

    Returns:
        A float32 tensor (len(prompts), 384), one unit-length row per prompt.

    Example:
        >>> text_emb = wu.multimodal.embed_prompts(model, heldout.captions)
    """
    require_clip_model(model, "embed_prompts")
    prompts = require_texts(prompts, "embed_prompts", "prompts")
    device = next(model.parameters()).device
    return model.encode_text(encode_texts(prompts).to(device)).float().cpu()


def zero_shot(model: CellClip, images: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
    """Index of the best-matching prompt for each image (no training on the prompts).

    Args:
        model: the trained :class:`CellClip`.
        images: (N, H, W, 3) float images in [0, 1].
        prompts: the candidate descriptions, e.g. one class prompt per phenotype.

    Returns:
        An int array (N,) of indices into ``prompts`` (highest cosine similarity).

    Example:
        >>> predicted = wu.multimodal.zero_shot(model, heldout.images, class_prompts)
    """
    require_clip_model(model, "zero_shot")
    array = require_images(images, "zero_shot")
    prompts = require_texts(prompts, "zero_shot", "prompts")
    return (embed_images(model, array) @ embed_prompts(model, prompts).T).argmax(dim=1).numpy()


def retrieval_recall(image_emb: torch.Tensor, text_emb: torch.Tensor, keys: np.ndarray,
                     ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Recall@k both ways; a hit is a retrieved item with the same (phenotype, stain, magnification).

    Args:
        image_emb: (N, D) image embeddings, e.g. from :func:`embed_images`.
        text_emb: (N, D) text embeddings of the same N pairs, in the same order.
        keys: one integer key per pair, e.g. ``cells.keys``; equal keys count as matches.
        ks: the k values to report (each between 1 and N).

    Returns:
        ``{"recall_at_<k>_i2t": r, "recall_at_<k>_t2i": r, ...}``, fractions in [0, 1] (image->text, text->image).

    Example:
        >>> recall = wu.multimodal.retrieval_recall(image_emb, text_emb, heldout.keys, ks=(1, 5))
    """
    where = "retrieval_recall"
    fix = "Pass embeddings from mm.embed_images / mm.embed_prompts, one row per held-out pair."
    image_emb = torch.as_tensor(as_array(image_emb, where, "image_emb", ndim=2, kind="float", fix=fix))
    text_emb = torch.as_tensor(as_array(text_emb, where, "text_emb", ndim=2, kind="float", fix=fix))
    keys = as_array(keys, where, "keys", ndim=1, kind="integer", fix="Pass one integer key per pair: cells.keys.")
    n = require_same_length(where, image_emb=image_emb, text_emb=text_emb, keys=keys)
    if image_emb.shape[1] != text_emb.shape[1]:
        raise bad_input(where, "image_emb and text_emb of the same width", f"{image_emb.shape[1]} and "
                        f"{text_emb.shape[1]} columns", "Embed both sides with the same model.")
    ks = [require_int(k, where, "each k in ks", minimum=1, maximum=n) for k in require_nonempty(ks, where, "ks")]
    sims = image_emb @ text_emb.T
    keys_t = torch.as_tensor(keys)
    out = {}
    for direction, matrix in (("i2t", sims), ("t2i", sims.T)):
        ranked = matrix.topk(max(ks), dim=1).indices
        hits = keys_t[ranked] == keys_t[:, None]
        for k in ks:
            out[f"recall_at_{k}_{direction}"] = float(hits[:, :k].any(dim=1).float().mean())
    return out
