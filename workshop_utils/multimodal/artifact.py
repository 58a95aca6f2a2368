"""The lab-05 image-text model on disk: save it with its class prompts, load it, rebuild it when it is missing.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from workshop_utils import cell_images as phenotypes
from workshop_utils.core import paths
from workshop_utils.core.errors import InputError, MissingFileError
from workshop_utils.core.files import atomic_write, ensure_artifact
from workshop_utils.core.inputs import (
    bad_input,
    require_instance,
    require_path,
    with_article,
)
from workshop_utils.core.profiles import require_profile, torch_device
from workshop_utils.multimodal.clip import (
    ARTIFACT,
    CLIP_PROFILES,
    CellClip,
    ClipSettings,
    require_clip_model,
    train_clip,
)
from workshop_utils.multimodal.text import encode_texts


# ---------------------------------------------------------------- artifact
def save_cell_clip(model: CellClip, settings: ClipSettings, profile: str, metrics: dict[str, Any] | None = None,
                   path: Path | None = None) -> Path:
    """Write ``build/artifacts/cell_clip.pt`` (weights, settings, class prompts and their cached embeddings).

    Args:
        model: the trained :class:`CellClip`.
        settings: the :class:`ClipSettings` it was trained with.
        profile: ``"smoke"``, ``"cpu"`` or ``"gpu"``, stored with the model.
        metrics: figures to store with it, e.g. ``{"zeroshot_top1": 0.9}``; None stores none.
        path: the target file, in an existing folder; None means ``build/artifacts/cell_clip.pt``.

    Returns:
        The path written.

    Example:
        >>> artifact = wu.multimodal.save_cell_clip(model, clip_settings, PROFILE, metrics={"zeroshot_top1": top1})
    """
    where = "save_cell_clip"
    require_clip_model(model, where)
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
    with atomic_write(target) as temporary:  # two kernels saving at once never share a temporary file
        torch.save(payload, temporary)
    return target


def load_cell_clip(path: Path | None = None) -> tuple[CellClip, dict[str, Any]]:
    """The saved model (eval mode, CPU) and its metadata."""
    source = paths.artifacts_dir() / ARTIFACT if path is None else require_path(path, "load_cell_clip", "path", "Pass a Path, or leave path=None.")
    if not source.is_file():
        raise MissingFileError(
            f"load_cell_clip: expected a saved image-text model at {source}; got "
            f"{'a folder' if source.is_dir() else 'no file'}. Run lab 05 "
            f"(python -m workshop_utils run --labs 05) or call wu.multimodal.ensure_cell_clip().")
    try:
        payload = torch.load(source, map_location="cpu", weights_only=True)
        settings = ClipSettings(**payload["settings"])
        model = CellClip(settings.width)
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, EOFError, KeyError, TypeError, ValueError, pickle.UnpicklingError) as err:
        if isinstance(err, InputError):
            raise
        raise bad_input("load_cell_clip", "a file written by mm.save_cell_clip", f"{source} ({type(err).__name__})",
                        "Delete it and rebuild with wu.multimodal.ensure_cell_clip() (or rerun lab 05).") from None
    return model.eval().to(memory_format=torch.channels_last), payload  # type: ignore[call-overload]  # torch's Module.to stubs omit memory_format


def ensure_cell_clip(profile: str = "smoke") -> Path:
    """Path of the saved model; trains and saves one with ``profile``'s settings when it is missing (CPU: ~30 s).

    Args:
        profile: ``"smoke"``, ``"cpu"`` or ``"gpu"``: the settings and device used if it must be trained.

    Returns:
        The path of ``build/artifacts/cell_clip.pt``.

    Example:
        >>> wu.multimodal.ensure_cell_clip(PROFILE)
    """
    profile = require_profile(profile, "ensure_cell_clip")

    def build(target: Path) -> None:
        settings = CLIP_PROFILES[profile]
        cells = phenotypes.make_cells(settings.n_train, settings.seed, settings.image_size)
        model, _ = train_clip(cells, settings, torch_device(profile))
        save_cell_clip(model, settings, profile, path=target)

    return ensure_artifact(paths.artifacts_dir() / ARTIFACT, build, what="image-text model")
