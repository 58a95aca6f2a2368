"""Segment and count nuclei: preprocess -> forward pass on fixed tiles -> watershed, and the Dice score.

1. ``preprocess(image, normalisation)``: any 2-D numeric image -> float32 (H, W) in [0, 1] (percentile scaling).
2. Forward pass on fixed-size tiles: float32 (N, 1, T, T) -> logits (N, C, T, T), T = ``config.tile_px`` (256),
   N <= ``config.sw_batch_size`` (4; a predictor marked ``fixed_batch = True`` gets batches zero-padded to exactly
   4, for engines with one static shape). Whole images of any size go through MONAI ``sliding_window_inference``;
   ``segment_nuclei(model, image, predictor=fn)`` plugs in any callable mapping a numpy float32 batch to numpy or
   torch logits (ONNX Runtime, TensorRT, Triton). Fixed T and N keep engine shapes static.
3. ``postprocess(prob_or_logits)``: foreground probability -> boolean mask, then distance transform + watershed
   (scikit-image) to split touching nuclei -> int32 instance labels (0 background, 1..n).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from workshop_utils.core.errors import InputError

# noqa: F401 - lab 01 calls nuclei.fair_cpu_threads()
from workshop_utils.core.inputs import (
    as_array,
    bad_input,
    describe,
)
from workshop_utils.nuclei.model import NucleiConfig, NucleiModel, check_normalisation, require_nuclei_model

Predictor = Callable[[np.ndarray], Any]  # float32 (N, 1, T, T) -> logits (N, C, T, T), numpy or torch

def _require_predictor(predictor: Any, where: str) -> None:
    if predictor is not None and not callable(predictor):
        raise bad_input(where, "predictor as a callable (float32 (N, 1, T, T) batch -> logits) or None",
                        describe(predictor), "Pass e.g. serving.OrtPredictor(session), or leave it out.")


def _mask_kind(value: Any) -> str:
    """``as_array``'s kind for masks, label images and probabilities: bool as well as numbers."""
    return "mask" if str(getattr(value, "dtype", "")).endswith("bool") else "numeric"


def _image_error(expected: str, got: str, fix: str) -> InputError:
    return InputError(f"segment_nuclei: expected {expected}; got {got}. {fix}")


