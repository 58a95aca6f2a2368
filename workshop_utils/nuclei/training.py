"""Train the nuclei UNet when a later lab finds ``build/artifacts/nuclei_unet.pt`` missing.

The transforms, the UNet and the training step are lab 01's own cells (``workshop_utils.lessons.lab01``, copied
from the notebook by ``make export``); this module adds the synthetic files and the loop around them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workshop_utils.core import paths
from workshop_utils.core.cpus import fair_cpu_threads
from workshop_utils.core.errors import MissingFileError
from workshop_utils.core.files import atomic_write, ensure_artifact

# noqa: F401 - lab 01 calls nuclei.fair_cpu_threads()
from workshop_utils.core.inputs import (
    bad_input,
    describe,
    require_device,
    require_int,
    require_number,
    require_path,
)
from workshop_utils.core.profiles import require_profile, torch_device
from workshop_utils.lessons import lab01 as lesson
from workshop_utils.nuclei.model import (
    ARTIFACT_NAME,
    NucleiConfig,
    NucleiModel,
    build_network,
    load_nuclei_model,
    nuclei_preset,
    require_nuclei_model,
    save_nuclei_model,
)

# --- data and training (the lesson's transforms, UNet and training step; the files and the loop around them) ---

def write_synthetic_files(folder: Path, n_images: int, size_px: int = 256, seed: int = 0) -> list[dict[str, str]]:
    """Write synthetic (image, label) pairs as uint16 TIFFs; returns MONAI-style [{"image": p, "label": p}].

    Files already on disk are reused; each pair depends only on (seed, index), and names carry seed and size.

    Args:
        folder: where to write the TIFFs (created if missing).
        n_images: how many (image, label) pairs (>= 1).
        size_px: the image side (px, >= 32).
        seed: the random seed (>= 0).

    Returns:
        One ``{"image": path, "label": path}`` dict per pair (paths as str), for a MONAI dataset.

    Example:
        >>> train_files = wu.nuclei.write_synthetic_files(wu.build_dir() / "data", 48, 256, seed=0)
    """
    where = "write_synthetic_files"
    folder = require_path(folder, where, "folder", "Pass e.g. folder=wu.build_dir() / 'data'.")
    require_int(n_images, where, "n_images", minimum=1)
    require_int(size_px, where, "size_px", minimum=32)
    require_int(seed, where, "seed", minimum=0)
    import tifffile

    from workshop_utils.nuclei_images import synthetic_nuclei

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n_images):
        image_path, label_path = folder / f"s{seed}_{size_px}_{i:04d}_img.tif", folder / f"s{seed}_{size_px}_{i:04d}_lbl.tif"
        if not (image_path.is_file() and label_path.is_file()):  # write then rename: readers never see half a file
            image, labels = synthetic_nuclei(size_px, np.random.default_rng([seed, i]))
            for target, array in ((image_path, image), (label_path, labels.astype(np.uint16))):
                with atomic_write(target) as partial:
                    tifffile.imwrite(partial, array)
        files.append({"image": str(image_path), "label": str(label_path)})
    return files


def prepare_transforms(config: NucleiConfig) -> list[Any]:
    """Lab 01's deterministic steps (``lessons.lab01.prepare_transforms``) with ``config``'s normalisation."""
    if not isinstance(config, NucleiConfig):
        raise bad_input("prepare_transforms", "config as a NucleiConfig", describe(config),
                        "Pass the config from nuclei.nuclei_preset(PROFILE) or model.config.")
    norm = config.normalisation
    return lesson.prepare_transforms(lower=norm["lower"], upper=norm["upper"])


def train_nuclei_model(config: NucleiConfig | None = None, *, device: str = "cpu", log: Callable[[str], None] = print,
                       **settings: Any) -> tuple[NucleiModel, list[float]]:
    """Train on synthetic data (smoke preset unless ``config``/``settings`` say otherwise); returns model, epoch losses."""
    where = "train_nuclei_model"
    if config is not None and not isinstance(config, NucleiConfig):
        raise bad_input(where, "config as a NucleiConfig or None", describe(config),
                        "Pass the config from nuclei.nuclei_preset(PROFILE), or leave it out.")
    device = str(require_device(device, where))
    if not callable(log):
        raise bad_input(where, "log as a callable taking one line of text", describe(log), "Pass log=print.")
    smoke_config, smoke_settings = nuclei_preset("smoke")
    unknown = sorted(set(settings) - set(smoke_settings))
    if unknown:
        raise bad_input(where, f"settings among the known ones: {', '.join(smoke_settings)}", ", ".join(unknown),
                        "Check the spelling; set channels through config=NucleiConfig(channels=...).")
    cfg, s = config or smoke_config, {**smoke_settings, **settings}
    for name, minimum in (("n_images", 1), ("size_px", 32), ("patch_px", 1), ("batch_size", 1), ("epochs", 1),
                          ("seed", 0)):
        require_int(s[name], where, name, minimum=minimum)
    require_number(s["lr"], where, "lr", minimum=0.0, strict=True)
    from monai.data import CacheDataset, DataLoader
    from monai.losses import DiceCELoss
    from monai.transforms import Compose
    from monai.utils import set_determinism

    set_determinism(seed=s["seed"])
    files = write_synthetic_files(paths.build_dir() / "data" / "lab01_synthetic", s["n_images"], s["size_px"], s["seed"])
    transforms = Compose(prepare_transforms(cfg) + lesson.augment_transforms(s["patch_px"]))
    dataset = CacheDataset(files, transforms, progress=False)
    loader = DataLoader(dataset, batch_size=s["batch_size"], shuffle=True, num_workers=0)
    network = build_network(cfg).to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=s["lr"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=s["epochs"])
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    losses = []
    for epoch in range(s["epochs"]):
        started = time.perf_counter()
        losses.append(lesson.train_epoch(network, loader, optimizer, loss_fn, torch.device(device)))
        schedule.step()
        log(f"epoch {epoch + 1}/{s['epochs']}: loss {losses[-1]:.4f} ({time.perf_counter() - started:.1f} s)")
    network.eval()
    model = NucleiModel(network, cfg)
    model.meta.update(trained_on=["synthetic"], epochs=s["epochs"], n_images=s["n_images"], loss_last=losses[-1])
    set_determinism(seed=None)
    return model, losses


def fine_tune_nuclei_model(model: NucleiModel, files: list[dict[str, str]], steps: int, *, source: str,
                           batch_size: int = 8, patch_px: int = 128, lr: float = 2e-3, seed: int = 0,
                           log: Callable[[str], None] = print) -> list[float]:
    """Train ``model`` further on (image, label) TIFF pairs for ``steps`` optimiser steps: lab 01's ``train_steps``.

    The files go through lab 01's transforms (``prepare_transforms`` + ``augment_transforms``) into a MONAI
    ``CacheDataset``; on CUDA the lesson trains in mixed precision, channels-last. ``model.meta["trained_on"]``
    gains ``source``. A fresh network (``NucleiModel(build_network(config), config)``) trains on these files alone.

    Args:
        model: the :class:`NucleiModel` to train; its network is updated in place, on its own device.
        files: ``{"image": path, "label": path}`` dicts, e.g. from :func:`dsb2018_pairs` (instance labels are fine).
        steps: optimiser steps (batches), whatever the number of files; at least 1.
        source: what the files are, for the record: a manifest name such as ``"stardist_dsb2018"``.
        batch_size: images per batch (each gives two random crops).
        patch_px: the side of the random crops (px); at most the smallest image's side.
        lr: Adam's learning rate at the start of the cosine schedule.
        seed: the seed of the batch draws.
        log: called with one line per round of steps.

    Returns:
        The mean loss of each round of steps, in order.

    Example:
        >>> losses = wu.nuclei.fine_tune_nuclei_model(model, wu.nuclei.dsb2018_pairs(root), 180, source="stardist_dsb2018")
    """
    where = "fine_tune_nuclei_model"
    require_nuclei_model(model, where)
    if not isinstance(files, list) or not files or not all(isinstance(f, dict) and {"image", "label"} <= set(f)
                                                             for f in files):
        raise bad_input(where, 'files as a non-empty list of {"image": path, "label": path} dicts', describe(files),
                        "Pass e.g. wu.nuclei.dsb2018_pairs(root, 'train').")
    for name, value, minimum in (("steps", steps, 1), ("batch_size", batch_size, 1), ("patch_px", patch_px, 8),
                                 ("seed", seed, 0)):
        require_int(value, where, name, minimum=minimum)
    require_number(lr, where, "lr", minimum=0.0, strict=True)
    if not isinstance(source, str) or not source.strip():
        raise bad_input(where, "source as the name of what the files are", describe(source),
                        "Pass e.g. source='stardist_dsb2018'.")
    if not callable(log):
        raise bad_input(where, "log as a callable taking one line of text", describe(log), "Pass log=print.")
    from monai.data import CacheDataset
    from monai.transforms import Compose

    transforms = Compose(prepare_transforms(model.config) + lesson.augment_transforms(patch_px))
    dataset = CacheDataset(files, transforms, progress=False)
    device = model.device
    on_gpu = device.type == "cuda"
    if on_gpu:
        model.network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's Module.to stubs omit memory_format
    scaler = torch.amp.GradScaler("cuda") if on_gpu else None
    losses = lesson.train_steps(model.network, dataset, steps, batch_size, lr, device, scaler=scaler, seed=seed,
                                log=log)
    model.network.eval()
    before = model.meta.get("trained_on", [])
    model.meta["trained_on"] = [*([before] if isinstance(before, str) else before), source]
    model.meta.update(fine_tune_steps=steps, loss_last=losses[-1])
    return losses


def ensure_nuclei_model(profile: str = "smoke", path: Path | None = None) -> Path:
    """The saved model's path; if it is missing or unreadable, train a smoke-sized one (< 1 min on 2 cores) first.

    Args:
        profile: ``"smoke"``, ``"cpu"`` or ``"gpu"``; picks the training device (the smoke preset is always used).
        path: the model file; None means ``build/artifacts/nuclei_unet.pt``.

    Returns:
        The path of a readable saved model.

    Example:
        >>> model = wu.nuclei.load_nuclei_model(wu.nuclei.ensure_nuclei_model(PROFILE))
    """
    profile = require_profile(profile, "ensure_nuclei_model")
    target = require_path(path, "ensure_nuclei_model", "path", "Pass e.g. path=wu.artifacts_dir() / 'nuclei_unet.pt', or leave it out for that default.", default=paths.artifacts_dir() / ARTIFACT_NAME)

    def readable(path: Path) -> bool:
        try:
            load_nuclei_model(path)
        except MissingFileError:
            return False
        return True

    def build(target: Path) -> None:
        device = str(torch_device(profile))
        threads = torch.get_num_threads()
        torch.set_num_threads(fair_cpu_threads() if device == "cpu" else threads)
        try:
            model, _ = train_nuclei_model(device=device, log=lambda line: None)
        finally:
            torch.set_num_threads(threads)
        save_nuclei_model(model, target, profile="smoke", source="ensure_nuclei_model")

    return ensure_artifact(target, build, readable=readable, what="nuclei model (trained with lab 01's smoke preset)")
