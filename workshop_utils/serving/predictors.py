"""Predictors: the forward pass of ``wu.nuclei.segment_nuclei``, run by another runtime.

Every predictor follows one protocol, :class:`NucleiPredictor`: called with float32 tiles (N, 1, T, T), it returns
logits (N, C, T, T) as numpy or torch. :class:`OrtPredictor` runs an ONNX Runtime session (lab 02),
:class:`TrtPredictor` a TensorRT engine (lab 02 on a GPU), :class:`TritonPredictor` sends the tiles to a Triton
server (lab 06). ``segment_nuclei(model, image, predictor=p)`` takes any of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from workshop_utils.acceleration.tensorrt_engine import tensorrt_status
from workshop_utils.core.contract import INPUT_NAME, NUCLEI_MODEL, OUTPUT_NAME
from workshop_utils.core.errors import HardwareRequirementError
from workshop_utils.core.inputs import (
    as_array,
    bad_input,
    describe,
    require_file,
)

if TYPE_CHECKING:  # torch loads only where a TensorRT engine runs; the Triton worker imports this package
    import torch


class NucleiPredictor(Protocol):
    """The protocol: float32 tiles (N, 1, T, T) in, logits (N, C, T, T) out (numpy, or torch on a GPU).

    ``fixed_batch = True`` on a predictor asks ``segment_nuclei`` to zero-pad every batch to exactly
    ``config.sw_batch_size`` tiles, for engines built with one static shape.
    """

    def __call__(self, batch: np.ndarray) -> Any: ...


class OrtPredictor:
    """``predictor(batch)`` for ``segment_nuclei``: float32 (N, 1, T, T) numpy -> logits via ONNX Runtime.

    Calling it returns the numpy logits (N, C, T, T); a batch whose tile size differs from the model's is refused.

    Args:
        session: an ONNX Runtime ``InferenceSession`` of the nuclei model, e.g. from :func:`ort_session`.

    Example:
        >>> mask, labels = wu.nuclei.segment_nuclei(model, image, predictor=wu.serving.OrtPredictor(ort_fp32))
    """

    def __init__(self, session: Any) -> None:
        if not callable(getattr(session, "run", None)):
            raise bad_input("OrtPredictor", "session as an ONNX Runtime InferenceSession",
                            describe(session), "Make one first: OrtPredictor(acceleration.ort_session(onnx_path)).")
        self.session = session
        inputs = session.get_inputs() if callable(getattr(session, "get_inputs", None)) else []
        dims = list(inputs[0].shape)[1:] if inputs and inputs[0].shape else []
        self._item_shape = tuple(d if isinstance(d, int) else None for d in dims)  # None: a symbolic axis

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        where = "OrtPredictor"
        data = as_array(batch, where, "batch", ndim=4, finite=False,
                        fix="Pass float32 tiles (N, 1, T, T), e.g. np.stack(tiles)[:, None].")
        item = self._item_shape
        if item and (len(item) != 3 or any(want not in (None, got) for want, got in zip(item, data.shape[1:], strict=True))):
            raise bad_input(where, f"batch items of shape {item} (what the model was exported for)", describe(data),
                            "Cut tiles of the model's size: acceleration.read_nuclei_config(onnx_path)['tile_px'].")
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(data, dtype=np.float32)})[0]


class TrtPredictor:
    """Run a TensorRT engine on CUDA torch tensors; ``predictor(batch)`` returns logits as a CUDA tensor.

    Needs TensorRT and a CUDA GPU (see :func:`tensorrt_status`); numpy batches are copied to the GPU first.

    Args:
        engine_path: a serialized engine (``.plan``) built by this TensorRT version for this GPU.

    Example:
        >>> engines["fp16"] = wu.serving.TrtPredictor(wu.artifacts_dir() / "nuclei_unet.fp16.plan")
    """

    def __init__(self, engine_path: Path) -> None:
        where = "TrtPredictor"
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
        import torch

        shape = tuple(getattr(batch, "shape", ()))
        if len(shape) != 4 or 0 in shape:  # no copy: the batch may already be on the GPU
            raise bad_input("TrtPredictor", "batch as tiles (N, 1, T, T), a numpy array or torch tensor",
                            describe(batch), "Stack the tiles: np.stack(tiles)[:, None].")
        x = batch if isinstance(batch, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(batch))
        x = x.to("cuda", torch.float32).contiguous()
        self.context.set_input_shape(INPUT_NAME, tuple(x.shape))
        out = torch.empty(tuple(self.context.get_tensor_shape(OUTPUT_NAME)), device="cuda", dtype=torch.float32)
        self.context.set_tensor_address(INPUT_NAME, x.data_ptr())
        self.context.set_tensor_address(OUTPUT_NAME, out.data_ptr())
        self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream)
        return out


class TritonPredictor:
    """A ``segment_nuclei`` predictor that sends each tile batch to ``nuclei_unet`` on a Triton server (HTTP).

    Calling it returns numpy logits (N, C, T, T) and counts requests in ``calls``; ``close()`` ends the client.

    Args:
        http_url: the server's HTTP address, ``"host:port"`` or ``"http://host:port"``, e.g. ``server.http_url``.
        model: the served model's name.
        headers: extra HTTP headers sent with each request (e.g. a token); None sends none.

    Example:
        >>> predictor = wu.serving.TritonPredictor(server.http_url)
    """

    def __init__(self, http_url: str, model: str = NUCLEI_MODEL, headers: dict[str, str] | None = None) -> None:
        where = "TritonPredictor"
        address = http_url.removeprefix("http://") if isinstance(http_url, str) else None
        if address is None or not re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:\d{1,5})?", address):
            raise bad_input(where, "http_url as 'host:port' (or 'http://host:port')", describe(http_url),
                            "Pass server.http_url from wu.serving.serve_models(...), e.g. '127.0.0.1:8000'.")
        if not isinstance(model, str) or not re.fullmatch(r"[A-Za-z0-9._-]+", model):
            raise bad_input(where, "model as a Triton model name (letters, digits, . _ -)", describe(model),
                            "Use the name in the model repository, e.g. model='nuclei_unet'.")
        if headers is not None and not (isinstance(headers, Mapping) and
                                        all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())):
            raise bad_input(where, "headers as a dict of str to str (or None)", describe(headers),
                            "Pass e.g. headers={'Authorization': 'Bearer <token>'}, or leave it out.")
        import tritonclient.http as httpclient

        self._module = httpclient
        self._client = httpclient.InferenceServerClient(address)
        self.model = model
        self.headers = headers or {}
        self.calls = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Logits (N, C, T, T) from the server for float32 tiles (N, 1, T, T)."""
        data = as_array(batch, "TritonPredictor.__call__", "batch", ndim=4,
                        fix="Pass float32 tiles (N, 1, T, T), as segment_nuclei(model, image, predictor=...) does.")
        if data.shape[1] != 1:
            raise bad_input("TritonPredictor.__call__", "batch (N, 1, T, T) with one grey channel", describe(data),
                            "Send grey tiles: batch[:, :1], or batch[:, None] for an (N, T, T) stack.")
        data = np.ascontiguousarray(data, dtype=np.float32)
        request = self._module.InferInput(INPUT_NAME, list(data.shape), "FP32")
        request.set_data_from_numpy(data)
        result = self._client.infer(self.model, [request], outputs=[self._module.InferRequestedOutput(OUTPUT_NAME)],
                                    headers=self.headers)
        self.calls += 1
        return result.as_numpy(OUTPUT_NAME)

    def close(self) -> None:
        self._client.close()
