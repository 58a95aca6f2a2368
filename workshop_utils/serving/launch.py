"""Start servers the way labs and ``make serve`` do: checked options, readiness, several side by side, until Ctrl-C.

``with wu.serving.serve_models(models=["nuclei_unet"]) as server:`` starts one server and stops it on leaving the
block; :func:`serve_side_by_side` starts several at once (lab 03 compares configurations that way).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from workshop_utils.core.contract import (
    MODELS,
    NUCLEI_MODEL,
    TOKEN_HEADER,
)
from workshop_utils.core.errors import PortInUseError, ServerError
from workshop_utils.core.inputs import (
    bad_input,
    describe,
    require_folder,
    require_int,
    require_nonempty,
    require_number,
    require_texts,
)
from workshop_utils.core.profiles import require_profile
from workshop_utils.serving.ports import DEFAULT_PORTS, listening_sockets, port_free, require_port
from workshop_utils.serving.repository import onnx_io
from workshop_utils.serving.server import TritonServer, new_workspace, running_servers, worker_command


def _any_free_port(taken: set[int]) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port

def choose_ports(http: int | None = None, grpc: int | None = None, metrics: int | None = None) -> dict[str, int]:
    """Ports for the server: the ones asked for (error if taken), else 8000/8001/8002 when free, else free ones."""
    asked = {"http": http, "grpc": grpc, "metrics": metrics}
    explicit = {kind: require_port(port, "choose_ports", kind)
                for kind, port in asked.items() if port is not None}
    if len(set(explicit.values())) < len(explicit):
        raise bad_input("choose_ports", "a different port for each of http, grpc and metrics", str(explicit),
                        "Give each its own port, or pass None for some to let the workshop choose free ones.")
    chosen: dict[str, int] = {}
    starting = {p for server in running_servers() for p in server.ports.values()}  # may not be bound yet
    for kind, port in asked.items():
        if port is not None:
            if not port_free(port) or port in chosen.values() or port in starting:
                raise PortInUseError(
                    f"Port {port} ({kind}) is already in use on 127.0.0.1. Another Triton server (an earlier lab "
                    f"run, `make serve`) probably holds it. Stop that server, or pick another port "
                    f"({kind}_port=...), or pass {kind}_port=None to let the workshop choose a free one."
                )
            chosen[kind] = port
    for kind, port in asked.items():
        if port is None:
            default = DEFAULT_PORTS[kind]
            usable = default not in chosen.values() and default not in starting and port_free(default)
            chosen[kind] = default if usable else _any_free_port(set(chosen.values()) | starting)
    return chosen


def _check_timeout(value: Any, where: str, name: str) -> float:
    return require_number(value, where, name, minimum=0.0, strict=True)


def _check_start(where: str, models: Any, options: Mapping[str, Any]) -> list[str]:
    """Check :func:`start_server`'s arguments without starting anything; return the model names as a list."""
    unknown = sorted(set(options) - set(START_OPTIONS))
    if unknown:
        raise bad_input(where, f"options drawn from {', '.join(START_OPTIONS)}", f"unknown {unknown}",
                        "Check the spelling (help(wu.serving.serve_models) lists them).")
    # require_nonempty returns a list; the checks below ensure each name is a string
    names = cast("list[str]", require_nonempty(models, where, "models",
                                               "Pass a list of model names, e.g. models=['fixed_cost']."))
    repository = options.get("repository")
    if repository is not None:
        require_texts(names, where, "models")
        require_folder(repository, where, "repository",
                       "Write one first: repository = wu.serving.write_model_repository(onnx_path, ...).")
    elif any(name not in MODELS for name in names):
        raise bad_input(where, f"a non-empty list of model names drawn from {MODELS}", f"models={names}",
                        "Serve those two with PyTriton, or pass repository=... to serve a model repository.")
    for name, low in (("instances", 1), ("max_batch_size", 1), ("max_queue_delay_us", 0)):
        if name in options:
            require_int(options[name], where, name, minimum=low)
    if "fixed_cost_ms" in options:
        require_number(options["fixed_cost_ms"], where, "fixed_cost_ms", minimum=0.0)
    if not isinstance(options.get("dynamic_batching", True), bool):
        raise bad_input(where, "dynamic_batching as True or False", describe(options["dynamic_batching"]),
                        "Pass dynamic_batching=True (the default) or False.")
    for kind in DEFAULT_PORTS:
        if options.get(f"{kind}_port") is not None:
            require_port(options[f"{kind}_port"], where, f"{kind}_port")
    return names


