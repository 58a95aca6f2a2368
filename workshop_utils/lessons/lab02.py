"""Lab 02's lesson code, copied by ``make export`` from notebooks/02_tensorrt_acceleration.ipynb.

Do not edit: change the notebook's ``#| export`` cells and run ``make export``; tests/test_lessons.py
fails while this file and the notebook differ.
"""
# ruff: noqa: E402, I001  (each cell brings its own imports, where the notebook shows them)

from __future__ import annotations


import json
from pathlib import Path
from typing import Any

import onnx
import torch


def export_onnx(network: torch.nn.Module, path: Path, tile_px: int, *, in_channels: int = 1,
                metadata: dict[str, Any] | None = None, max_batch: int = 64, input_name: str = "image",
                output_name: str = "logits") -> Path:
    """Export ``network`` with torch's dynamo exporter and a dynamic batch axis, store ``metadata``, check the graph.

    ``input_name`` and ``output_name`` are the tensor names a client uses (lab 03 serves the file as it is).
    """
    example = torch.zeros(2, in_channels, tile_px, tile_px)  # batch 2: torch.export fixes a size-1 axis as constant
    batch = torch.export.Dim("batch", min=1, max=max_batch)  # a symbolic size: any batch from 1 to max_batch
    torch.onnx.export(
        network.eval().cpu(),          # eval mode: batch norm uses its running statistics; export from the CPU
        (example,),                    # example inputs, traced once by torch.export
        str(path),                     # where the .onnx file goes
        dynamo=True,                   # torch.export + onnxscript (not the old TorchScript tracer)
        input_names=[input_name],      # the graph input's name: what clients send
        output_names=[output_name],    # the graph output's name: what they read back
        dynamic_shapes=({0: batch},),  # one entry per input: its axis 0 is `batch`, the other axes stay fixed
        optimize=True,                 # onnxscript's graph optimiser: constant folding, dead nodes removed
        external_data=False,           # the weights inside the .onnx file, no side file beside it
        verbose=False,                 # no progress lines
    )
    model = onnx.load(str(path))
    for key, value in (metadata or {}).items():  # e.g. the tile size and normalisation lab 03 reads back
        model.metadata_props.add(key=key, value=value if isinstance(value, str) else json.dumps(value))
    onnx.checker.check_model(model)  # a valid graph: every input defined, types consistent, opset known
    onnx.save(model, str(path))
    return Path(path)


import numpy as np
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process


class TileCalibrationReader(CalibrationDataReader):
    """Gives ``quantize_static`` one ``{input name: batch}`` per call, then None when the batches run out."""

    def __init__(self, batches: list[np.ndarray], input_name: str = "image") -> None:
        self.batches = iter(batches)
        self.input_name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        if batch is None:
            return None  # calibration is over
        return {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}


def quantize_int8(fp32_path: Path, int8_path: Path, reader: CalibrationDataReader) -> Path:
    """Static INT8 quantisation (QDQ, per-channel weights), activation ranges calibrated on what ``reader`` gives."""
    prepared = Path(int8_path).with_name(Path(int8_path).stem + "_prep.onnx")
    quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)  # shape inference and folding first
    quantize_static(
        model_input=str(prepared),
        model_output=str(int8_path),
        calibration_data_reader=reader,             # the batches run through the model to measure ranges
        quant_format=QuantFormat.QDQ,               # QuantizeLinear/DequantizeLinear pairs: what TensorRT reads
        per_channel=True,                           # one weight scale per output channel, not one per tensor
        activation_type=QuantType.QInt8,            # signed 8-bit activations
        weight_type=QuantType.QInt8,                # signed 8-bit weights
        calibrate_method=CalibrationMethod.MinMax,  # each activation's range: the min and max seen in calibration
    )
    prepared.unlink()
    return Path(int8_path)


def build_trt_engine(onnx_path: Path, engine_path: Path, precision: str = "fp16", tile_px: int = 256,
                     max_batch: int = 16, workspace_gib: float = 4.0, input_name: str = "image") -> Path:
    """Compile an ONNX graph into a TensorRT engine for this GPU: fp32, fp16, or int8 from a QDQ graph; batch
    1..max_batch, tuned for batch 8."""
    import tensorrt as trt  # here, not at the top: the module must load where TensorRT is not installed

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)       # no flags: TensorRT 10 networks have an explicit batch axis
    parser = trt.OnnxParser(network, logger)  # fills `network` from the ONNX graph
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ValueError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * 2**30))  # scratch while tuning
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)  # allow FP16 kernels (tensor cores) where they are faster
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # allow INT8 kernels, scaled by the graph's QDQ nodes
    profile = builder.create_optimization_profile()  # the range of the dynamic batch axis
    min_shape = (1, 1, tile_px, tile_px)                  # the smallest batch the engine accepts
    opt_shape = (min(8, max_batch), 1, tile_px, tile_px)  # the batch TensorRT tunes its kernels for
    max_shape = (max_batch, 1, tile_px, tile_px)          # the largest batch it accepts
    profile.set_shape(input_name, min_shape, opt_shape, max_shape)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)  # times candidate kernels: minutes
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build a {precision} engine from {onnx_path}; see the log above.")
    Path(engine_path).write_bytes(bytes(serialized))
    return Path(engine_path)
