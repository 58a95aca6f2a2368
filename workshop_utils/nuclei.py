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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import paths
from .hardware import fair_cpu_threads  # noqa: F401 - lab 01 calls nuclei.fair_cpu_threads()
from .errors import WorkshopError
from .inputs import InputError

ARTIFACT_NAME = "nuclei_unet.pt"
FORMAT = "workshop-nuclei-unet/1"
NORMALISATION: dict[str, Any] = {"kind": "percentile", "lower": 1.0, "upper": 99.8}
Predictor = Callable[[np.ndarray], Any]  # float32 (N, 1, T, T) -> logits (N, C, T, T), numpy or torch


class NucleiInputError(InputError):
    """An image that ``segment_nuclei`` cannot segment (wrong shape, empty, non-numeric)."""


class NucleiModelError(WorkshopError, RuntimeError):
    """A saved nuclei model is missing or unreadable."""


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

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form for the artifact."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "NucleiConfig":
        """Rebuild from ``to_dict()`` output (lists become tuples)."""
        known = {k: (tuple(v) if isinstance(v, list) else v) for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class NucleiModel:
    """A network plus its config; ``model(batch)`` maps a (N, 1, T, T) tensor to logits."""

    network: torch.nn.Module
    config: NucleiConfig
    meta: dict[str, Any] = field(default_factory=dict)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return self.network(batch)

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device


def build_network(config: NucleiConfig) -> torch.nn.Module:
    """MONAI 2-D UNet with batch norm, exactly as ``config`` describes."""
    from monai.networks.nets import UNet

    if config.tile_px % (int(np.prod(config.strides))) != 0:
        raise ValueError(f"tile_px={config.tile_px} must be divisible by prod(strides)={int(np.prod(config.strides))}.")
    return UNet(spatial_dims=2, in_channels=config.in_channels, out_channels=config.out_channels,
                channels=config.channels, strides=config.strides, num_res_units=config.num_res_units, norm=config.norm)


def check_image(image: Any) -> np.ndarray:
    """The image as a numpy array if it is a non-empty, finite, numeric 2-D image; else a clear error."""
    array = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise NucleiInputError(
            f"segment_nuclei needs a numeric image (uint8, uint16 or float); got dtype={array.dtype}. "
            "Load the file with tifffile.imread (or convert with image.astype(np.float32))."
        )
    if array.ndim != 2:
        hint = " It looks like it has a channel axis: pass image[..., 0] or np.squeeze(image)." if 1 in array.shape or (
            array.ndim == 3 and min(array.shape) <= 4) else ""
        raise NucleiInputError(f"segment_nuclei needs one 2-D grey image (height, width); got shape={array.shape}.{hint}")
    if array.size == 0:
        raise NucleiInputError(f"segment_nuclei got an empty image (shape={array.shape}). Check the file was read.")
    if not np.isfinite(array).all():
        raise NucleiInputError("segment_nuclei got NaN or infinite pixels. Replace them (np.nan_to_num) first.")
    return array


def preprocess(image: Any, normalisation: dict[str, Any] | None = None) -> np.ndarray:
    """float32 (H, W) in [0, 1]: the percentiles ``lower``/``upper`` of the image map to 0/1, clipped."""
    array = check_image(image).astype(np.float32)
    norm = normalisation or NORMALISATION
    if norm.get("kind") != "percentile":
        raise ValueError(f"Unknown normalisation kind={norm.get('kind')!r}; this module knows 'percentile'.")
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
        out = out if isinstance(out, torch.Tensor) else torch.from_numpy(np.asarray(out, dtype=np.float32))
        return out[:n].float().to(batch.device)

    return forward


def predict_logits(model: NucleiModel, image01: np.ndarray, predictor: Predictor | None = None) -> np.ndarray:
    """Sliding-window logits (C, H, W) for a preprocessed float32 image; ``predictor`` replaces the network."""
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
    array = np.asarray(prob_or_logits, dtype=np.float32)
    if array.ndim == 2:
        return array
    if array.ndim != 3:
        raise ValueError(f"postprocess needs (H, W) probabilities or (C, H, W) logits; got shape={array.shape}.")
    if array.shape[0] == 1:
        return 1.0 / (1.0 + np.exp(-array[0]))
    shifted = np.exp(array - array.max(axis=0, keepdims=True))
    return 1.0 - shifted[0] / shifted.sum(axis=0)


def postprocess(prob_or_logits: np.ndarray, config: NucleiConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Boolean mask and int32 instance labels; touching nuclei are split by watershed on the distance map."""
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    cfg = config or NucleiConfig()
    mask = foreground_probability(prob_or_logits) > cfg.threshold
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
    image01 = preprocess(image, model.config.normalisation)
    return postprocess(predict_logits(model, image01, predictor), model.config)


def count_nuclei(labels: np.ndarray) -> int:
    """Number of distinct nuclei in an instance label image."""
    return int(len(np.unique(labels[labels > 0])))


def dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Foreground Dice of two masks or label images (non-zero = nucleus); 1.0 when both are empty."""
    a, b = np.asarray(predicted) > 0, np.asarray(truth) > 0
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def save_nuclei_model(model: NucleiModel, path: Path | None = None, **meta: Any) -> Path:
    """Write weights + config + ``meta`` (plain values) as plain dicts and tensors; returns the path."""
    target = Path(path) if path else paths.artifacts_dir() / ARTIFACT_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.network.state_dict().items()}
    record = {"format": FORMAT, "config": model.config.to_dict(), "state_dict": state, "meta": {**model.meta, **meta}}
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # concurrent savers never share a temp file
    torch.save(record, temporary)
    temporary.replace(target)
    return target


def load_nuclei_model(path: Path | str | None = None, device: str | torch.device = "cpu") -> NucleiModel:
    """Rebuild the saved network in eval mode on ``device`` (weights_only load: no pickled code runs)."""
    source = Path(path) if path else paths.artifacts_dir() / ARTIFACT_NAME
    if not source.is_file():
        raise NucleiModelError(
            f"No nuclei model at {source}. It is written by notebooks/01_monai_nuclei_segmentation.ipynb. "
            "Run that lab, or call wu.ensure_nuclei_model() to train a small one (under a minute)."
        )
    try:
        record = torch.load(source, map_location="cpu", weights_only=True)
        config = NucleiConfig.from_dict(record["config"])
        network = build_network(config)
        network.load_state_dict(record["state_dict"])
    except Exception as exc:
        raise NucleiModelError(
            f"Could not load the nuclei model {source} ({type(exc).__name__}: {exc}). The file is probably from an "
            f"older version or cut off. Delete it and rerun lab 01 (or wu.ensure_nuclei_model())."
        ) from exc
    if record.get("format") != FORMAT:
        raise NucleiModelError(f"{source} has format={record.get('format')!r}, expected {FORMAT!r}. Rerun lab 01.")
    return NucleiModel(network.to(device).eval(), config, dict(record.get("meta", {})))


# --- data and training (lab 01's notebook and ensure_nuclei_model share these) ---

def write_synthetic_files(folder: Path, n_images: int, size_px: int = 256, seed: int = 0) -> list[dict[str, str]]:
    """Write synthetic (image, label) pairs as uint16/int32 TIFFs; returns MONAI-style [{"image": p, "label": p}]."""
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
    device = model.device
    cuda = device.type == "cuda"
    model.network.train()
    total, batches = 0.0, 0
    for batch in loader:
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
    return total / max(batches, 1)


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

    settings = dict(per_profile(profile, **PRESETS))
    return NucleiConfig(channels=tuple(settings.pop("channels"))), settings


def train_nuclei_model(config: NucleiConfig | None = None, *, device: str = "cpu", log: Callable[[str], None] = print,
                       **settings: Any) -> tuple[NucleiModel, list[float]]:
    """Train on synthetic data (smoke preset unless ``config``/``settings`` say otherwise); returns model, epoch losses."""
    from monai.data import CacheDataset, DataLoader
    from monai.losses import DiceCELoss
    from monai.transforms import Compose
    from monai.utils import set_determinism

    smoke_config, smoke_settings = nuclei_preset("smoke")
    cfg, s = config or smoke_config, {**smoke_settings, **settings}
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

    target = Path(path) if path else paths.artifacts_dir() / ARTIFACT_NAME
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
