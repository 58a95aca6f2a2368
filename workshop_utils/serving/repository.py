"""Write a Triton model repository (``config.pbtxt`` per model) for a standalone ``tritonserver``.

PyTriton serves Python callables; production Triton (the NGC container) serves a folder like this one, where the
onnxruntime or tensorrt backend runs the model in C++ with dynamic batching and instance groups.
"""

from __future__ import annotations

import inspect
import numbers
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from workshop_utils.core import paths
from workshop_utils.core.contract import NUCLEI_MODEL
from workshop_utils.core.errors import InputError, MissingFileError
from workshop_utils.core.inputs import bad_input, describe, require_choice, require_file, require_int, require_path

BACKENDS: tuple[str, ...] = ("onnxruntime", "tensorrt")
KINDS: tuple[str, ...] = ("KIND_GPU", "KIND_CPU")
EXPORT_FIX = "Export it first: acceleration.ensure_nuclei_onnx(PROFILE) (lab 02)."
PLAN_FIX = "Build it on a GPU machine with acceleration.build_trt_engine, or leave plan_path out."


def _model_file(value: Any, where: str, name: str, fix: str) -> Path:
    try:
        return require_file(value, where, name, fix)
    except InputError as err:
        raise MissingFileError(str(err)) from None


def _require_io(io: Any, where: str) -> None:
    """``io`` shaped like :func:`onnx_io`'s answer: {"input": (name, dims), "output": (name, dims)}."""
    def entry(value: Any) -> bool:
        return (isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[0], str) and
                isinstance(value[1], (tuple, list)) and all(isinstance(d, numbers.Integral) for d in value[1]))

    if not (isinstance(io, Mapping) and entry(io.get("input")) and entry(io.get("output"))):
        raise bad_input(where, "io as onnx_io's answer {'input': (name, dims), 'output': (name, dims)}", describe(io),
                        "Pass io = wu.serving.onnx_io(onnx_path).")


def onnx_io(onnx_path: str | Path) -> dict[str, Any]:
    """Names and per-item dims of the model's single input and output: ``{"input": ("image", [1, T, T]), ...}``.

    Args:
        onnx_path: an ONNX model with one input and one output (weights are not loaded).

    Returns:
        ``{"input": (name, dims), "output": (name, dims)}``; dims exclude the batch axis, -1 marks a symbolic one.

    Example:
        >>> io = wu.serving.onnx_io(onnx_path)
    """
    import onnx
    from google.protobuf.message import Error as ProtobufError

    source = _model_file(onnx_path, "onnx_io", "onnx_path", EXPORT_FIX)
    try:
        model = onnx.load(str(source), load_external_data=False)
    except ProtobufError as err:
        raise bad_input("onnx_io", "onnx_path to be an ONNX model", f"{source}, which protobuf cannot parse ({err})",
                        EXPORT_FIX) from None
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise bad_input("onnx_io", "a model with one input and one output (image -> logits)",
                        f"{len(inputs)} inputs and {len(graph.output)} outputs in {source}",
                        "Serve the nuclei model exported by acceleration.export_onnx.")

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
    """The ``config.pbtxt`` text for one model (``backend``: ``onnxruntime`` or ``tensorrt``).

    Args:
        name: the model's name, which is also its folder in the repository (letters, digits, ``.``, ``_``, ``-``).
        io: the input and output names and dims, from :func:`onnx_io`.
        backend: ``"onnxruntime"`` for an ``.onnx`` model, ``"tensorrt"`` for a ``.plan`` engine.
        max_batch_size: the largest batch Triton sends to one execution.
        dynamic_batching: True lets Triton merge queued requests into one batch.
        max_queue_delay_us: the longest a request waits for others to batch with (µs).
        preferred_batch_sizes: batch sizes the batcher aims for; those above ``max_batch_size`` are dropped.
        instances: copies of the model that run at once.
        kind: ``"KIND_GPU"`` or ``"KIND_CPU"``: where the instances run.

    Returns:
        The config text, ending in a newline.

    Example:
        >>> print(wu.serving.config_pbtxt("nuclei_unet_trt", io, backend="tensorrt", max_queue_delay_us=500))
    """
    where = "config_pbtxt"
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise bad_input(where, "name as a model name (letters, digits, . _ -)", describe(name),
                        "Use the model's folder name in the repository, e.g. 'nuclei_unet'.")
    _require_io(io, where)
    require_choice(backend, where, "backend", BACKENDS)
    require_choice(kind, where, "kind", KINDS, "KIND_CPU runs the model on the CPU, KIND_GPU on a GPU.")
    require_int(max_batch_size, where, "max_batch_size", minimum=1)
    require_int(max_queue_delay_us, where, "max_queue_delay_us", minimum=0)
    require_int(instances, where, "instances", minimum=1)
    if isinstance(preferred_batch_sizes, (str, bytes)) or not isinstance(preferred_batch_sizes, Iterable):
        raise bad_input(where, "preferred_batch_sizes as a tuple of ints", describe(preferred_batch_sizes),
                        "Pass e.g. preferred_batch_sizes=(4, 8).")
    preferred_batch_sizes = tuple(require_int(size, where, f"preferred_batch_sizes[{i}]", minimum=1)
                                  for i, size in enumerate(preferred_batch_sizes))
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


