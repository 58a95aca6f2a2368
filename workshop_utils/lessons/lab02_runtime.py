"""Lab 02's lesson code, copied by ``make export`` from notebooks/02_tensorrt_acceleration.ipynb.

Do not edit: change the notebook's ``#| export`` cells and run ``make export``; tests/test_lessons.py
fails while this file and the notebook differ.
"""
# ruff: noqa: E402, I001  (each cell brings its own imports, where the notebook shows them)

from __future__ import annotations


from pathlib import Path

import onnxruntime as ort


def ort_session(path: Path, *, optimize: bool = True, threads: int = 1,
                spinning: bool = False) -> ort.InferenceSession:
    """An ONNX Runtime CPU session: ``threads`` threads per operator, spinning off unless asked, every graph
    optimisation unless ``optimize=False``."""
    options = ort.SessionOptions()
    spin = "1" if spinning else "0"  # "0": an idle worker thread sleeps instead of busy-waiting for more work
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)  # threads inside one operator
    options.add_session_config_entry("session.inter_op.allow_spinning", spin)  # threads across operators
    options.intra_op_num_threads = threads  # threads that split one operator (a convolution) between them
    options.inter_op_num_threads = 1        # operators run one after another: the UNet is a chain
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize  # fusions, constant folding, CPU-specific layouts
        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL        # the exported graph as it is, for comparison
    )
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
