"""The nuclei segmentation model labs 01, 02, 03 and 06 share: build, train, save, load, segment, count, score.

Pipeline, split so another runtime (ONNX Runtime, TensorRT, Triton) can replace only the forward pass:

1. ``preprocess(image, normalisation)``: any 2-D numeric image -> float32 (H, W) in [0, 1] (percentile scaling).
2. Forward pass on fixed-size tiles: float32 (N, 1, T, T) -> logits (N, C, T, T), T = ``config.tile_px`` (256),
   N <= ``config.sw_batch_size`` (4; a predictor marked ``fixed_batch = True`` gets batches zero-padded to exactly
   4, for engines with one static shape). Whole images of
   any size go through MONAI ``sliding_window_inference``; ``segment_nuclei(model, image, predictor=fn)`` plugs in
   any callable mapping a numpy float32 batch to numpy/torch logits. Fixed T and N keep engine shapes static.
3. ``postprocess(prob_or_logits)``: foreground probability -> boolean mask, then distance transform + watershed
   (scikit-image) to split touching nuclei -> int32 instance labels (0 background, 1..n).

The network is MONAI's ``UNet`` with batch norm (ONNX Runtime folds it into the convolutions). The artifact
``build/artifacts/nuclei_unet.pt`` holds plain dicts and tensors only (``torch.load(weights_only=True)``): the
config that rebuilds the network exactly, tile size, channels, the intensity normalisation and post-processing
parameters. ``ensure_nuclei_model()`` returns it, training a smoke-sized model through the same code when absent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import paths
from .hardware import fair_cpu_threads  # noqa: F401 - lab 01 calls nuclei.fair_cpu_threads()
from .errors import WorkshopError
from .inputs import (InputError, as_array, bad_input, describe, require_choice, require_device, require_int,
                     require_number)
from .profiles import require_profile

ARTIFACT_NAME = "nuclei_unet.pt"
FORMAT = "workshop-nuclei-unet/1"
NORMALISATION: dict[str, Any] = {"kind": "percentile", "lower": 1.0, "upper": 99.8}
Predictor = Callable[[np.ndarray], Any]  # float32 (N, 1, T, T) -> logits (N, C, T, T), numpy or torch


class NucleiInputError(InputError):
    """An image that ``segment_nuclei`` cannot segment (wrong shape, empty, non-numeric)."""


class NucleiModelError(WorkshopError, RuntimeError):
    """A saved nuclei model is missing or unreadable."""


def _ints(value: Any, where: str, name: str, *, minimum: int, min_length: int) -> tuple[int, ...]:
    """A tuple (or list) of at least ``min_length`` whole numbers, each at least ``minimum``."""
    if not isinstance(value, (tuple, list)) or len(value) < min_length:
        raise bad_input(where, f"{name} as a tuple of at least {min_length} ints", describe(value),
                        f"Pass e.g. {name}=(16, 32, 64, 128) for channels or (2, 2, 2) for strides.")
    return tuple(require_int(v, where, f"{name}[{i}]", minimum=minimum) for i, v in enumerate(value))


def _normalisation(norm: Any, where: str) -> dict[str, Any]:
    """A percentile normalisation like :data:`NORMALISATION` (None or {} mean that default)."""
    if norm is None or (isinstance(norm, Mapping) and not norm):
        return dict(NORMALISATION)
    if not isinstance(norm, Mapping):
        raise bad_input(where, "normalisation as a dict like nuclei.NORMALISATION", describe(norm),
                        "Pass model.config.normalisation, or leave it out for the default.")
    require_choice(norm.get("kind"), where, "normalisation['kind']", ["percentile"],
                   "Percentile scaling is the only kind this module knows: pass nuclei.NORMALISATION.")
    lower = require_number(norm.get("lower"), where, "normalisation['lower']", minimum=0.0, maximum=100.0)
    upper = require_number(norm.get("upper"), where, "normalisation['upper']", minimum=0.0, maximum=100.0)
    if lower >= upper:
        raise bad_input(where, "normalisation['lower'] below normalisation['upper']", f"lower={lower}, upper={upper}",
                        "Swap them, e.g. lower=1.0, upper=99.8.")
    return dict(norm)



def _path(value: Any, where: str, name: str, default: Path | None = None) -> Path:
    """``value`` as a Path; None (or "") means ``default`` when there is one."""
    if default is not None and (value is None or (isinstance(value, str) and not value)):
        return default
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        example = f"wu.artifacts_dir() / {ARTIFACT_NAME!r}" if default is not None else "wu.build_dir() / 'data'"
        raise bad_input(where, f"{name} as a path (str or pathlib.Path)" + (" or None" if default else ""),
                        describe(value), f"Pass e.g. {name}={example}.")
    return Path(value)



def _require_model(model: Any, where: str) -> None:
    """A :class:`NucleiModel` (anything with ``network`` and ``config``), else how to get one."""
    if not (hasattr(model, "network") and hasattr(model, "config")):
        raise bad_input(where, "model as a NucleiModel (network + config)", describe(model),
                        "Load one: model = nuclei.load_nuclei_model(nuclei.ensure_nuclei_model(PROFILE)).")


def _require_predictor(predictor: Any, where: str) -> None:
    if predictor is not None and not callable(predictor):
        raise bad_input(where, "predictor as a callable (float32 (N, 1, T, T) batch -> logits) or None",
                        describe(predictor), "Pass e.g. acceleration.OrtPredictor(session), or leave it out.")


def _mask_kind(value: Any) -> str:
    """``as_array``'s kind for masks, label images and probabilities: bool as well as numbers."""
    return "mask" if str(getattr(value, "dtype", "")).endswith("bool") else "numeric"


