"""Export the nuclei model to ONNX, run it with ONNX Runtime (FP32 and INT8) and, where present, TensorRT.

The ONNX contract labs 03 and 06 rely on: input ``image`` float32 (N, 1, T, T) with a dynamic batch axis N,
output ``logits`` float32 (N, C, T, T); the nuclei config (tile size, normalisation, post-processing) is stored
as JSON in the model's metadata under ``workshop.nuclei_config``.

TensorRT is optional: every function that needs it checks :func:`tensorrt_status` first and the CPU machines
(where it cannot be installed) get a one-sentence reason plus the ``trtexec`` command that would build the engine.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch

from . import paths
from .errors import HardwareRequirementError
from .inputs import InputError, as_array, bad_input, describe, require_choice, require_file, require_int
from .inputs import require_nonempty, require_number
from .profiles import require_profile

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
ONNX_NAME = "nuclei_unet.onnx"
CONFIG_KEY = "workshop.nuclei_config"
TENSORRT_MISSING = (
    "TensorRT is not installed here: its pip package downloads from NVIDIA's servers and needs a CUDA GPU, so it "
    "cannot run on this CPU-only machine; the lab measures ONNX Runtime instead."
)
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
EXPORT_FIX = ("Export it first: acceleration.ensure_nuclei_onnx(PROFILE) (lab 02) writes "
              "build/artifacts/nuclei_unet.onnx.")


class NucleiConfigMissingError(InputError, KeyError):
    """An ONNX model without the nuclei config in its metadata (it was not exported by :func:`export_onnx`)."""

    __str__ = BaseException.__str__  # KeyError's own would wrap the message in quotes


def _out_path(value: Any, where: str, name: str) -> Path:
    """``value`` as a Path to write to (its folder is created when needed)."""
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise bad_input(where, f"{name} as a file path (str or pathlib.Path)", describe(value),
                        f"Pass e.g. {name}=wu.artifacts_dir() / 'nuclei_unet.onnx'.")
    return Path(value)


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


def _engine_settings(where: str, precision: Any, tile_px: Any, max_batch: Any) -> None:
    require_choice(precision, where, "precision", PRECISIONS)
    require_int(tile_px, where, "tile_px", minimum=1)
    require_int(max_batch, where, "max_batch", minimum=1)


def export_onnx(network: torch.nn.Module, path: Path, tile_px: int, *, in_channels: int = 1,
                metadata: dict[str, Any] | None = None, max_batch: int = 64) -> Path:
    """Export ``network`` with torch's dynamo exporter (onnxscript) and a dynamic batch axis; checks the graph."""
    where = "acceleration.export_onnx"
    if not isinstance(network, torch.nn.Module):
        raise bad_input(where, "network as a torch.nn.Module", describe(network),
                        "Pass the network itself, e.g. model.network for a NucleiModel.")
    path = _out_path(path, where, "path")
    require_int(tile_px, where, "tile_px", minimum=1)
    require_int(in_channels, where, "in_channels", minimum=1)
    require_int(max_batch, where, "max_batch", minimum=2)  # the example batch traced below holds 2 tiles
    if metadata is not None and not (isinstance(metadata, Mapping) and all(isinstance(k, str) for k in metadata)):
        raise bad_input(where, "metadata as a dict with str keys (or None)", describe(metadata),
                        "Pass e.g. metadata={acceleration.CONFIG_KEY: model.config.to_dict()}.")
    import onnx

    network = network.eval().cpu()
    example = torch.zeros(2, in_channels, tile_px, tile_px)
    batch = torch.export.Dim("batch", min=1, max=max_batch)
    first_arg = next(iter(inspect.signature(network.forward).parameters))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + ".partial.onnx")  # readers never see a half-written model
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notes are noise here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(network, (example,), str(partial), dynamo=True, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], dynamic_shapes={first_arg: {0: batch}}, optimize=True,
                          verbose=False)
    model = onnx.load(str(partial))
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    onnx.checker.check_model(model)
    onnx.save(model, str(partial))  # one self-contained file: the exporter's external weights are folded back in
    Path(str(partial) + ".data").unlink(missing_ok=True)
    partial.replace(path)
    return path


def describe_onnx(path: Path) -> dict[str, Any]:
    """Inputs, outputs (name, shape with symbolic axes, dtype), opset and the most common operators of a graph."""
    import onnx
    from collections import Counter

    model = _load_onnx(path, "acceleration.describe_onnx", "path")
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


