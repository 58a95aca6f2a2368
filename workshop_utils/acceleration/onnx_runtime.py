"""Run an exported model with ONNX Runtime: sessions, the graph ORT optimises to, and INT8 quantisation.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
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


def ort_session(path: Path, *, optimize: bool = True, threads: int | None = None, spinning: bool = False) -> Any:
    """An ONNX Runtime CPU session; ``optimize=False`` turns graph optimisations (fusions, folding) off.

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
    if threads is not None:
        require_int(threads, where, "threads", minimum=1)
    import onnxruntime as ort

    options = ort.SessionOptions()
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    if threads is None:
        import torch  # the default follows PyTorch's, so both sides of a comparison get the same count

        threads = torch.get_num_threads()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
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


class _Calibration:
    """ONNX Runtime calibration reader over float32 (N, 1, T, T) batches."""

    def __init__(self, batches: Iterable[np.ndarray]) -> None:
        self._batches: Iterator[np.ndarray] = iter(list(batches))

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)}

    def rewind(self) -> None:  # some ORT versions call it
        pass


def quantize_int8(fp32_path: Path, int8_path: Path, calibration: Iterable[np.ndarray]) -> Path:
    """Static INT8 quantisation (QDQ, per-channel weights) calibrated on real tiles; the QDQ graph also feeds TensorRT.

    Activation ranges come from min/max calibration over the batches; weights and activations are signed INT8.

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
    calibration = [as_array(batch, where, f"calibration[{i}]", ndim=4, kind="float", fix=fix)
                   for i, batch in enumerate(require_nonempty(calibration, where, "calibration", fix))]
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = int8_path.with_name(int8_path.stem + "_prep.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(int8_path), _Calibration(calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    prepared.unlink(missing_ok=True)
    return int8_path
