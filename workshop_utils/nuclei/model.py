"""The nuclei network and everything that rebuilds it: config, weights, save and load, per-profile presets.

The artifact ``build/artifacts/nuclei_unet.pt`` holds plain dicts and tensors only (``torch.load(weights_only=True)``):
the config that rebuilds MONAI's ``UNet`` exactly, tile size, channels, the intensity normalisation and the
post-processing parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workshop_utils.core import paths
from workshop_utils.core.errors import MissingFileError
from workshop_utils.core.files import atomic_write

# noqa: F401 - lab 01 calls nuclei.fair_cpu_threads()
from workshop_utils.core.inputs import (
    bad_input,
    describe,
    require_choice,
    require_device,
    require_int,
    require_number,
    require_path,
)
from workshop_utils.core.profiles import require_profile

ARTIFACT_NAME = "nuclei_unet.pt"
FORMAT = "workshop-nuclei-unet/1"
NORMALISATION: dict[str, Any] = {"kind": "percentile", "lower": 1.0, "upper": 99.8}


def _ints(value: Any, where: str, name: str, *, minimum: int, min_length: int) -> tuple[int, ...]:
    """A tuple (or list) of at least ``min_length`` whole numbers, each at least ``minimum``."""
    if not isinstance(value, (tuple, list)) or len(value) < min_length:
        raise bad_input(where, f"{name} as a tuple of at least {min_length} ints", describe(value),
                        f"Pass e.g. {name}=(16, 32, 64, 128) for channels or (2, 2, 2) for strides.")
    return tuple(require_int(v, where, f"{name}[{i}]", minimum=minimum) for i, v in enumerate(value))


def check_normalisation(norm: Any, where: str) -> dict[str, Any]:
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




def require_nuclei_model(model: Any, where: str) -> None:
    """A :class:`NucleiModel` (anything with ``network`` and ``config``), else how to get one."""
    if not (hasattr(model, "network") and hasattr(model, "config")):
        raise bad_input(where, "model as a NucleiModel (network + config)", describe(model),
                        "Load one: model = nuclei.load_nuclei_model(nuclei.ensure_nuclei_model(PROFILE)).")






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
        check_normalisation(self.normalisation, where)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form for the artifact."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> NucleiConfig:
        """Rebuild from ``to_dict()`` output (lists become tuples)."""
        if not isinstance(raw, Mapping):
            raise bad_input("NucleiConfig.from_dict", "raw as a dict from NucleiConfig.to_dict()", describe(raw),
                            "Pass a saved model's 'config' entry or acceleration.read_nuclei_config(onnx_path).")
        known: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in raw.items()
                                 if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class NucleiModel:
    """A network plus its config; ``model(batch)`` maps a (N, 1, T, T) tensor to logits.

    ``model.device`` is where the network's weights are.

    Args:
        network: the torch network, e.g. from :func:`build_network`, already on its device.
        config: the :class:`NucleiConfig` it was built from (tile size, normalisation, threshold...).
        meta: plain values saved with it (profile, scores...); empty by default.

    Example:
        >>> model = wu.nuclei.NucleiModel(wu.nuclei.build_network(config).to(device), config)
    """

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
    """Lab 01's ``build_unet`` (``workshop_utils.lessons.lab01``), exactly as ``config`` describes.

    Args:
        config: a :class:`NucleiConfig` (channels, strides, residual units, in and out channels, norm).

    Returns:
        A freshly initialised ``monai.networks.nets.UNet`` on the CPU.

    Example:
        >>> network = wu.nuclei.build_network(config).to(device)
    """
    if not isinstance(config, NucleiConfig):  # NucleiConfig checks its own fields (tile_px vs strides, ...)
        raise bad_input("build_network", "config as a NucleiConfig", describe(config),
                        "Pass e.g. nuclei.NucleiConfig() or the config from nuclei.nuclei_preset(PROFILE).")
    from workshop_utils.lessons.lab01 import build_unet

    return build_unet(config.channels, config.strides, config.num_res_units, config.norm,
                      in_channels=config.in_channels, out_channels=config.out_channels)


def save_nuclei_model(model: NucleiModel, path: Path | None = None, **meta: Any) -> Path:
    """Write weights + config + ``meta`` (plain values) as plain dicts and tensors; returns the path.

    Args:
        model: the :class:`NucleiModel` to save (its weights are copied to the CPU).
        path: the target file; None means ``build/artifacts/nuclei_unet.pt``.
        **meta: plain Python values (str, int, float, bool, None, lists and dicts of them) added to ``model.meta``.

    Returns:
        The path written.

    Example:
        >>> artifact = wu.nuclei.save_nuclei_model(model, profile=PROFILE, dice_real=dice_real)
    """
    require_nuclei_model(model, "save_nuclei_model")
    target = require_path(path, "save_nuclei_model", "path", "Pass e.g. path=wu.artifacts_dir() / 'nuclei_unet.pt', or leave it out for that default.", default=paths.artifacts_dir() / ARTIFACT_NAME)
    meta = {**model.meta, **meta}
    for key, value in meta.items():
        if not _plain(value):  # numpy scalars would save, then fail torch.load(weights_only=True)
            raise bad_input("save_nuclei_model", "meta values as plain Python (str, int, float, bool, None, lists "
                            "and dicts of them)", f"{key}={describe(value)}", f"Convert it, e.g. {key}=float(value).")
    target.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.network.state_dict().items()}
    record = {"format": FORMAT, "config": model.config.to_dict(), "state_dict": state, "meta": meta}
    with atomic_write(target) as temporary:
        torch.save(record, temporary)
    return target


def load_nuclei_model(path: Path | str | None = None, device: str | torch.device = "cpu") -> NucleiModel:
    """Rebuild the saved network in eval mode on ``device`` (weights_only load: no pickled code runs).

    Args:
        path: a file written by :func:`save_nuclei_model`; None means ``build/artifacts/nuclei_unet.pt``.
        device: where to put the network, e.g. ``"cpu"`` or ``"cuda"``.

    Returns:
        A :class:`NucleiModel` with the saved config and ``meta``.

    Example:
        >>> model = wu.nuclei.load_nuclei_model(wu.nuclei.ensure_nuclei_model(PROFILE))
    """
    device = require_device(device, "load_nuclei_model")
    source = require_path(path, "load_nuclei_model", "path", "Pass e.g. path=wu.artifacts_dir() / 'nuclei_unet.pt', or leave it out for that default.", default=paths.artifacts_dir() / ARTIFACT_NAME)
    if not source.is_file():
        raise MissingFileError(
            f"load_nuclei_model: expected a saved nuclei model at {source}; got "
            f"{'a folder' if source.is_dir() else 'no file'} there. It is written by "
            "notebooks/01_monai_nuclei_segmentation.ipynb. "
            "Run that lab, or call wu.nuclei.ensure_nuclei_model() to train a small one (under a minute)."
        )
    try:
        record = torch.load(source, map_location="cpu", weights_only=True)
        config = NucleiConfig.from_dict(record["config"])
        network = build_network(config)
        network.load_state_dict(record["state_dict"])
    except Exception as exc:
        raise MissingFileError(
            f"load_nuclei_model: expected a nuclei model written by save_nuclei_model in {source}; got a file it "
            f"cannot read ({type(exc).__name__}: {exc}). The file is probably from an "
            f"older version or cut off. Delete it and rerun lab 01 (or wu.nuclei.ensure_nuclei_model())."
        ) from exc
    if record.get("format") != FORMAT:
        raise MissingFileError(f"{source} has format={record.get('format')!r}, expected {FORMAT!r}. Rerun lab 01.")
    return NucleiModel(network.to(device).eval(), config, dict(record.get("meta", {})))


def _plain(value: Any) -> bool:
    """Whether ``value`` is plain Python that ``torch.load(weights_only=True)`` reads back."""
    if value is None or type(value) in (str, int, float, bool):
        return True
    if type(value) in (list, tuple):
        return all(_plain(item) for item in value)
    return type(value) is dict and all(_plain(k) and _plain(v) for k, v in value.items())


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
    """The model config and training settings lab 01 uses for ``profile`` (smoke, cpu or gpu).

    Args:
        profile: ``"smoke"``, ``"cpu"`` or ``"gpu"``; larger profiles get a wider UNet, more images and epochs.

    Returns:
        ``(config, settings)``: a :class:`NucleiConfig`, and ``{"n_images", "size_px", "patch_px", "batch_size",
        "epochs", "lr", "seed"}`` for training (sizes in px).

    Example:
        >>> config, settings = wu.nuclei.nuclei_preset(PROFILE)
    """
    from workshop_utils.core.profiles import per_profile

    settings = dict(per_profile(require_profile(profile, "nuclei_preset"), **PRESETS))
    return NucleiConfig(channels=tuple(settings.pop("channels"))), settings
