"""Argument checks the image-text model (lab 05 Part A) and the VLM (Part B) share.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from workshop_utils.cell_images import CellSet
from workshop_utils.core.inputs import (
    as_array,
    bad_input,
    describe,
    require_instance,
    require_int,
    require_number,
)

# ---------------------------------------------------------------- input checks shared with vlm.py


def require_tensor(value: Any, where: str, name: str, ndim: int, *, width: int | None = None,
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


def require_image_batch(x: Any, where: str) -> torch.Tensor:
    """A (B, 3, H, W) float tensor, as ``to_tensor`` makes: what the image tower reads."""
    ok = isinstance(x, torch.Tensor) and x.ndim == 4 and x.shape[1] == 3 and x.numel() > 0 and x.is_floating_point()
    if not ok:
        raise bad_input(where, "x as a non-empty float tensor (B, 3, H, W)", describe(x),
                        "Convert (N, H, W, 3) images in [0, 1] with mm.to_tensor(images).")
    return x


def require_images(images: Any, where: str) -> np.ndarray:
    """(N, H, W, 3) float images in [0, 1] (a ``CellSet``'s ``images``) as a numpy array."""
    array = as_array(images, where, "images", ndim=4, kind="float",
                     fix="Pass (N, H, W, 3) float images in [0, 1] such as cells.images "
                         "(uint8: images.astype(np.float32) / 255; one image: image[None]).")
    if array.shape[-1] != 3:
        raise bad_input(where, "images (N, H, W, 3) with 3 colour channels last", describe(array),
                        "Move the channel axis last (np.moveaxis(images, 1, -1)) or stack grey images to RGB.")
    return array


def require_settings(settings: Any, kind: type, where: str, profiles: str) -> Any:
    """A settings dataclass with at least one step, one example per batch and a positive learning rate."""
    require_instance(settings, kind, where, "settings",
                      f"Start from a profile's settings: dataclasses.replace({profiles}[PROFILE], steps=100).")
    require_int(settings.steps, where, "settings.steps", minimum=1)
    require_int(settings.batch, where, "settings.batch", minimum=1)
    require_number(settings.lr, where, "settings.lr", minimum=0.0, strict=True)
    return settings


def require_cells(cells: Any, where: str) -> CellSet:
    require_instance(cells, CellSet, where, "cells", "Make them with ph.make_cells(n, seed, size).")
    if len(cells) == 0:
        raise bad_input(where, "at least one cell in cells", "an empty CellSet",
                        "Make them with ph.make_cells(n >= 1, seed).")
    return cells
