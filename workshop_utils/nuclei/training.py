"""Train the nuclei UNet: synthetic training files, MONAI transforms, one epoch, and the artifact rebuild.

Lab 01's notebook writes its own training loop from these pieces; ``ensure_nuclei_model(profile)`` runs the same
pieces to rebuild ``build/artifacts/nuclei_unet.pt`` when a later lab finds it missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
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

# --- data and training (lab 01's notebook and ensure_nuclei_model share these) ---

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
    """Deterministic steps (cacheable): load TIFFs, add a channel axis, scale intensities, binarise labels."""
    if not isinstance(config, NucleiConfig):
        raise bad_input("prepare_transforms", "config as a NucleiConfig", describe(config),
                        "Pass the config from nuclei.nuclei_preset(PROFILE) or model.config.")
    from monai.data import PILReader
    from monai.transforms import (
        AsDiscreted,
        EnsureChannelFirstd,
        EnsureTyped,
        LoadImaged,
        ScaleIntensityRangePercentilesd,
    )

    norm = config.normalisation
    return [
        LoadImaged(keys=["image", "label"], reader=PILReader(reverse_indexing=False), image_only=True),  # type: ignore[arg-type]  # MONAI's annotation omits reader instances, which it documents and accepts
        EnsureChannelFirstd(keys=["image", "label"], channel_dim="no_channel"),
        ScaleIntensityRangePercentilesd(keys="image", lower=norm["lower"], upper=norm["upper"], b_min=0.0, b_max=1.0, clip=True),
        AsDiscreted(keys="label", threshold=0.5),
        EnsureTyped(keys=["image", "label"], dtype=torch.float32, track_meta=False),
    ]


def augment_transforms(patch_px: int, samples_per_image: int = 2) -> list[Any]:
    """Random steps (redone every epoch): crops centred on nuclei or background, flips, rotations, contrast.

    Crops are centred on a nucleus two times in three; each later step fires with its own probability.

    Args:
        patch_px: the side (px) of the square training crops.
        samples_per_image: crops cut from each image per epoch.

    Returns:
        MONAI dictionary transforms on ``{"image", "label"}``, to append to the deterministic ones.

    Example:
        >>> train_transforms = Compose(list(prepare.transforms) + wu.nuclei.augment_transforms(settings["patch_px"]))
    """
    require_int(patch_px, "augment_transforms", "patch_px", minimum=1)
    require_int(samples_per_image, "augment_transforms", "samples_per_image", minimum=1)
    from monai.transforms import (
        RandAdjustContrastd,
        RandCropByPosNegLabeld,
        RandFlipd,
        RandRotate90d,
        RandScaleIntensityd,
    )

    return [
        RandCropByPosNegLabeld(keys=["image", "label"], label_key="label", spatial_size=(patch_px, patch_px),
                               pos=2, neg=1, num_samples=samples_per_image),
        RandFlipd(keys=["image", "label"], prob=0.5, spatial_axis=0),
        RandFlipd(keys=["image", "label"], prob=0.5, spatial_axis=1),
        RandRotate90d(keys=["image", "label"], prob=0.5),
        RandScaleIntensityd(keys="image", factors=0.2, prob=0.5),
        RandAdjustContrastd(keys="image", gamma=(0.7, 1.5), prob=0.3),
    ]


def train_epoch(model: NucleiModel, loader: Any, optimizer: torch.optim.Optimizer, loss_fn: Callable[..., torch.Tensor],
                amp: bool = False, channels_last: bool = False, scaler: Any = None) -> float:
    """One pass over ``loader``; returns the mean loss. AMP and channels-last apply on CUDA only.

    Args:
        model: the :class:`NucleiModel` to train (batches move to its device).
        loader: an iterable of ``{"image", "label"}`` batches, e.g. a ``monai.data.DataLoader``.
        optimizer: a torch optimiser over ``model.network.parameters()``.
        loss_fn: ``loss_fn(logits, labels) -> loss``, e.g. ``monai.losses.DiceCELoss(to_onehot_y=True, softmax=True)``.
        amp: True runs the forward pass in float16 autocast (CUDA only).
        channels_last: True feeds the images in channels-last memory layout (CUDA only).
        scaler: a ``torch.amp.GradScaler`` used with ``amp``; None steps without loss scaling.

    Returns:
        The mean training loss over the epoch's batches.

    Example:
        >>> loss = wu.nuclei.train_epoch(model, loader, optimizer, loss_fn, amp=on_gpu, scaler=scaler)
    """
    where = "train_epoch"
    require_nuclei_model(model, where)
    if isinstance(loader, (str, bytes, Mapping)) or not isinstance(loader, Iterable):
        raise bad_input(where, "loader as a DataLoader of {'image', 'label'} batches", describe(loader),
                        "Pass e.g. monai.data.DataLoader(dataset, batch_size=8, shuffle=True).")
    if not (callable(getattr(optimizer, "step", None)) and callable(getattr(optimizer, "zero_grad", None))):
        raise bad_input(where, "optimizer as a torch.optim optimizer", describe(optimizer),
                        "Pass e.g. torch.optim.Adam(model.network.parameters(), lr=2e-3).")
    if not callable(loss_fn):
        raise bad_input(where, "loss_fn as a callable (logits, labels) -> loss", describe(loss_fn),
                        "Pass e.g. monai.losses.DiceCELoss(to_onehot_y=True, softmax=True).")
    device = model.device
    cuda = device.type == "cuda"
    model.network.train()
    total, batches = 0.0, 0
    for batch in loader:
        if not isinstance(batch, Mapping) or "image" not in batch or "label" not in batch:
            raise bad_input(where, "batches as dicts with 'image' and 'label' tensors", describe(batch),
                            "Build the dataset from write_synthetic_files' dicts and prepare_transforms.")
        images, labels = batch["image"].to(device, non_blocking=True), batch["label"].to(device, non_blocking=True)
        if channels_last and cuda:
            images = images.contiguous(memory_format=torch.channels_last)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=amp and cuda):
            loss = loss_fn(model(images), labels)
        if scaler is not None and amp and cuda:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        total += float(loss.detach())
        batches += 1
    if batches == 0:
        raise bad_input(where, "a loader with at least one batch", "an empty loader",
                        "Check the dataset has files (and is longer than batch_size when drop_last=True).")
    return total / batches


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
    transforms = Compose(prepare_transforms(cfg) + augment_transforms(s["patch_px"]))
    dataset = CacheDataset(files, transforms, progress=False)
    loader = DataLoader(dataset, batch_size=s["batch_size"], shuffle=True, num_workers=0)
    model = NucleiModel(build_network(cfg).to(device), cfg)
    optimizer = torch.optim.Adam(model.network.parameters(), lr=s["lr"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=s["epochs"])
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    losses = []
    for epoch in range(s["epochs"]):
        started = time.perf_counter()
        losses.append(train_epoch(model, loader, optimizer, loss_fn))
        schedule.step()
        log(f"epoch {epoch + 1}/{s['epochs']}: loss {losses[-1]:.4f} ({time.perf_counter() - started:.1f} s)")
    model.network.eval()
    model.meta.update(trained_on="synthetic", epochs=s["epochs"], n_images=s["n_images"], loss_last=losses[-1])
    set_determinism(seed=None)
    return model, losses


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
