"""Export the nuclei model to ONNX with lab 02's own code, and read back what an exported model holds.

The export itself is the lesson's (``workshop_utils.lessons.lab02.export_onnx``, copied from the notebook); this
module checks its arguments, writes the file atomically, and rebuilds the file for labs 03 and 06.

The ONNX contract labs 03 and 06 rely on (names in :mod:`workshop_utils.core.contract`): input ``image`` float32
(N, 1, T, T) with a dynamic batch axis N, output ``logits`` float32 (N, C, T, T); the nuclei config (tile size,
normalisation, post-processing) is stored as JSON in the model's metadata under ``workshop.nuclei_config``.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workshop_utils.core import paths
from workshop_utils.core.contract import INPUT_NAME, OUTPUT_NAME
from workshop_utils.core.errors import InputError
from workshop_utils.core.files import atomic_write, ensure_artifact
from workshop_utils.core.inputs import (
    bad_input,
    describe,
    require_file,
    require_int,
    require_path,
)
from workshop_utils.core.profiles import require_profile

if TYPE_CHECKING:  # torch loads on first export, so serving's worker can import this package cheaply
    import torch

ONNX_NAME = "nuclei_unet.onnx"
CONFIG_KEY = "workshop.nuclei_config"


EXPORT_FIX = ("Export it first: acceleration.ensure_nuclei_onnx(PROFILE) (lab 02) writes "
              "build/artifacts/nuclei_unet.onnx.")


def _load_onnx(path: Any, where: str, name: str, *, load_external_data: bool = True) -> Any:
    """The parsed ONNX model at ``path``, or an error when the file is missing or is not an ONNX model."""
    import onnx
    from google.protobuf.message import Error as ProtobufError

    source = require_file(path, where, name, EXPORT_FIX)
    try:
        return onnx.load(str(source), load_external_data=load_external_data)
    except ProtobufError as err:
        raise bad_input(where, f"{name} to be an ONNX model", f"{source}, which protobuf cannot parse ({err})",
                        EXPORT_FIX) from None


def export_onnx(network: torch.nn.Module, path: Path, tile_px: int, *, in_channels: int = 1,
                metadata: dict[str, Any] | None = None, max_batch: int = 64) -> Path:
    """Lab 02's export (``lessons.lab02.export_onnx``: dynamo exporter, dynamic batch axis), with checked arguments.

    The tensors get the contract's names (``image`` in, ``logits`` out); the file is written atomically, so a
    reader never sees a half-written model, and the exporter's notes are kept quiet.

    Args:
        network: the torch module to export, e.g. ``model.network`` of a :class:`NucleiModel`.
        path: where to write the ``.onnx`` file; missing parent folders are created.
        tile_px: the tile's height and width (px) the graph takes.
        in_channels: image channels per tile (1 for the nuclei model).
        metadata: optional ``{key: value}`` stored in the model's metadata (non-str values as JSON); None stores none.
        max_batch: the largest batch the dynamic batch axis accepts (at least 2).

    Returns:
        ``path``.

    Example:
        >>> wu.acceleration.export_onnx(model.network, onnx_path, cfg.tile_px, in_channels=cfg.in_channels,
        ...                             metadata={wu.acceleration.CONFIG_KEY: cfg.to_dict()})
    """
    where = "export_onnx"
    import torch

    from workshop_utils.lessons.lab02 import export_onnx as lesson_export_onnx  # loads torch: not at module level

    if not isinstance(network, torch.nn.Module):
        raise bad_input(where, "network as a torch.nn.Module", describe(network),
                        "Pass the network itself, e.g. model.network for a NucleiModel.")
    path = require_path(path, where, "path", "Pass e.g. path=wu.artifacts_dir() / 'nuclei_unet.onnx'.")
    require_int(tile_px, where, "tile_px", minimum=1)
    require_int(in_channels, where, "in_channels", minimum=1)
    require_int(max_batch, where, "max_batch", minimum=2)  # the lesson traces an example batch of 2 tiles
    if metadata is not None and not (isinstance(metadata, Mapping) and all(isinstance(k, str) for k in metadata)):
        raise bad_input(where, "metadata as a dict with str keys (or None)", describe(metadata),
                        "Pass e.g. metadata={acceleration.CONFIG_KEY: model.config.to_dict()}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notes are noise here
    with atomic_write(path) as partial, warnings.catch_warnings():  # readers never see a half-written model
        warnings.simplefilter("ignore")
        lesson_export_onnx(network, partial, int(tile_px), in_channels=int(in_channels), metadata=dict(metadata or {}),
                           max_batch=int(max_batch), input_name=INPUT_NAME, output_name=OUTPUT_NAME)
    return path


def describe_onnx(path: Path) -> dict[str, Any]:
    """Inputs, outputs (name, shape with symbolic axes, dtype), opset and the most common operators of a graph.

    Args:
        path: an ONNX model file.

    Returns:
        ``{"inputs": [...], "outputs": [...], "opset": int, "nodes": int, "top_ops": {op_type: count},
        "metadata": {key: value}, "size_mb": float}``; each input/output is ``{"name", "shape", "dtype"}``, with a
        symbolic axis such as the batch shown by its name, and ``top_ops`` holds the eight most common operators.

    Example:
        >>> wu.acceleration.describe_onnx(onnx_path)["top_ops"]
    """
    from collections import Counter

    import onnx

    model = _load_onnx(path, "describe_onnx", "path")
    path = Path(path)

    def tensors(values: Any) -> list[dict[str, Any]]:
        rows = []
        for value in values:
            dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
            rows.append({"name": value.name, "shape": dims,
                         "dtype": onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type).name})
        return rows

    ops = Counter(node.op_type for node in model.graph.node)
    return {"inputs": tensors(model.graph.input), "outputs": tensors(model.graph.output),
            "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
            "nodes": len(model.graph.node), "top_ops": dict(ops.most_common(8)),
            "metadata": {p.key: p.value for p in model.metadata_props}, "size_mb": path.stat().st_size / 1e6}


def read_nuclei_config(onnx_path: Path) -> dict[str, Any]:
    """The nuclei config stored in an exported model's metadata.

    Only the graph is read (external weights are not loaded); a model exported without the config is an error.

    Args:
        onnx_path: an ONNX model exported with ``metadata={CONFIG_KEY: config.to_dict()}``, e.g. by lab 02.

    Returns:
        The config as :meth:`NucleiConfig.to_dict` wrote it: ``tile_px``, ``channels``, ``normalisation``...

    Example:
        >>> wu.acceleration.read_nuclei_config(onnx_path)["tile_px"]
    """
    where = "read_nuclei_config"
    model = _load_onnx(onnx_path, where, "onnx_path", load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == CONFIG_KEY:
            return json.loads(prop.value)
    keys = ", ".join(p.key for p in model.metadata_props) or "none"
    raise InputError(
        f"{where}: expected {CONFIG_KEY} in the metadata of {onnx_path}; got metadata keys: {keys}. Export it with "
        f"acceleration.export_onnx(..., metadata={{CONFIG_KEY: model.config.to_dict()}}) or ensure_nuclei_onnx().")


def ensure_nuclei_onnx(profile: str = "smoke", path: Path | None = None) -> Path:
    """``build/artifacts/nuclei_unet.onnx``, exported by lab 02's code from lab 01's model when absent or stale.

    The export is stale when it is older than lab 01's saved weights (trained first if missing); it is rebuilt with
    ``lessons.lab02.export_onnx``, and a fresh one is returned without loading MONAI.

    Args:
        profile: ``"smoke"``, ``"cpu"`` or ``"gpu"``; picks the device if lab 01's model must be trained first.
        path: where the ONNX file lives; None means ``build/artifacts/nuclei_unet.onnx``.

    Returns:
        The path of an up-to-date ONNX export.

    Example:
        >>> onnx_path = wu.acceleration.ensure_nuclei_onnx(PROFILE)
    """
    from workshop_utils.nuclei import ARTIFACT_NAME as NUCLEI_ARTIFACT
    from workshop_utils.nuclei import ensure_nuclei_model, load_nuclei_model

    where = "ensure_nuclei_onnx"
    profile = require_profile(profile, where)
    target = paths.artifacts_dir() / ONNX_NAME if path is None else require_path(path, where, "path", "Pass e.g. path=wu.artifacts_dir() / 'nuclei_unet.onnx'.")

    def build(target: Path) -> None:
        model = load_nuclei_model(ensure_nuclei_model(profile))
        cfg = model.config
        # lab 02's own export function, through the checks and the atomic write of export_onnx above
        export_onnx(model.network, target, cfg.tile_px, in_channels=cfg.in_channels, metadata={CONFIG_KEY: cfg.to_dict()})

    # Stale when older than lab 01's weights; a fresh export returns without loading MONAI (seconds to import).
    return ensure_artifact(target, build, inputs=[paths.artifacts_dir() / NUCLEI_ARTIFACT], what="ONNX export")
