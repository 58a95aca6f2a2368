"""Write a Triton model repository (``config.pbtxt`` per model) for a standalone ``tritonserver``.

PyTriton serves Python callables; production Triton (the NGC container) serves a folder like this one, where the
onnxruntime or tensorrt backend runs the model in C++ with dynamic batching and instance groups.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from . import paths


def onnx_io(onnx_path: str | Path) -> dict[str, Any]:
    """Names and per-item dims of the model's single input and output: ``{"input": ("image", [1, T, T]), ...}``."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ValueError(f"{onnx_path}: expected one input and one output, got {len(inputs)} and {len(graph.output)}.")

    def dims(value: Any) -> list[int]:
        shape = value.type.tensor_type.shape.dim[1:]  # drop the batch axis
        return [int(d.dim_value) if d.HasField("dim_value") else -1 for d in shape]

    return {"input": (inputs[0].name, dims(inputs[0])), "output": (graph.output[0].name, dims(graph.output[0]))}


def config_pbtxt(
    name: str,
    io: dict[str, Any],
    *,
    backend: str = "onnxruntime",
    max_batch_size: int = 16,
    dynamic_batching: bool = True,
    max_queue_delay_us: int = 500,
    preferred_batch_sizes: tuple[int, ...] = (4, 8),
    instances: int = 1,
    kind: str = "KIND_GPU",
) -> str:
    """The ``config.pbtxt`` text for one model (``backend``: ``onnxruntime`` or ``tensorrt``)."""
    if backend not in ("onnxruntime", "tensorrt"):
        raise ValueError(f"backend={backend!r}: expected 'onnxruntime' or 'tensorrt'.")
    if kind not in ("KIND_GPU", "KIND_CPU"):
        raise ValueError(f"kind={kind!r}: expected 'KIND_GPU' or 'KIND_CPU'.")
    (in_name, in_dims), (out_name, out_dims) = io["input"], io["output"]
    head = f'name: "{name}"\n' + (
        'platform: "tensorrt_plan"\n' if backend == "tensorrt" else 'backend: "onnxruntime"\n'
    )
    lines = [
        head + f"max_batch_size: {max_batch_size}",
        f'input [\n  {{ name: "{in_name}", data_type: TYPE_FP32, dims: {in_dims} }}\n]',
        f'output [\n  {{ name: "{out_name}", data_type: TYPE_FP32, dims: {out_dims} }}\n]',
        f"instance_group [\n  {{ count: {instances}, kind: {kind} }}\n]",
    ]
    if dynamic_batching:
        sizes = ", ".join(str(s) for s in preferred_batch_sizes if s <= max_batch_size)
        lines.append(
            "dynamic_batching {\n"
            + (f"  preferred_batch_size: [ {sizes} ]\n" if sizes else "")
            + f"  max_queue_delay_microseconds: {max_queue_delay_us}\n}}"
        )
    return "\n".join(lines) + "\n"


def write_model_repository(
    onnx_path: str | Path,
    root: str | Path | None = None,
    *,
    plan_path: str | Path | None = None,
    kind: str = "KIND_GPU",
    **options: Any,
) -> Path:
    """Write ``nuclei_unet`` (onnxruntime) and, given a TensorRT engine, ``nuclei_unet_trt`` into ``root``."""
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"onnx_path={onnx_path} does not exist; lab 02 exports it (ensure_nuclei_onnx).")
    repo = Path(root) if root is not None else paths.build_dir() / "triton" / "model_repository"
    shutil.rmtree(repo, ignore_errors=True)
    io = onnx_io(onnx_path)
    models: list[tuple[str, str, Path, str]] = [("nuclei_unet", "onnxruntime", onnx_path, "model.onnx")]
    if plan_path is not None:
        models.append(("nuclei_unet_trt", "tensorrt", Path(plan_path), "model.plan"))
    for name, backend, source, filename in models:
        version = repo / name / "1"
        version.mkdir(parents=True)
        if backend == "onnxruntime":  # one self-contained file: the exporter may keep weights in a side .data file
            import onnx

            onnx.save(onnx.load(str(source)), str(version / filename))
        else:
            shutil.copyfile(source, version / filename)
        text = config_pbtxt(name, io, backend=backend, kind=kind, **options)
        (repo / name / "config.pbtxt").write_text(text, encoding="utf-8")
    return repo


def repository_models(repo: str | Path) -> list[str]:
    """Model names in a repository (folders holding a ``config.pbtxt``)."""
    return sorted(p.parent.name for p in Path(repo).glob("*/config.pbtxt"))