def check_image(image: Any) -> np.ndarray:
    """The image as a numpy array if it is a non-empty, finite, numeric 2-D image; else a clear error."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        image = image.float() if image.dtype == torch.bfloat16 else image
    try:
        array = np.asarray(image)
    except (TypeError, ValueError) as err:  # ragged lists
        raise _image_error("one 2-D grey image as an array", f"{type(image).__name__} ({err})",
                           "Load the file with tifffile.imread, or stack the rows into one numpy array.") from None
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise _image_error("a numeric image (uint8, uint16 or float)", f"dtype={array.dtype}",
                           "Load the file with tifffile.imread (or convert with image.astype(np.float32)).")
    if array.ndim != 2:
        channel_axis = 1 in array.shape or (array.ndim == 3 and min(array.shape) <= 4)
        fix = ("It looks like it has a channel axis: pass image[..., 0] or np.squeeze(image)." if channel_axis
               else "Pass one plane of a stack (image[0]) or reshape it to (height, width).")
        raise _image_error("one 2-D grey image (height, width)", f"shape={array.shape}", fix)
    if array.size == 0:
        raise _image_error("a non-empty image", f"an empty image (shape={array.shape})", "Check the file was read.")
    if not np.isfinite(array).all():
        raise _image_error("finite pixel values", "NaN or infinite pixels", "Replace them first: np.nan_to_num(image).")
    return array


def preprocess(image: Any, normalisation: dict[str, Any] | None = None) -> np.ndarray:
    """float32 (H, W) in [0, 1]: the percentiles ``lower``/``upper`` of the image map to 0/1, clipped.

    A flat image (the two percentiles equal) becomes all zeros.

    Args:
        image: one 2-D grey image of any numeric dtype (numpy array, torch tensor or nested lists).
        normalisation: ``{"kind": "percentile", "lower": 1.0, "upper": 99.8}``-style; None uses that default.

    Returns:
        The scaled float32 image, same shape as ``image``.

    Example:
        >>> image01 = wu.nuclei.preprocess(image, model.config.normalisation)
    """
    array = check_image(image).astype(np.float32)
    norm = check_normalisation(normalisation, "preprocess")
    low, high = np.percentile(array, [norm["lower"], norm["upper"]])
    if high <= low:  # a flat image carries no signal
        return np.zeros_like(array)
    return np.clip((array - low) / (high - low), 0.0, 1.0).astype(np.float32)


def _external(predictor: Predictor, batch_size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Wrap a numpy predictor: float32 (n <= batch_size, 1, T, T) batches in, torch logits back.

    A predictor with ``fixed_batch = True`` (an engine built for one static shape) gets every batch zero-padded to
    exactly ``batch_size``; the others (ONNX Runtime, Triton, TensorRT with a batch range) get the real tiles only,
    since padding the last batch of a 512x512 image (9 tiles in batches of 4) costs a third more compute.
    """
    pad = bool(getattr(predictor, "fixed_batch", False))

    def forward(batch: torch.Tensor) -> torch.Tensor:
        n = batch.shape[0]
        array = np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)
        if pad and n < batch_size:
            array = np.concatenate([array, np.zeros((batch_size - n, *array.shape[1:]), np.float32)])
        out = predictor(array)
        shape = tuple(getattr(out, "shape", ()))
        if len(shape) != 4 or shape[0] < n or shape[2:] != array.shape[2:]:
            raise bad_input("segment_nuclei", f"the predictor to return logits (N, C, {array.shape[2]}, "
                            f"{array.shape[3]}) for a batch of shape {array.shape}", describe(out),
                            "Check it runs the model exported for this tile size (acceleration.read_nuclei_config).")
        out = out if isinstance(out, torch.Tensor) else torch.from_numpy(np.asarray(out, dtype=np.float32))
        return out[:n].float().to(batch.device)

    return forward


def predict_logits(model: NucleiModel, image01: np.ndarray, predictor: Predictor | None = None) -> np.ndarray:
    """Sliding-window logits (C, H, W) for a preprocessed float32 image; ``predictor`` replaces the network.

    Tiles of ``config.tile_px`` overlap by ``config.overlap`` and are blended with Gaussian weights.

    Args:
        model: the :class:`NucleiModel`; its config sets the tiles, and its network runs them unless ``predictor``.
        image01: a (H, W) float image from :func:`preprocess`.
        predictor: a callable mapping a float32 (N, 1, T, T) numpy batch to logits; None runs ``model.network``.

    Returns:
        float32 (C, H, W) logits on the CPU, C = ``config.out_channels``.

    Example:
        >>> logits = wu.nuclei.predict_logits(model, image01, predictor=wu.serving.OrtPredictor(session))
    """
    require_nuclei_model(model, "predict_logits")
    image01 = as_array(image01, "predict_logits", "image01", ndim=2, kind="float",
                       fix="Preprocess the image first: nuclei.preprocess(image, model.config.normalisation).")
    _require_predictor(predictor, "predict_logits")
    return _logits(model, image01, predictor)


def _logits(model: NucleiModel, image01: np.ndarray, predictor: Predictor | None) -> np.ndarray:
    from workshop_utils.lessons.lab01 import sliding_window_logits

    cfg = model.config
    device = torch.device("cpu") if predictor is not None else model.device
    forward = _external(predictor, cfg.sw_batch_size) if predictor is not None else model.network
    if predictor is None:
        model.network.eval()
    return sliding_window_logits(forward, image01, cfg.tile_px, cfg.overlap, cfg.sw_batch_size, device)


def foreground_probability(prob_or_logits: np.ndarray) -> np.ndarray:
    """(H, W) probabilities pass through; (C, H, W) logits become P(nucleus) (softmax, or sigmoid when C=1).

    Args:
        prob_or_logits: (H, W) probabilities, or (C, H, W) logits from :func:`predict_logits` (channel 0 = background).

    Returns:
        float32 (H, W) P(nucleus) in [0, 1]; with C > 1 it is one minus the softmax of the background channel.

    Example:
        >>> probability = wu.nuclei.foreground_probability(wu.nuclei.predict_logits(model, image01))
    """
    return _probability(prob_or_logits, "foreground_probability")