@dataclass(frozen=True)
class NucleiConfig:
    """Everything needed to rebuild the network and reproduce its pre- and post-processing."""

    tile_px: int = 256
    in_channels: int = 1
    out_channels: int = 2
    channels: tuple[int, ...] = (16, 32, 64, 128)
    strides: tuple[int, ...] = (2, 2, 2)
    num_res_units: int = 2
    norm: str = "batch"
    normalisation: dict[str, Any] = field(default_factory=lambda: dict(NORMALISATION))
    sw_batch_size: int = 4
    overlap: float = 0.25
    threshold: float = 0.5
    min_size_px: int = 20
    min_distance_px: int = 5

    def __post_init__(self) -> None:
        where = "NucleiConfig"
        for name in ("tile_px", "in_channels", "out_channels", "sw_batch_size", "min_distance_px"):
            require_int(getattr(self, name), where, name, minimum=1)
        require_int(self.min_size_px, where, "min_size_px", minimum=0)
        channels = _ints(self.channels, where, "channels", minimum=1, min_length=2)
        strides = _ints(self.strides, where, "strides", minimum=1, min_length=len(channels) - 1)
        factor = int(np.prod(strides[: len(channels) - 1]))
        if self.tile_px % factor:
            nearest = factor * max(1, round(self.tile_px / factor))
            raise bad_input(where, f"tile_px divisible by prod(strides)={factor}", f"tile_px={self.tile_px}",
                            f"Use a multiple of {factor}, e.g. tile_px={nearest}.")
        if not 0.0 <= require_number(self.overlap, where, "overlap") < 1.0:
            raise bad_input(where, "overlap in [0, 1)", str(self.overlap), "Pass e.g. overlap=0.25.")
        require_number(self.threshold, where, "threshold", minimum=0.0, maximum=1.0)
        _normalisation(self.normalisation, where)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form for the artifact."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "NucleiConfig":
        """Rebuild from ``to_dict()`` output (lists become tuples)."""
        if not isinstance(raw, Mapping):
            raise bad_input("NucleiConfig.from_dict", "raw as a dict from NucleiConfig.to_dict()", describe(raw),
                            "Pass a saved model's 'config' entry or acceleration.read_nuclei_config(onnx_path).")
        known = {k: (tuple(v) if isinstance(v, list) else v) for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class NucleiModel:
    """A network plus its config; ``model(batch)`` maps a (N, 1, T, T) tensor to logits."""

    network: torch.nn.Module
    config: NucleiConfig
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.network, torch.nn.Module) or not isinstance(self.config, NucleiConfig):
            raise bad_input("NucleiModel", "a torch network and a NucleiConfig",
                            f"{describe(self.network)} and {describe(self.config)}",
                            "Build it as NucleiModel(nuclei.build_network(config), config).")

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        channels = self.config.in_channels
        if not isinstance(batch, torch.Tensor) or batch.ndim != 4 or batch.shape[1] != channels:
            raise bad_input("NucleiModel", f"batch as a torch tensor (N, {channels}, H, W)", describe(batch),
                            "Convert and add the channel axis: torch.from_numpy(tiles)[:, None] for (N, H, W) tiles.")
        return self.network(batch)

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device


