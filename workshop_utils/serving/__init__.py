"""Serving the nuclei model with Triton Inference Server (lab 03, the capstone, ``make serve``).

- the names client and server agree on (tensor and model names, the token) live in :mod:`workshop_utils.core.contract`, torch-free, and are re-exported here;
- :mod:`~workshop_utils.serving.predictors`: the forward pass of ``segment_nuclei`` on ONNX Runtime, TensorRT or
  a Triton server, behind one protocol;
- :mod:`~workshop_utils.serving.server`: one server process, its workspace, and the proof it left nothing;
- :mod:`~workshop_utils.serving.launch`: start servers with checked options, side by side, until Ctrl-C;
- :mod:`~workshop_utils.serving.ports`: default ports and whether one is free;
- :mod:`~workshop_utils.serving.worker`: the server process itself (PyTriton), run as ``python -m``;
- :mod:`~workshop_utils.serving.repository`: a Triton model repository for ``tritonserver``;
- :mod:`~workshop_utils.serving.load`: load tests, sweeps and Triton's own metrics.

Notebooks call these as ``wu.serving.<name>``.
"""

from workshop_utils.core.contract import (
    FIXED_COST_MODEL,
    GRPC_TOKEN_HEADER,
    INPUT_NAME,
    MODELS,
    NUCLEI_MODEL,
    OUTPUT_NAME,
    TOKEN_ENV,
    TOKEN_HEADER,
)
from workshop_utils.serving.launch import (
    START_OPTIONS,
    choose_ports,
    serve_models,
    serve_side_by_side,
    serve_until_interrupted,
    start_server,
)
from workshop_utils.serving.load import LoadResult, plot_sweep, run_load, sweep
from workshop_utils.serving.metrics import batching_summary, read_metrics
from workshop_utils.serving.ports import DEFAULT_PORTS, port_free
from workshop_utils.serving.predictors import NucleiPredictor, OrtPredictor, TritonPredictor, TrtPredictor
from workshop_utils.serving.repository import config_pbtxt, onnx_io, repository_models, write_model_repository
from workshop_utils.serving.server import TritonServer, leftover_workspaces, running_servers, stop_all_servers

__all__ = [
    "DEFAULT_PORTS",
    "START_OPTIONS",
    "FIXED_COST_MODEL",
    "GRPC_TOKEN_HEADER",
    "INPUT_NAME",
    "NUCLEI_MODEL",
    "OUTPUT_NAME",
    "NucleiPredictor",
    "OrtPredictor",
    "TritonPredictor",
    "TrtPredictor",
    "MODELS",
    "TOKEN_ENV",
    "TOKEN_HEADER",
    "LoadResult",
    "TritonServer",
    "batching_summary",
    "choose_ports",
    "config_pbtxt",
    "leftover_workspaces",
    "onnx_io",
    "plot_sweep",
    "port_free",
    "read_metrics",
    "repository_models",
    "run_load",
    "running_servers",
    "serve_models",
    "serve_side_by_side",
    "serve_until_interrupted",
    "start_server",
    "stop_all_servers",
    "sweep",
    "write_model_repository",
]
