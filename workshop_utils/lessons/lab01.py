"""Lab 01's lesson code, copied by ``make export`` from notebooks/01_monai_nuclei_segmentation.ipynb.

Do not edit: change the notebook's ``#| export`` cells and run ``make export``; tests/test_lessons.py
fails while this file and the notebook differ.
"""
# ruff: noqa: E402, I001  (each cell brings its own imports, where the notebook shows them)

from __future__ import annotations


import torch
from monai.transforms import (AsDiscreted, EnsureChannelFirstd, EnsureTyped, LoadImaged, RandAdjustContrastd,
                              RandCropByPosNegLabeld, RandFlipd, RandRotate90d, RandScaleIntensityd,
                              ScaleIntensityRangePercentilesd)


def prepare_transforms(lower: float, upper: float) -> list:
    """The deterministic steps, run once per file and cached: read, add a channel axis, scale, binarise."""
    steps = [
        # reader kwargs go to MONAI's PILReader; reverse_indexing=False keeps numpy's (row, column) order
        LoadImaged(keys=["image", "label"], reader="PILReader", image_only=True, reverse_indexing=False),
        # the TIFFs are (H, W); MONAI works on (C, H, W), so add the channel axis in front
        EnsureChannelFirstd(keys=["image", "label"], channel_dim="no_channel"),
    ]
    steps.append(ScaleIntensityRangePercentilesd(keys="image", lower=lower, upper=upper, b_min=0.0, b_max=1.0, clip=True))
    steps.append(AsDiscreted(keys="label", threshold=0.5))
    # float32 tensors without MONAI's metadata: what the network and the loss take
    steps.append(EnsureTyped(keys=["image", "label"], dtype=torch.float32, track_meta=False))
    return steps


def augment_transforms(patch_px: int, samples_per_image: int = 2) -> list:
    """The random steps, redone every epoch: crops centred on nuclei or background, flips, rotations, contrast."""
    return [
        # pos=2, neg=1: two crops in three are centred on a nucleus pixel, one on background
        RandCropByPosNegLabeld(keys=["image", "label"], label_key="label", spatial_size=(patch_px, patch_px),
                               pos=2, neg=1, num_samples=samples_per_image),
        RandFlipd(keys=["image", "label"], prob=0.5, spatial_axis=0),   # same flip for image and label
        RandFlipd(keys=["image", "label"], prob=0.5, spatial_axis=1),
        RandRotate90d(keys=["image", "label"], prob=0.5),
        RandScaleIntensityd(keys="image", factors=0.2, prob=0.5),       # image only: labels keep their 0/1
        RandAdjustContrastd(keys="image", gamma=(0.7, 1.5), prob=0.3),
    ]


from collections.abc import Callable, Iterable, Sequence

from monai.networks.nets import UNet


def build_unet(channels: Sequence[int], strides: Sequence[int], num_res_units: int, norm: str = "batch",
               in_channels: int = 1, out_channels: int = 2) -> UNet:
    """MONAI's UNet for 2-D grey images: one input channel, two output classes (background, nucleus)."""
    return UNet(
        spatial_dims=2,               # images, not volumes (3)
        in_channels=in_channels,      # one fluorescence channel
        out_channels=out_channels,    # logits for background and nucleus
        channels=channels,            # feature maps per level, e.g. (16, 32, 64, 128): width and capacity
        strides=strides,              # 2 halves the resolution between levels; len(channels) - 1 of them
        num_res_units=num_res_units,  # residual units per block: deeper without vanishing gradients
        norm=norm,                    # batch norm after each convolution
    )


def train_epoch(network: torch.nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer,
                loss_fn: Callable[..., torch.Tensor], device: torch.device,
                scaler: torch.amp.GradScaler | None = None) -> float:
    """One pass over ``loader``; returns the mean loss. With a ``scaler`` (CUDA) it trains in mixed precision."""
    network.train()
    total, batches = 0.0, 0
    for batch in loader:
        images, labels = batch["image"].to(device), batch["label"].to(device)
        if scaler is not None:
            images = images.contiguous(memory_format=torch.channels_last)
        optimizer.zero_grad(set_to_none=True)               # gradients add up unless cleared
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=scaler is not None):
            loss = loss_fn(network(images), labels)          # forward pass and Dice + cross-entropy
        if scaler is not None:
            scaler.scale(loss).backward()                    # backward on the scaled loss
            scaler.step(optimizer)                           # unscales; skips the step if a gradient overflowed
            scaler.update()
        else:
            loss.backward()                                  # gradients of the loss for every weight
            optimizer.step()                                 # Adam updates the weights
        total += float(loss.detach())
        batches += 1
    return total / max(batches, 1)