def ort_session(path: Path, *, optimize: bool = True, threads: int | None = None, spinning: bool = False) -> Any:
    """An ONNX Runtime CPU session; ``optimize=False`` turns graph optimisations (fusions, folding) off.

    Spinning is off by default: ONNX Runtime's idle worker threads otherwise busy-wait after each run and steal
    the cores from whatever runs next in the process — measured here, eager PyTorch timed right after looked
    2.5x slower (17.6 ms instead of 7.1 ms at batch 1), which would inflate every speedup.
    """
    where = "acceleration.ort_session"
    source = require_file(path, where, "path", EXPORT_FIX)
    if threads is not None:
        require_int(threads, where, "threads", minimum=1)
    import onnxruntime as ort

    options = ort.SessionOptions()
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    options.intra_op_num_threads = threads or torch.get_num_threads()
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

    where = "acceleration.optimised_ops"
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
    """
    import tempfile

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    require_choice(activation, "acceleration.fusion_probe", "activation", FUSION_PROBE_ACTIVATIONS)
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


class OrtPredictor:
    """``predictor(batch)`` for ``segment_nuclei``: float32 (N, 1, T, T) numpy -> logits via ONNX Runtime."""

    def __init__(self, session: Any) -> None:
        if not callable(getattr(session, "run", None)):
            raise bad_input("acceleration.OrtPredictor", "session as an ONNX Runtime InferenceSession",
                            describe(session), "Make one first: OrtPredictor(acceleration.ort_session(onnx_path)).")
        self.session = session
        inputs = session.get_inputs() if callable(getattr(session, "get_inputs", None)) else []
        dims = list(inputs[0].shape)[1:] if inputs and inputs[0].shape else []
        self._item_shape = tuple(d if isinstance(d, int) else None for d in dims)  # None: a symbolic axis

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        where = "acceleration.OrtPredictor"
        data = as_array(batch, where, "batch", ndim=4, finite=False,
                        fix="Pass float32 tiles (N, 1, T, T), e.g. np.stack(tiles)[:, None].")
        item = self._item_shape
        if item and (len(item) != 3 or any(want not in (None, got) for want, got in zip(item, data.shape[1:]))):
            raise bad_input(where, f"batch items of shape {item} (what the model was exported for)", describe(data),
                            "Cut tiles of the model's size: acceleration.read_nuclei_config(onnx_path)['tile_px'].")
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(data, dtype=np.float32)})[0]


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
    """Static INT8 quantisation (QDQ, per-channel weights) calibrated on real tiles; the QDQ graph also feeds TensorRT."""
    where = "acceleration.quantize_int8"
    fp32_path = require_file(fp32_path, where, "fp32_path", EXPORT_FIX)
    int8_path = _out_path(int8_path, where, "int8_path")
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


def tensorrt_status() -> tuple[bool, str]:
    """(available, message): TensorRT needs both its Python package and a CUDA GPU that torch can use."""
    if importlib.util.find_spec("tensorrt") is None:
        return False, TENSORRT_MISSING
    if not torch.cuda.is_available():
        return False, "TensorRT is installed but no CUDA GPU is usable by torch here, so engines cannot be built or run."
    import tensorrt

    return True, f"TensorRT {tensorrt.__version__} on {torch.cuda.get_device_name(0)}"


def trtexec_command(onnx_path: Path, precision: str = "fp16", tile_px: int = 256, max_batch: int = 16) -> str:
    """The ``trtexec`` line that builds the same engine on a GPU machine (NGC containers ship trtexec)."""
    if not isinstance(onnx_path, (str, os.PathLike)) or not str(onnx_path):
        raise bad_input("acceleration.trtexec_command", "onnx_path as a file path (str or pathlib.Path)",
                        describe(onnx_path), f"Pass the exported model, e.g. wu.artifacts_dir() / {ONNX_NAME!r}.")
    _engine_settings("acceleration.trtexec_command", precision, tile_px, max_batch)
    flag = {"fp32": "", "fp16": " --fp16", "int8": " --int8 --fp16"}[precision]
    shapes = (f"--minShapes={INPUT_NAME}:1x1x{tile_px}x{tile_px} --optShapes={INPUT_NAME}:8x1x{tile_px}x{tile_px} "
              f"--maxShapes={INPUT_NAME}:{max_batch}x1x{tile_px}x{tile_px}")
    engine = Path(onnx_path).with_suffix(f".{precision}.plan").name
    return f"trtexec --onnx={onnx_path} {shapes}{flag} --saveEngine=build/artifacts/{engine}"


def build_trt_engine(onnx_path: Path, engine_path: Path, precision: str = "fp16", tile_px: int = 256,
                     max_batch: int = 16, workspace_gib: float = 4.0) -> Path:
    """Build a serialized TensorRT engine (fp32, fp16, or int8 from a QDQ graph) with a batch range 1..max_batch."""
    where = "acceleration.build_trt_engine"
    onnx_path = require_file(onnx_path, where, "onnx_path", EXPORT_FIX)
    engine_path = _out_path(engine_path, where, "engine_path")
    _engine_settings(where, precision, tile_px, max_batch)
    require_number(workspace_gib, where, "workspace_gib", minimum=0.0, strict=True)
    available, message = tensorrt_status()
    if not available:
        command = trtexec_command(onnx_path, precision, tile_px, max_batch)
        raise HardwareRequirementError(f"{message} Command for a GPU machine: {command}")
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise bad_input(where, "onnx_path to an ONNX graph TensorRT can parse", f"{onnx_path} ({errors})", EXPORT_FIX)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * 2**30))
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    profile = builder.create_optimization_profile()
    shape = lambda n: (n, 1, tile_px, tile_px)  # noqa: E731
    profile.set_shape(INPUT_NAME, shape(1), shape(min(8, max_batch)), shape(max_batch))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build a {precision} engine from {onnx_path}; see the log above.")
    engine_path.write_bytes(bytes(serialized))
    return engine_path


class TrtPredictor:
    """Run a TensorRT engine on CUDA torch tensors; ``predictor(batch)`` returns logits as a CUDA tensor."""

    def __init__(self, engine_path: Path) -> None:
        where = "acceleration.TrtPredictor"
        source = require_file(engine_path, where, "engine_path",
                              "Build it on a GPU machine: acceleration.build_trt_engine (or trtexec_command's line).")
        available, message = tensorrt_status()
        if not available:
            raise HardwareRequirementError(f"{message} {where} needs TensorRT and a CUDA GPU to run {source}.")
        import tensorrt as trt

        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self._runtime.deserialize_cuda_engine(source.read_bytes())
        if self.engine is None:
            raise bad_input(where, "engine_path to an engine built by this TensorRT version for this GPU",
                            f"{source}, which TensorRT could not deserialize", "Rebuild it here with build_trt_engine.")
        self.context = self.engine.create_execution_context()

    def __call__(self, batch: Any) -> torch.Tensor:
        shape = tuple(getattr(batch, "shape", ()))
        if len(shape) != 4 or 0 in shape:  # no copy: the batch may already be on the GPU
            raise bad_input("acceleration.TrtPredictor", "batch as tiles (N, 1, T, T), a numpy array or torch tensor",
                            describe(batch), "Stack the tiles: np.stack(tiles)[:, None].")
        x = batch if isinstance(batch, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(batch))
        x = x.to("cuda", torch.float32).contiguous()
        self.context.set_input_shape(INPUT_NAME, tuple(x.shape))
        out = torch.empty(tuple(self.context.get_tensor_shape(OUTPUT_NAME)), device="cuda", dtype=torch.float32)
        self.context.set_tensor_address(INPUT_NAME, x.data_ptr())
        self.context.set_tensor_address(OUTPUT_NAME, out.data_ptr())
        self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream)
        return out


def read_nuclei_config(onnx_path: Path) -> dict[str, Any]:
    """The nuclei config stored in an exported model's metadata."""
    where = "acceleration.read_nuclei_config"
    model = _load_onnx(onnx_path, where, "onnx_path", load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == CONFIG_KEY:
            return json.loads(prop.value)
    keys = ", ".join(p.key for p in model.metadata_props) or "none"
    raise NucleiConfigMissingError(
        f"{where}: expected {CONFIG_KEY} in the metadata of {onnx_path}; got metadata keys: {keys}. Export it with "
        f"acceleration.export_onnx(..., metadata={{CONFIG_KEY: model.config.to_dict()}}) or ensure_nuclei_onnx().")


def ensure_nuclei_onnx(profile: str = "smoke", path: Path | None = None) -> Path:
    """``build/artifacts/nuclei_unet.onnx``, exported from lab 01's model (trained first when missing) if absent or stale."""
    from .nuclei import ensure_nuclei_model, load_nuclei_model

    from filelock import FileLock

    where = "acceleration.ensure_nuclei_onnx"
    profile = require_profile(profile, where)
    target = paths.artifacts_dir() / ONNX_NAME if path is None else _out_path(path, where, "path")
    saved = paths.artifacts_dir() / "nuclei_unet.pt"
    if path is None and target.exists() and saved.exists() and target.stat().st_mtime >= saved.stat().st_mtime:
        return target  # fresh: skip loading the network (importing MONAI alone takes seconds)
    weights = ensure_nuclei_model(profile)
    with FileLock(str(target) + ".lock"):  # two labs (or a lab and a server) may ask at once: export once
        if target.exists() and target.stat().st_mtime >= weights.stat().st_mtime:
            return target
        model = load_nuclei_model(weights)
        cfg = model.config
        return export_onnx(model.network, target, cfg.tile_px, in_channels=cfg.in_channels,
                           metadata={CONFIG_KEY: cfg.to_dict()})