@contextlib.contextmanager
def serve_models(
    models: Sequence[str] = (NUCLEI_MODEL,), *, ready_timeout_s: float = 120.0, **options: Any
) -> Iterator[TritonServer]:
    """Serve ``models`` until the block ends: ``nuclei_unet`` (the ONNX at ``onnx_path``) and/or ``fixed_cost``
    (~``fixed_cost_ms`` per batch); ``options`` are :func:`start_server`'s (batching, instances, ports...).

    If a port chosen as free is taken by another process before the server binds it (another server starting at
    the same moment), the start is tried again on new ports, up to :data:`START_ATTEMPTS` starts in all (not when
    ports were given explicitly).

    Args:
        models: model names to serve: ``"nuclei_unet"`` and/or ``"fixed_cost"``, or a repository's models.
        ready_timeout_s: how long to wait for the server to report ready (s) before raising ``ServerError``.
        **options: :func:`start_server`'s keywords, e.g. ``onnx_path``, ``dynamic_batching``, ``max_queue_delay_us``.

    Returns:
        A context manager; ``with ... as server`` gives the ready :class:`TritonServer` (``server.http_url``,
        ``server.grpc_url``, ``server.metrics_url``), stopped when the block ends.

    Example:
        >>> with wu.serving.serve_models(["nuclei_unet"], onnx_path=onnx_path) as server:
        ...     predictor = wu.serving.TritonPredictor(server.http_url)
    """
    _check_start("serve_models", models, options)
    _check_timeout(ready_timeout_s, "serve_models", "ready_timeout_s")
    server = _start_ready(models, options, ready_timeout_s)
    try:
        yield server
    finally:
        server.stop()


START_ATTEMPTS = 3  # the default ports, then twice on ports the kernel hands out (a second collision is rare)


def _met_another_server(server: TritonServer, error: ServerError) -> bool:
    """True when a start that failed met another process on one of its ports (and left nothing of its own).

    Two servers starting at once (two labs, two attendees, a test beside a lab) can both find 8000 free and both
    take it; the one that loses cannot bind, and PyTriton's start-up checks may then reach the winner (which
    answers ``403 ... triton-access-token``, since each server has its own token) or nobody.
    """
    if "already in use" in server.log_tail(200) or "could not start: another Triton" in str(error):
        return True
    if server.ports_held_elsewhere:  # another process's socket listened on one of its ports as it stopped
        return True
    # Without /proc/net (not Linux) nobody can tell whose socket it is: a port still bound is the best sign.
    no_proc_net = listening_sockets(()) is None
    return no_proc_net and bool(server.leftovers) and all(item.endswith("still bound") for item in server.leftovers)


def _start_ready(models: Sequence[str], options: dict[str, Any], ready_timeout_s: float) -> TritonServer:
    """Start and wait; when another process took a port chosen as free, start again on new ports (bounded)."""
    explicit_ports = any(options.get(f"{kind}_port") for kind in DEFAULT_PORTS)
    for attempt in range(1, START_ATTEMPTS + 1):
        server = start_server(models, **options)
        try:
            return server.wait_ready(ready_timeout_s)
        except ServerError as error:
            server.stop()
            if attempt == START_ATTEMPTS or explicit_ports or not _met_another_server(server, error):
                raise
            avoid = set(server.ports.values()) | set(DEFAULT_PORTS.values())
            avoid |= {port for other in running_servers() for port in other.ports.values()}
            fresh: dict[str, int] = {}
            for kind in DEFAULT_PORTS:
                fresh[kind] = _any_free_port(avoid | set(fresh.values()))
            print(f"Another process took this server's ports ({', '.join(map(str, server.ports.values()))}) as it "
                  f"started; starting again on {', '.join(map(str, fresh.values()))}.")
            options = {**options, **{f"{kind}_port": port for kind, port in fresh.items()}}
    raise AssertionError("unreachable")


@contextlib.contextmanager
def serve_side_by_side(*option_sets: dict[str, Any], ready_timeout_s: float = 120.0) -> Iterator[list[TritonServer]]:
    """Several servers at once: ``with wu.serving.serve_side_by_side(dict(models=...), dict(...)) as (a, b):``.

    Every option set is checked before any server starts; then each server is started and waited for in turn (the
    start-ups do not overlap). Leaving the block stops them all.

    Args:
        *option_sets: one dict per server of :func:`serve_models` keywords, ``models`` included.
        ready_timeout_s: how long to wait for each server to report ready (s).

    Returns:
        A context manager; ``with ... as servers`` gives the ready :class:`TritonServer` objects in argument order.

    Example:
        >>> with wu.serving.serve_side_by_side(dict(models=MODELS, onnx_path=onnx_path, dynamic_batching=False),
        ...                                    dict(models=MODELS, onnx_path=onnx_path)) as (off, on):
    """
    where = "serve_side_by_side"
    if not option_sets or not all(isinstance(options, Mapping) for options in option_sets):
        raise bad_input(where, "one dict of serve_models options per server", describe(option_sets),
                        "Pass e.g. serve_side_by_side(dict(models=['fixed_cost']), dict(models=['fixed_cost'])).")
    for options in map(dict, option_sets):  # check every set before starting any server
        _check_start(where, options.pop("models", (NUCLEI_MODEL,)), options)
    _check_timeout(ready_timeout_s, where, "ready_timeout_s")
    servers: list[TritonServer] = []
    try:
        for options in map(dict, option_sets):
            servers.append(_start_ready(options.pop("models", (NUCLEI_MODEL,)), options, ready_timeout_s))
        yield servers
    finally:
        for server in servers:
            server.stop()