def _probability(prob_or_logits: Any, where: str) -> np.ndarray:
    array = as_array(prob_or_logits, where, "prob_or_logits (H, W) probabilities or (C, H, W) logits", ndim=(2, 3),
                     kind=_mask_kind(prob_or_logits)).astype(np.float32, copy=False)
    if array.ndim == 2:
        return array
    if array.shape[0] == 1:
        return 1.0 / (1.0 + np.exp(-array[0]))
    shifted = np.exp(array - array.max(axis=0, keepdims=True))
    return 1.0 - shifted[0] / shifted.sum(axis=0)


def postprocess(prob_or_logits: np.ndarray, config: NucleiConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Boolean mask and int32 instance labels from lab 01's ``split_nuclei`` (threshold, clean-up, watershed)."""
    if config is not None and not isinstance(config, NucleiConfig):
        raise bad_input("postprocess", "config as a NucleiConfig or None", describe(config),
                        "Pass model.config, or leave it out for the defaults.")
    from workshop_utils.lessons.lab01 import split_nuclei

    cfg = config or NucleiConfig()
    labels = split_nuclei(_probability(prob_or_logits, "postprocess"), cfg.threshold, cfg.min_size_px,
                          cfg.min_distance_px)
    return labels > 0, labels


def segment_nuclei(model: NucleiModel, image: Any, predictor: Predictor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mask bool, labels int32), both image-shaped, for a 2-D image of any size and numeric dtype.

    Runs :func:`preprocess`, :func:`predict_logits` and then thresholding plus watershed, which splits touching
    nuclei (settings from ``model.config``).

    Args:
        model: the :class:`NucleiModel`, e.g. from :func:`load_nuclei_model`.
        image: one 2-D grey image (any size, uint8, uint16 or float), e.g. ``tifffile.imread(path)``.
        predictor: a callable mapping a float32 (N, 1, T, T) batch to logits, run instead of the network; None uses it.

    Returns:
        ``(mask, labels)``: the bool foreground mask and int32 instance labels (0 background, 1..n).

    Example:
        >>> mask, labels = wu.nuclei.segment_nuclei(model, image)
    """
    require_nuclei_model(model, "segment_nuclei")
    _require_predictor(predictor, "segment_nuclei")
    image01 = preprocess(image, model.config.normalisation)
    return postprocess(_logits(model, image01, predictor), model.config)


def count_nuclei(labels: np.ndarray) -> int:
    """Number of distinct nuclei in an instance label image.

    Args:
        labels: an instance label image (0 background, 1..n), e.g. the labels :func:`segment_nuclei` returns.

    Returns:
        How many distinct non-zero labels it holds.

    Example:
        >>> wu.nuclei.count_nuclei(labels)
    """
    labels = as_array(labels, "count_nuclei", "labels", kind=_mask_kind(labels),
                      fix="Pass an instance label image (0 background, 1..n), e.g. the labels segment_nuclei returns.")
    return int(len(np.unique(labels[labels > 0])))


def dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Foreground Dice of two masks or label images (non-zero = nucleus); 1.0 when both are empty.

    Args:
        predicted: the predicted mask or label image.
        truth: the ground-truth mask or label image, of the same shape.

    Returns:
        ``2 |A and B| / (|A| + |B|)`` in [0, 1]; 1 means the foregrounds match exactly.

    Example:
        >>> wu.nuclei.dice(mask, truth)
    """
    a = as_array(predicted, "dice", "predicted", kind=_mask_kind(predicted)) > 0
    b = as_array(truth, "dice", "truth", kind=_mask_kind(truth)) > 0
    if a.shape != b.shape:
        raise bad_input("dice", "predicted and truth of the same shape", f"shapes {a.shape} and {b.shape}",
                        "Compare the mask of the image the truth belongs to (crop or resize one to match).")
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)
