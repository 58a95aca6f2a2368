"""TensorRT, where it exists: its status, the ``trtexec`` line, and an engine built from the ONNX model.

The engine build is lab 02's own code (``lessons.lab02.build_trt_engine``, which imports tensorrt inside it).

TensorRT is optional: every function that needs it checks :func:`tensorrt_status` first, and the CPU machines
(where it cannot be installed) get a one-sentence reason plus the ``trtexec`` command that would build the engine.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from workshop_utils.acceleration.onnx_export import EXPORT_FIX, ONNX_NAME
from workshop_utils.core.contract import INPUT_NAME
from workshop_utils.core.errors import HardwareRequirementError
from workshop_utils.core.inputs import (
    bad_input,
    require_choice,
    require_file,
    require_int,
    require_number,
    require_path,
)

TENSORRT_MISSING = (
    "TensorRT is not installed here: its pip package downloads from NVIDIA's servers and needs a CUDA GPU, so it "
    "cannot run on this CPU-only machine; the lab measures ONNX Runtime instead."
)
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")


def _engine_settings(where: str, precision: Any, tile_px: Any, max_batch: Any) -> None:
    require_choice(precision, where, "precision", PRECISIONS)
    require_int(tile_px, where, "tile_px", minimum=1)
    require_int(max_batch, where, "max_batch", minimum=1)


def tensorrt_status() -> tuple[bool, str]:
    """(available, message): TensorRT needs both its Python package and a CUDA GPU that torch can use.

    Returns:
        ``(True, "TensorRT <version> on <GPU name>")`` when engines can be built here, else ``(False, why not)``.

    Example:
        >>> trt_ok, trt_message = wu.acceleration.tensorrt_status()
    """
    import torch

    if importlib.util.find_spec("tensorrt") is None:
        return False, TENSORRT_MISSING
    if not torch.cuda.is_available():
        return False, "TensorRT is installed but no CUDA GPU is usable by torch here, so engines cannot be built or run."
    import tensorrt

    return True, f"TensorRT {tensorrt.__version__} on {torch.cuda.get_device_name(0)}"


def trtexec_command(onnx_path: Path, precision: str = "fp16", tile_px: int = 256, max_batch: int = 16) -> str:
    """The ``trtexec`` line that builds the same engine on a GPU machine (NGC containers ship trtexec).

    Args:
        onnx_path: the exported ONNX model the command reads.
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"`` (int8 also enables fp16 kernels and needs a QDQ graph).
        tile_px: the tile's height and width (px) in the engine's input shapes.
        max_batch: the largest batch the engine accepts (the optimal shape is batch 8).

    Returns:
        One shell command line that saves the engine as ``build/artifacts/<onnx stem>.<precision>.plan``.

    Example:
        >>> print(wu.acceleration.trtexec_command(onnx_path, "fp16", cfg.tile_px))
    """
    require_path(onnx_path, "trtexec_command", "onnx_path",
                 f"Pass the exported model, e.g. wu.artifacts_dir() / {ONNX_NAME!r}.")
    _engine_settings("trtexec_command", precision, tile_px, max_batch)
    flag = {"fp32": "", "fp16": " --fp16", "int8": " --int8 --fp16"}[precision]
    shapes = (f"--minShapes={INPUT_NAME}:1x1x{tile_px}x{tile_px} --optShapes={INPUT_NAME}:8x1x{tile_px}x{tile_px} "
              f"--maxShapes={INPUT_NAME}:{max_batch}x1x{tile_px}x{tile_px}")
    engine = Path(onnx_path).with_suffix(f".{precision}.plan").name
    return f"trtexec --onnx={onnx_path} {shapes}{flag} --saveEngine=build/artifacts/{engine}"


def build_trt_engine(onnx_path: Path, engine_path: Path, precision: str = "fp16", tile_px: int = 256,
                     max_batch: int = 16, workspace_gib: float = 4.0) -> Path:
    """Lab 02's TensorRT build (``lessons.lab02.build_trt_engine``), with checked arguments and a GPU check first.

    Raises :class:`HardwareRequirementError` with the equivalent :func:`trtexec_command` where TensorRT or a CUDA
    GPU is missing (see :func:`tensorrt_status`).

    Args:
        onnx_path: the ONNX model to build from (for int8, the QDQ model from :func:`quantize_int8`).
        engine_path: where to write the serialized engine (``.plan``).
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``; fp16 and int8 let TensorRT pick fp16 kernels too.
        tile_px: the tile's height and width (px) of the engine's input.
        max_batch: the largest batch the engine accepts; TensorRT tunes for batch ``min(8, max_batch)``.
        workspace_gib: the GPU scratch memory TensorRT may use while building (GiB).

    Returns:
        ``engine_path``.

    Example:
        >>> plan = wu.acceleration.build_trt_engine(onnx_path, wu.artifacts_dir() / "nuclei_unet.fp16.plan", "fp16",
        ...                                         cfg.tile_px, max_batch=16)
    """
    where = "build_trt_engine"
    onnx_path = require_file(onnx_path, where, "onnx_path", EXPORT_FIX)
    engine_path = require_path(engine_path, where, "engine_path", "Pass e.g. engine_path=wu.artifacts_dir() / 'nuclei_unet.fp16.plan'.")
    _engine_settings(where, precision, tile_px, max_batch)
    require_number(workspace_gib, where, "workspace_gib", minimum=0.0, strict=True)
    available, message = tensorrt_status()
    if not available:
        command = trtexec_command(onnx_path, precision, tile_px, max_batch)
        raise HardwareRequirementError(f"{message} Command for a GPU machine: {command}")
    from workshop_utils.lessons.lab02 import build_trt_engine as lesson_build_trt_engine  # lab02 loads torch

    engine_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return lesson_build_trt_engine(onnx_path, engine_path, precision, int(tile_px), int(max_batch),
                                       float(workspace_gib), input_name=INPUT_NAME)
    except ValueError as err:  # the lesson's "TensorRT cannot parse ...", in the package's message shape
        raise bad_input(where, "onnx_path to an ONNX graph TensorRT can parse", str(err), EXPORT_FIX) from None