def start_server(
    models: Sequence[str] = (NUCLEI_MODEL,),
    *,
    onnx_path: str | Path | None = None,
    repository: str | Path | None = None,
    binary: str | None = None,
    dynamic_batching: bool = True,
    max_queue_delay_us: int = 0,
    instances: int = 1,
    max_batch_size: int = 16,
    fixed_cost_ms: float = 10.0,
    http_port: int | None = None,
    grpc_port: int | None = None,
    metrics_port: int | None = None,
) -> TritonServer:
    """Launch a worker without waiting for it (prefer :func:`serve_models`); with ``repository`` (and a standalone
    ``binary``) it serves that model repository instead of PyTriton's models."""
    options = {name: value for name, value in locals().items() if name != "models"}  # every argument but models
    models = _check_start("start_server", models, options)
    args = ["--models", *models]
    if repository is not None:
        args += ["--repository", str(repository), "--binary", str(binary or "tritonserver")]
    elif NUCLEI_MODEL in models:
        if onnx_path is None or not Path(onnx_path).is_file():
            raise ServerError(
                f"nuclei_unet needs its ONNX file: expected onnx_path to be an existing .onnx file; got {onnx_path}. "
                "Lab 02 exports it: "
                "call workshop_utils.acceleration.ensure_nuclei_onnx(profile) and pass its result as onnx_path."
            )
        args += ["--onnx", str(Path(onnx_path).resolve())]
    ports = choose_ports(http_port, grpc_port, metrics_port)
    workspace, log_path = new_workspace()
    args += [
        "--workspace", str(workspace), "--http-port", str(ports["http"]), "--grpc-port", str(ports["grpc"]),
        "--metrics-port", str(ports["metrics"]),
        "--dynamic-batching" if dynamic_batching else "--no-dynamic-batching",
        "--max-queue-delay-us", str(max_queue_delay_us), "--max-batch-size", str(max_batch_size),
        "--instances", str(instances), "--fixed-cost-ms", str(fixed_cost_ms), "--parent-pid", str(os.getpid()),
    ]
    server = TritonServer(worker_command(args), ports, workspace, log_path, list(models))
    return server.start()


START_OPTIONS: tuple[str, ...] = tuple(inspect.signature(start_server).parameters)[1:]  # all but models


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def serve_until_interrupted(profile: str = "smoke", *, models: Sequence[str] = (NUCLEI_MODEL,), **ports: Any) -> int:
    """``make serve``: build the ONNX model if needed, serve it in the foreground, stop cleanly on Ctrl-C/SIGTERM."""
    where = "serve_until_interrupted"
    require_profile(profile, where, allow_auto=True)
    port_names = {f"{kind}_port" for kind in DEFAULT_PORTS}
    if not set(ports) <= port_names:
        raise bad_input(where, f"keyword options drawn from {', '.join(sorted(port_names))}",
                        f"unknown {sorted(set(ports) - port_names)}", "Pass only ports, e.g. http_port=8000.")
    _check_start(where, models, ports)
    onnx_path = None
    if NUCLEI_MODEL in models:
        from workshop_utils.acceleration import ensure_nuclei_onnx
        from workshop_utils.core.profiles import choose_profile

        onnx_path = ensure_nuclei_onnx(choose_profile(profile))
    # Both signals stop the server, also when this process was started with SIGINT ignored (a background job of a
    # non-interactive shell inherits SIG_IGN, and Python then never raises KeyboardInterrupt for Ctrl-C).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    parent = os.getppid()
    try:
        with serve_models(models, onnx_path=onnx_path, **ports) as server:
            io = onnx_io(onnx_path) if onnx_path else None
            print(f"Triton is serving {list(models)} on 127.0.0.1 — HTTP {server.http_url}, gRPC {server.grpc_url}, "
                  f"metrics {server.metrics_url}")
            if io:
                print(f"nuclei_unet: input {io['input'][0]!r} FP32 [N, {', '.join(map(str, io['input'][1]))}] -> "
                      f"output {io['output'][0]!r} FP32 [N, {', '.join(map(str, io['output'][1]))}]")
            print(f"Token for the restricted endpoints (statistics, model repository): header "
                  f"'{TOKEN_HEADER}: {server.token}'\nLog: {server.log_path}\nPress Ctrl-C to stop.", flush=True)
            while server.process is not None and server.process.poll() is None and os.getppid() == parent:
                time.sleep(0.5)
            if server.process is not None and server.process.poll() is not None:
                print(f"The server exited on its own; its log ends with:\n{server.log_tail()}", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass
    clean = not server.leftovers if "server" in locals() else True
    print("Server stopped; nothing left running." if clean else f"Stopped, but left behind: {server.leftovers}")
    return 0 if clean else 1
