"""Run an exported model with ONNX Runtime: sessions, the graph ORT optimises to, and INT8 quantisation.

The session (``lessons.lab02_runtime.ort_session``) and the quantisation (``lessons.lab02.quantize_int8``) are lab
02's own code, copied from the notebook; the functions here check their arguments and call them. This module and
``lab02_runtime`` import no torch: the Triton worker opens its sessions through :func:`ort_session`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from workshop_utils.acceleration.onnx_export import EXPORT_FIX
from workshop_utils.core.contract import INPUT_NAME
from workshop_utils.core.inputs import (
    as_array,
    bad_input,
    require_choice,
    require_file,
    require_int,
    require_nonempty,
    require_path,
)
from workshop_utils.lessons.lab02_runtime import ort_session as lesson_ort_session


def ort_session(path: Path, *, optimize: bool = True, threads: int | None = None, spinning: bool = False) -> Any:
    """Lab 02's ONNX Runtime CPU session (``lessons.lab02_runtime.ort_session``), with checked arguments.

    Spinning is off by default: ONNX Runtime's idle worker threads otherwise busy-wait after each run and steal
    the cores from whatever runs next in the process — measured here, eager PyTorch timed right after looked
    2.5x slower (17.6 ms instead of 7.1 ms at batch 1), which would inflate every speedup.

    Args:
        path: an ONNX model file.
        optimize: True applies all of ONNX Runtime's graph optimisations; False disables them (for comparison).
        threads: intra-op threads; None uses torch's current count, so both sides of a comparison get the same.
        spinning: True lets idle worker threads busy-wait between runs (lower latency, but steals cores).

    Returns:
        An ``onnxruntime.InferenceSession`` on the CPU execution provider; call ``session.run(None, {"image": x})``.

    Example:
        >>> ort_fp32 = wu.acceleration.ort_session(onnx_path, optimize=True, threads=THREADS)
    """
    where = "ort_session"
    source = require_file(path, where, "path", EXPORT_FIX)
    if threads is None:
        import torch  # the default follows PyTorch's, so both sides of a comparison get the same count

        threads = torch.get_num_threads()
    require_int(threads, where, "threads", minimum=1)
    try:
        return lesson_ort_session(source, optimize=bool(optimize), threads=int(threads), spinning=bool(spinning))
    except Exception as err:
        if type(err).__name__ not in ("InvalidProtobuf", "InvalidGraph"):
            raise
        raise bad_input(where, "path to an ONNX model ONNX Runtime can load", f"{source} ({err})", EXPORT_FIX) from None


FUSION_PROBE_ACTIVATIONS: tuple[str, ...] = ("Relu", "LeakyRelu", "PRelu")


def optimised_ops(path: Path, level: str = "all") -> dict[str, int]:
    """Operator counts of the graph ONNX Runtime actually runs after its optimisations (``level``: basic/extended/all).

    Args:
        path: an ONNX model.
        level: the graph optimisation level, as in ``ort.GraphOptimizationLevel.ORT_ENABLE_<LEVEL>``.

    Returns:
        ``{op_type: count}``; fused convolutions read ``"Conv+Relu"`` (the activation ONNX Runtime folded in).

    Example:
        >>> optimised_ops(onnx_path)["PRelu"]  # PRelu nodes left standing after optimisation
    """
    import tempfile
    from collections import Counter

    import onnx
    import onnxruntime as ort

    where = "optimised_ops"
    source = require_file(path, where, "path", EXPORT_FIX)
    levels = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    require_choice(level, where, "level", levels)
    with tempfile.TemporaryDirectory() as scratch:
        options = ort.SessionOptions()
        options.graph_optimization_level = levels[level]
        options.optimized_model_filepath = str(Path(scratch) / "optimised.onnx")  # the graph ORT will run
        options.log_severity_level = 3
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        graph = onnx.load(options.optimized_model_filepath).graph
    counts: Counter[str] = Counter()
    for node in graph.node:
        activation = next((a.s.decode() for a in node.attribute if a.name == "activation"), "")
        counts[f"{node.op_type}+{activation}" if activation else node.op_type] += 1
    return dict(counts.most_common())


def fusion_probe(activation: str, level: str = "all") -> dict[str, int]:
    """Does ONNX Runtime fuse ``Conv -> activation`` into one kernel? Optimises a one-convolution graph and says.

    Args:
        activation: ``"Relu"``, ``"LeakyRelu"`` or ``"PRelu"``.
        level: the graph optimisation level (see :func:`optimised_ops`).

    Returns:
        The optimised graph's operator counts: ``{"Conv+Relu": 1, ...}`` when fused, ``{"Conv": 1, "PRelu": 1, ...}``
        when not.

    Example:
        >>> wu.acceleration.fusion_probe("PRelu")
    """
    import tempfile

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    require_choice(activation, "fusion_probe", "activation", FUSION_PROBE_ACTIVATIONS)
    channels, rng = 8, np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.random((channels, channels, 3, 3), dtype=np.float32), "w")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1])]
    if activation == "PRelu":
        weights.append(numpy_helper.from_array(np.full((channels, 1, 1), 0.25, np.float32), "slope"))
        nodes.append(helper.make_node("PRelu", ["c", "slope"], ["y"]))
    else:
        nodes.append(helper.make_node(activation, ["c"], ["y"]))
    shape = [1, channels, 32, 32]
    graph = helper.make_graph(nodes, "fusion_probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], weights)
    with tempfile.TemporaryDirectory() as scratch:
        probe = Path(scratch) / "probe.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(probe))
        return optimised_ops(probe, level)


def quantize_int8(fp32_path: Path, int8_path: Path, calibration: Iterable[np.ndarray]) -> Path:
    """Lab 02's static INT8 quantisation (``lessons.lab02.quantize_int8``: QDQ, per-channel, MinMax), checked.

    Activation ranges come from min/max calibration over the batches; weights and activations are signed INT8.
    The QDQ graph also feeds TensorRT.

    Args:
        fp32_path: the float32 ONNX model to quantise.
        int8_path: where to write the quantised model; must differ from ``fp32_path``.
        calibration: float32 tile batches shaped (N, 1, T, T), cut from real images, e.g. ``[tiles[:4], tiles[4:8]]``.

    Returns:
        ``int8_path``.

    Example:
        >>> wu.acceleration.quantize_int8(onnx_path, wu.artifacts_dir() / "nuclei_unet_int8.onnx", calibration)
    """
    where = "acceleration.quantize_int8"
    fp32_path = require_file(fp32_path, where, "fp32_path", EXPORT_FIX)
    int8_path = require_path(int8_path, where, "int8_path", "Pass e.g. int8_path=wu.artifacts_dir() / 'nuclei_unet.int8.onnx'.")
    if int8_path.resolve() == fp32_path.resolve():
        raise bad_input(where, "int8_path different from fp32_path", str(int8_path),
                        "Write the INT8 model next to it, e.g. wu.artifacts_dir() / 'nuclei_unet_int8.onnx'.")
    fix = "Pass a list of float32 tile batches (N, 1, T, T) cut from real images, e.g. [tiles[:4], tiles[4:8]]."
    batches = [as_array(batch, where, f"calibration[{i}]", ndim=4, kind="float", fix=fix)
               for i, batch in enumerate(require_nonempty(calibration, where, "calibration", fix))]
    from workshop_utils.lessons.lab02 import TileCalibrationReader  # lab02 loads torch: imported here, not on top
    from workshop_utils.lessons.lab02 import quantize_int8 as lesson_quantize_int8

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lesson_quantize_int8(fp32_path, int8_path, TileCalibrationReader(batches, input_name=INPUT_NAME))
