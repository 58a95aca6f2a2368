"""Lab 01's exercise: complete the deterministic (cacheable) part of the MONAI transform chain."""

from __future__ import annotations

from typing import Any

import numpy as np

from workshop_utils.core.inputs import describe
from workshop_utils.exercises import exercise


def _array(value: Any) -> np.ndarray | None:
    """A numpy view of an array or tensor with a numeric (or bool) dtype; None for anything else."""
    try:
        array = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
    except (TypeError, ValueError, RuntimeError):  # ragged lists, dtypes numpy lacks (bfloat16)
        return None
    return array if array.dtype.kind in "uifb" else None


@exercise("01-transforms", "These steps are deterministic, so CacheDataset runs them once per image and keeps the result.")
def transforms(value: Any) -> str | None:
    """The dict that ``prepare(train_files[0])`` returns: image (1, H, W) float in [0, 1], label 0/1."""
    if isinstance(value, (list, tuple)) and value:
        value = value[0]
    if not isinstance(value, dict) or "image" not in value or "label" not in value:
        return (f"expected the dict that prepare(train_files[0]) returns, with 'image' and 'label' keys; got "
                f"{describe(value)}.")
    image, label = _array(value["image"]), _array(value["label"])
    if image is None or label is None:
        return (f"expected 'image' and 'label' as numeric arrays or tensors; got image {describe(value['image'])}, "
                f"label {describe(value['label'])}. Pass the dict prepare(train_files[0]) returns.")
    if image.size == 0:
        return f"expected a non-empty image; got shape {image.shape}. Check that LoadImaged read the file."
    if not (np.isfinite(image).all() and np.isfinite(label).all()):
        return "expected finite values; the image or label holds NaN or inf. Check the intensity scaling step."
    if image.ndim != 3 or image.shape[0] != 1:
        return (f"image has shape {image.shape}; expected channel first, (1, H, W), as MONAI networks want. Keep "
                "EnsureChannelFirstd(keys=['image', 'label'], channel_dim='no_channel') right after LoadImaged.")
    if label.shape != image.shape:
        return (f"label shape {label.shape} differs from image shape {image.shape}; expected the same shape. Apply "
                "each step to both keys.")
    values = np.unique(label)
    if not set(values.tolist()) <= {0.0, 1.0}:
        return (f"the label still holds instance ids (0..{values.max():g}), but DiceCE needs 0/1 foreground. Add "
                "AsDiscreted(keys='label', threshold=0.5).")
    low, high = float(image.min()), float(image.max())
    if low < -1e-6 or high > 1 + 1e-6:
        return (f"image values run {low:g}..{high:g}; the model expects [0, 1]. Add ScaleIntensityRangePercentilesd("
                "keys='image', lower=1, upper=99.8, b_min=0.0, b_max=1.0, clip=True).")
    saturated = float((image >= 1 - 1e-6).mean())
    if saturated < 5e-4:
        return ("only a pixel or two reach 1.0: that is min-max scaling (ScaleIntensityd), where one bright speck sets "
                "the scale. The model expects percentiles: lower=1, upper=99.8, clip=True.")
    if saturated > 0.01 or float((image <= 1e-6).mean()) > 0.05:
        return (f"{saturated:.1%} of pixels are at 1.0, more than the top 0.2% the model was trained with; use "
                "lower=1, upper=99.8 (the percentiles in wu.nuclei.NORMALISATION).")
    if str(image.dtype) != "float32":
        return f"image dtype is {image.dtype}; the network's weights are float32. Keep EnsureTyped(dtype=torch.float32)."
    return None
