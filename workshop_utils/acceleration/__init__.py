"""Lab 02's acceleration path for the nuclei model (``wu.acceleration.<name>``): PyTorch -> ONNX -> a runtime.

- :mod:`~workshop_utils.acceleration.onnx_export`: ``torch.onnx.export`` with a dynamic batch axis, and what an
  exported model holds;
- :mod:`~workshop_utils.acceleration.onnx_runtime`: ONNX Runtime sessions, the graph ORT runs, INT8 quantisation;
- :mod:`~workshop_utils.acceleration.tensorrt_engine`: TensorRT where it exists, and why not where it does not.

The predictors that plug a runtime into ``wu.nuclei.segment_nuclei`` live in :mod:`workshop_utils.serving.predictors`.
Importing this package does not import torch (the Triton worker uses :func:`ort_session`).
"""

from workshop_utils.acceleration.onnx_export import (
    CONFIG_KEY,
    ONNX_NAME,
    describe_onnx,
    ensure_nuclei_onnx,
    export_onnx,
    read_nuclei_config,
)
from workshop_utils.acceleration.onnx_runtime import (
    FUSION_PROBE_ACTIVATIONS,
    fusion_probe,
    optimised_ops,
    ort_session,
    quantize_int8,
)
from workshop_utils.acceleration.tensorrt_engine import (
    PRECISIONS,
    TENSORRT_MISSING,
    build_trt_engine,
    tensorrt_status,
    trtexec_command,
)

__all__ = [
    "CONFIG_KEY",
    "FUSION_PROBE_ACTIVATIONS",
    "ONNX_NAME",
    "PRECISIONS",
    "TENSORRT_MISSING",
    "build_trt_engine",
    "describe_onnx",
    "ensure_nuclei_onnx",
    "export_onnx",
    "fusion_probe",
    "optimised_ops",
    "ort_session",
    "quantize_int8",
    "read_nuclei_config",
    "tensorrt_status",
    "trtexec_command",
]