def build_network(config: NucleiConfig) -> torch.nn.Module:
    """MONAI 2-D UNet with batch norm, exactly as ``config`` describes."""
    if not isinstance(config, NucleiConfig):  # NucleiConfig checks its own fields (tile_px vs strides, ...)
        raise bad_input("build_network", "config as a NucleiConfig", describe(config),
                        "Pass e.g. nuclei.NucleiConfig() or the config from nuclei.nuclei_preset(PROFILE).")
    from monai.networks.nets import UNet

    return UNet(spatial_dims=2, in_channels=config.in_channels, out_channels=config.out_channels,
                channels=config.channels, strides=config.strides, num_res_units=config.num_res_units, norm=config.norm)


def _image_error(expected: str, got: str, fix: str) -> NucleiInputError:
    return NucleiInputError(f"segment_nuclei: expected {expected}; got {got}. {fix}")


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
    """float32 (H, W) in [0, 1]: the percentiles ``lower``/``upper`` of the image map to 0/1, clipped."""
    array = check_image(image).astype(np.float32)
    norm = _normalisation(normalisation, "preprocess")
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
    """Sliding-window logits (C, H, W) for a preprocessed float32 image; ``predictor`` replaces the network."""
    _require_model(model, "predict_logits")
    image01 = as_array(image01, "predict_logits", "image01", ndim=2, kind="float",
                       fix="Preprocess the image first: nuclei.preprocess(image, model.config.normalisation).")
    _require_predictor(predictor, "predict_logits")
    return _logits(model, image01, predictor)


def _logits(model: NucleiModel, image01: np.ndarray, predictor: Predictor | None) -> np.ndarray:
    from monai.inferers import sliding_window_inference

    cfg = model.config
    device = torch.device("cpu") if predictor is not None else model.device
    forward = _external(predictor, cfg.sw_batch_size) if predictor is not None else model.network
    if predictor is None:
        model.network.eval()
    x = torch.from_numpy(np.ascontiguousarray(image01, dtype=np.float32))[None, None].to(device)
    with torch.no_grad():
        logits = sliding_window_inference(x, roi_size=(cfg.tile_px, cfg.tile_px), sw_batch_size=cfg.sw_batch_size,
                                          predictor=forward, overlap=cfg.overlap, mode="gaussian")
    return logits[0].float().cpu().numpy()


def foreground_probability(prob_or_logits: np.ndarray) -> np.ndarray:
    """(H, W) probabilities pass through; (C, H, W) logits become P(nucleus) (softmax, or sigmoid when C=1)."""
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
    """Boolean mask and int32 instance labels; touching nuclei are split by watershed on the distance map."""
    if config is not None and not isinstance(config, NucleiConfig):
        raise bad_input("postprocess", "config as a NucleiConfig or None", describe(config),
                        "Pass model.config, or leave it out for the defaults.")
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    cfg = config or NucleiConfig()
    mask = _probability(prob_or_logits, "postprocess") > cfg.threshold
    pieces, _ = ndi.label(mask)
    mask = ndi.binary_fill_holes((np.bincount(pieces.ravel()) >= cfg.min_size_px)[pieces] & mask)
    if not mask.any():
        return mask, np.zeros(mask.shape, np.int32)
    distance = ndi.gaussian_filter(ndi.distance_transform_edt(mask), 1.0)
    components, _ = ndi.label(mask)
    peaks = peak_local_max(distance, min_distance=cfg.min_distance_px, labels=components, exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-distance, markers, mask=mask)
    orphans, n_orphans = ndi.label(mask & (labels == 0))  # components without a peak keep one label each
    labels = np.where(orphans > 0, orphans + labels.max(), labels)
    _, labels = np.unique(labels, return_inverse=True)
    labels = labels.reshape(mask.shape).astype(np.int32)
    return labels > 0, labels