# Settings write_model_repository passes on to config_pbtxt.
CONFIG_OPTIONS: tuple[str, ...] = tuple(
    name for name, param in inspect.signature(config_pbtxt).parameters.items()
    if param.kind is param.KEYWORD_ONLY and name not in ("backend", "kind"))


def write_model_repository(
    onnx_path: str | Path,
    root: str | Path | None = None,
    *,
    plan_path: str | Path | None = None,
    kind: str = "KIND_GPU",
    **options: Any,
) -> Path:
    """Write ``nuclei_unet`` (onnxruntime) and, given a TensorRT engine, ``nuclei_unet_trt`` into ``root``.

    ``root`` is deleted and rewritten, so it must be a new folder or a model repository (model folders only).

    Args:
        onnx_path: the exported nuclei model (``.onnx``), served by the onnxruntime backend.
        root: the repository folder; None means ``build/triton/model_repository``.
        plan_path: a TensorRT engine (``.plan``) to serve as ``nuclei_unet_trt`` too; None for none.
        kind: ``"KIND_GPU"`` or ``"KIND_CPU"``: where the model instances run.
        **options: :func:`config_pbtxt` settings, e.g. ``max_queue_delay_us=500`` or ``instances=2``.

    Returns:
        The repository folder: ``<root>/<model>/config.pbtxt`` and ``<root>/<model>/1/model.onnx`` (or ``.plan``).

    Example:
        >>> repository = wu.serving.write_model_repository(onnx_path, kind="KIND_CPU")
    """
    where = "write_model_repository"
    onnx_path = _model_file(onnx_path, where, "onnx_path", EXPORT_FIX)
    plan = None if plan_path is None else _model_file(plan_path, where, "plan_path", PLAN_FIX)
    unknown = sorted(set(options) - set(CONFIG_OPTIONS))
    if unknown:
        raise bad_input(where, f"options among the known ones: {', '.join(CONFIG_OPTIONS)}", ", ".join(unknown),
                        "Check the spelling (they are config_pbtxt's settings).")
    repo = require_path(root, where, "root", "Pass e.g. root=wu.build_dir() / 'triton' / 'model_repository', or "
                        "leave it out.", default=paths.build_dir() / "triton" / "model_repository")
    if repo.exists() and (not repo.is_dir() or any(child.is_file() for child in repo.iterdir())):
        raise bad_input(where, "root as a new folder or a model repository (model folders only)",
                        f"{repo}, which {'is a file' if not repo.is_dir() else 'holds files'}",
                        "This call deletes and rewrites root: pick a new folder, e.g. wu.build_dir() / 'repo'.")
    io = onnx_io(onnx_path)
    models: list[tuple[str, str, Path, str]] = [(NUCLEI_MODEL, "onnxruntime", onnx_path, "model.onnx")]
    if plan is not None:
        models.append(("nuclei_unet_trt", "tensorrt", plan, "model.plan"))
    texts = {name: config_pbtxt(name, io, backend=backend, kind=kind, **options) for name, backend, _, _ in models}
    shutil.rmtree(repo, ignore_errors=True)  # only once every setting has been checked
    for name, backend, source, filename in models:
        version = repo / name / "1"
        version.mkdir(parents=True)
        if backend == "onnxruntime":  # one self-contained file: the exporter may keep weights in a side .data file
            import onnx

            onnx.save(onnx.load(str(source)), str(version / filename))
        else:
            shutil.copyfile(source, version / filename)
        (repo / name / "config.pbtxt").write_text(texts[name], encoding="utf-8")
    return repo


def repository_models(repo: str | Path) -> list[str]:
    """Model names in a repository (folders holding a ``config.pbtxt``).

    Args:
        repo: an existing model repository folder, e.g. from :func:`write_model_repository`.

    Returns:
        The model names, sorted.

    Example:
        >>> wu.serving.repository_models(repository)
    """
    folder = Path(repo) if isinstance(repo, (str, os.PathLike)) and str(repo) else None
    if folder is None or not folder.is_dir():
        got = describe(repo) if folder is None else f"{folder} ({'a file' if folder.exists() else 'missing'})"
        raise bad_input("repository_models", "repo as an existing model repository folder", got,
                        "Write one first: repo = wu.serving.write_model_repository(onnx_path).")
    return sorted(p.parent.name for p in folder.glob("*/config.pbtxt"))