import numpy as np
from monai.inferers import sliding_window_inference
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.segmentation import watershed


def sliding_window_logits(predictor: Callable[[torch.Tensor], torch.Tensor], image01: np.ndarray, tile_px: int,
                          overlap: float, sw_batch_size: int, device: torch.device | str = "cpu") -> np.ndarray:
    """(C, H, W) logits for a scaled image of any size, from overlapping ``tile_px`` tiles."""
    batch = torch.from_numpy(np.ascontiguousarray(image01, dtype=np.float32))[None, None].to(device)
    with torch.no_grad():
        logits = sliding_window_inference(
            batch,
            roi_size=(tile_px, tile_px),   # the tile the network was trained on
            sw_batch_size=sw_batch_size,   # tiles per forward pass
            predictor=predictor,           # tiles -> logits: the network, or another runtime
            overlap=overlap,               # fraction by which neighbouring tiles overlap
            mode="gaussian",               # blend overlaps with weights that fall off towards a tile's edge
        )
    return logits[0].float().cpu().numpy()


def split_nuclei(probability: np.ndarray, threshold: float, min_size_px: int, min_distance_px: int) -> np.ndarray:
    """Instance labels (0 background, 1..n) from P(nucleus): threshold, clean up, watershed."""
    mask = probability > threshold
    pieces, _ = ndimage.label(mask)
    mask = ndimage.binary_fill_holes((np.bincount(pieces.ravel()) >= min_size_px)[pieces] & mask)   # drop specks
    if not mask.any():
        return np.zeros(mask.shape, np.int32)
    distance = ndimage.gaussian_filter(ndimage.distance_transform_edt(mask), 1.0)   # peaks at nucleus centres
    components, _ = ndimage.label(mask)
    peaks = peak_local_max(distance, min_distance=min_distance_px, labels=components, exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)   # one seed per centre
    labels = watershed(-distance, markers, mask=mask)        # flood from the seeds; touching nuclei split where they meet
    orphans, _ = ndimage.label(mask & (labels == 0))         # a component without a peak keeps one label
    labels = np.where(orphans > 0, orphans + labels.max(), labels)
    _, labels = np.unique(labels, return_inverse=True)       # renumber 1..n
    return labels.reshape(mask.shape).astype(np.int32)


import time

from monai.data import DataLoader, Dataset
from monai.losses import DiceCELoss
from torch.utils.data import RandomSampler


def train_steps(network: torch.nn.Module, dataset: Dataset, steps: int, batch_size: int, lr: float,
                device: torch.device, scaler: torch.amp.GradScaler | None = None, rounds: int = 10,
                num_workers: int = 0, seed: int = 0, log: Callable[[str], None] = print) -> list[float]:
    """Train for ``steps`` optimiser steps in ``rounds`` rounds, cosine learning rate; the mean loss of each round."""
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    rounds = max(1, min(rounds, steps))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=rounds)
    losses: list[float] = []
    for index in range(rounds):
        n = steps // rounds + (index < steps % rounds)     # the rounds add up to exactly `steps`
        # n batches drawn with replacement: the budget is optimiser steps, whatever the data set's size
        draws = RandomSampler(dataset, replacement=True, num_samples=n * batch_size,
                              generator=torch.Generator().manual_seed(seed + index))
        loader = DataLoader(dataset, batch_size=batch_size, sampler=draws, num_workers=num_workers,
                            pin_memory=device.type == "cuda")
        started = time.perf_counter()
        losses.append(train_epoch(network, loader, optimizer, loss_fn, device, scaler))
        schedule.step()
        log(f"round {index + 1:>2}/{rounds}: {n} steps, loss {losses[-1]:.4f} ({time.perf_counter() - started:.1f} s)")
    return losses