def segment_nuclei(model: NucleiModel, image: Any, predictor: Predictor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mask bool, labels int32), both image-shaped, for a 2-D image of any size and numeric dtype."""
    _require_model(model, "segment_nuclei")
    _require_predictor(predictor, "segment_nuclei")
    image01 = preprocess(image, model.config.normalisation)
    return postprocess(_logits(model, image01, predictor), model.config)


def count_nuclei(labels: np.ndarray) -> int:
    """Number of distinct nuclei in an instance label image."""
    labels = as_array(labels, "count_nuclei", "labels", kind=_mask_kind(labels),
                      fix="Pass an instance label image (0 background, 1..n), e.g. the labels segment_nuclei returns.")
    return int(len(np.unique(labels[labels > 0])))


def dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Foreground Dice of two masks or label images (non-zero = nucleus); 1.0 when both are empty."""
    a = as_array(predicted, "dice", "predicted", kind=_mask_kind(predicted)) > 0
    b = as_array(truth, "dice", "truth", kind=_mask_kind(truth)) > 0
    if a.shape != b.shape:
        raise bad_input("dice", "predicted and truth of the same shape", f"shapes {a.shape} and {b.shape}",
                        "Compare the mask of the image the truth belongs to (crop or resize one to match).")
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def save_nuclei_model(model: NucleiModel, path: Path | None = None, **meta: Any) -> Path:
    """Write weights + config + ``meta`` (plain values) as plain dicts and tensors; returns the path."""
    _require_model(model, "save_nuclei_model")
    target = _path(path, "save_nuclei_model", "path", paths.artifacts_dir() / ARTIFACT_NAME)
    meta = {**model.meta, **meta}
    for key, value in meta.items():
        if not _plain(value):  # numpy scalars would save, then fail torch.load(weights_only=True)
            raise bad_input("save_nuclei_model", "meta values as plain Python (str, int, float, bool, None, lists "
                            "and dicts of them)", f"{key}={describe(value)}", f"Convert it, e.g. {key}=float(value).")
    target.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.network.state_dict().items()}
    record = {"format": FORMAT, "config": model.config.to_dict(), "state_dict": state, "meta": meta}
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # concurrent savers never share a temp file
    torch.save(record, temporary)
    temporary.replace(target)
    return target


def load_nuclei_model(path: Path | str | None = None, device: str | torch.device = "cpu") -> NucleiModel:
    """Rebuild the saved network in eval mode on ``device`` (weights_only load: no pickled code runs)."""
    device = require_device(device, "load_nuclei_model")
    source = _path(path, "load_nuclei_model", "path", paths.artifacts_dir() / ARTIFACT_NAME)
    if not source.is_file():
        raise NucleiModelError(
            f"load_nuclei_model: expected a saved nuclei model at {source}; got "
            f"{'a folder' if source.is_dir() else 'no file'} there. It is written by "
            "notebooks/01_monai_nuclei_segmentation.ipynb. "
            "Run that lab, or call wu.ensure_nuclei_model() to train a small one (under a minute)."
        )
    try:
        record = torch.load(source, map_location="cpu", weights_only=True)
        config = NucleiConfig.from_dict(record["config"])
        network = build_network(config)
        network.load_state_dict(record["state_dict"])
    except Exception as exc:
        raise NucleiModelError(
            f"load_nuclei_model: expected a nuclei model written by save_nuclei_model in {source}; got a file it "
            f"cannot read ({type(exc).__name__}: {exc}). The file is probably from an "
            f"older version or cut off. Delete it and rerun lab 01 (or wu.ensure_nuclei_model())."
        ) from exc
    if record.get("format") != FORMAT:
        raise NucleiModelError(f"{source} has format={record.get('format')!r}, expected {FORMAT!r}. Rerun lab 01.")
    return NucleiModel(network.to(device).eval(), config, dict(record.get("meta", {})))


def _plain(value: Any) -> bool:
    """Whether ``value`` is plain Python that ``torch.load(weights_only=True)`` reads back."""
    if value is None or type(value) in (str, int, float, bool):
        return True
    if type(value) in (list, tuple):
        return all(_plain(item) for item in value)
    return type(value) is dict and all(_plain(k) and _plain(v) for k, v in value.items())


# --- data and training (lab 01's notebook and ensure_nuclei_model share these) ---

def write_synthetic_files(folder: Path, n_images: int, size_px: int = 256, seed: int = 0) -> list[dict[str, str]]:
    """Write synthetic (image, label) pairs as uint16/int32 TIFFs; returns MONAI-style [{"image": p, "label": p}]."""
    where = "write_synthetic_files"
    folder = _path(folder, where, "folder")
    require_int(n_images, where, "n_images", minimum=1)
    require_int(size_px, where, "size_px", minimum=32)
    require_int(seed, where, "seed", minimum=0)
    import tifffile

    from .cells import synthetic_nuclei

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n_images):
        image_path, label_path = folder / f"s{seed}_{size_px}_{i:04d}_img.tif", folder / f"s{seed}_{size_px}_{i:04d}_lbl.tif"
        if not (image_path.is_file() and label_path.is_file()):  # write then rename: readers never see half a file
            image, labels = synthetic_nuclei(size_px, np.random.default_rng([seed, i]))
            for target, array in ((image_path, image), (label_path, labels.astype(np.uint16))):
                partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                tifffile.imwrite(partial, array)
                partial.replace(target)
        files.append({"image": str(image_path), "label": str(label_path)})
    return files


def prepare_transforms(config: NucleiConfig) -> list[Any]:
    """Deterministic steps (cacheable): load TIFFs, add a channel axis, scale intensities, binarise labels."""
    if not isinstance(config, NucleiConfig):
        raise bad_input("prepare_transforms", "config as a NucleiConfig", describe(config),
                        "Pass the config from nuclei.nuclei_preset(PROFILE) or model.config.")
    from monai.data import PILReader
    from monai.transforms import AsDiscreted, EnsureChannelFirstd, EnsureTyped, LoadImaged, ScaleIntensityRangePercentilesd

    norm = config.normalisation
    return [
        LoadImaged(keys=["image", "label"], reader=PILReader(reverse_indexing=False), image_only=True),
        EnsureChannelFirstd(keys=["image", "label"], channel_dim="no_channel"),
        ScaleIntensityRangePercentilesd(keys="image", lower=norm["lower"], upper=norm["upper"], b_min=0.0, b_max=1.0, clip=True),
        AsDiscreted(keys="label", threshold=0.5),
        EnsureTyped(keys=["image", "label"], dtype=torch.float32, track_meta=False),
    ]


def augment_transforms(patch_px: int, samples_per_image: int = 2) -> list[Any]:
    """Random steps (redone every epoch): crops centred on nuclei or background, flips, rotations, contrast."""
    require_int(patch_px, "augment_transforms", "patch_px", minimum=1)
    require_int(samples_per_image, "augment_transforms", "samples_per_image", minimum=1)
    from monai.transforms import RandAdjustContrastd, RandCropByPosNegLabeld, RandFlipd, RandRotate90d, RandScaleIntensityd

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
    """One pass over ``loader``; returns the mean loss. AMP and channels-last apply on CUDA only."""
    where = "train_epoch"
    _require_model(model, where)
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


# Per-profile training presets: ``channels`` sets the UNet width, the rest the data and schedule.
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"channels": (8, 16, 32, 64), "n_images": 48, "size_px": 256, "patch_px": 128, "batch_size": 8,
              "epochs": 8, "lr": 3e-3, "seed": 0},
    "cpu": {"channels": (16, 32, 64, 128), "n_images": 96, "size_px": 256, "patch_px": 128, "batch_size": 8,
            "epochs": 15, "lr": 2e-3, "seed": 0},
    "gpu": {"channels": (32, 64, 128, 256), "n_images": 2000, "size_px": 256, "patch_px": 256, "batch_size": 32,
            "epochs": 40, "lr": 2e-3, "seed": 0},
}


def nuclei_preset(profile: str) -> tuple[NucleiConfig, dict[str, Any]]:
    """The model config and training settings lab 01 uses for ``profile`` (smoke, cpu or gpu)."""
    from .profiles import per_profile

    settings = dict(per_profile(require_profile(profile, "nuclei_preset"), **PRESETS))
    return NucleiConfig(channels=tuple(settings.pop("channels"))), settings


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
    """The saved model's path; if it is missing or unreadable, train a smoke-sized one (< 1 min on 2 cores) first."""
    from filelock import FileLock

    profile = require_profile(profile, "ensure_nuclei_model")
    target = _path(path, "ensure_nuclei_model", "path", paths.artifacts_dir() / ARTIFACT_NAME)
    with FileLock(str(target) + ".lock"):  # labs or a server asking at once train one model, not several
        try:
            load_nuclei_model(target)
            return target
        except NucleiModelError as exc:
            reason = "missing" if not target.is_file() else f"unreadable ({exc.__cause__ or exc})"
            print(f"Nuclei model {target} is {reason}; training a small one with lab 01's code (smoke preset)...")
        device = "cuda" if profile == "gpu" and torch.cuda.is_available() else "cpu"
        threads = torch.get_num_threads()
        torch.set_num_threads(fair_cpu_threads() if device == "cpu" else threads)
        try:
            model, _ = train_nuclei_model(device=device, log=lambda line: None)
        finally:
            torch.set_num_threads(threads)
        return save_nuclei_model(model, target, profile="smoke", source="ensure_nuclei_model")
