"""Start and stop a Triton Inference Server in its own process: free ports, readiness, logs, guaranteed cleanup.

``with wu.serve_models(models=["nuclei_unet"]) as server:`` runs :mod:`workshop_utils.triton_worker` in a new
process group on 127.0.0.1; leaving the block (normally, by an exception or Ctrl-C), the kernel exiting, or the
server object being forgotten stops it, then checks that no process, bound port or workspace is left.
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from . import paths
from .errors import WorkshopError
from .inputs import bad_input, describe, require_int, require_nonempty, require_number, require_texts
from .profiles import require_profile

DEFAULT_PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}
MODELS = ("nuclei_unet", "fixed_cost")  # what the PyTriton worker serves (a model repository may hold others)
TOKEN_HEADER = "triton-access-token"
TOKEN_ENV = "WORKSHOP_TRITON_TOKEN"
MAX_WORKSPACE_ROOT_CHARS = 60
_LIVE: "weakref.WeakSet[TritonServer]" = weakref.WeakSet()


class ServerError(WorkshopError, RuntimeError):
    """The Triton server could not start, become ready, or stop cleanly."""


class PortInUseError(ServerError):
    """A port asked for explicitly is already taken."""


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port`` (a bind test, as the server will do)."""
    _check_port(port, "serving.port_free", "port")
    if not isinstance(host, str) or not host:
        raise bad_input("serving.port_free", "host as an address string", describe(host),
                        "Leave host out (127.0.0.1, where the workshop's servers listen).")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _check_port(port: Any, where: str, name: str) -> int:
    return require_int(port, where, name, minimum=1, maximum=65535)


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
    explicit = {kind: _check_port(port, "serving.choose_ports", kind)
                for kind, port in asked.items() if port is not None}
    if len(set(explicit.values())) < len(explicit):
        raise bad_input("serving.choose_ports", "a different port for each of http, grpc and metrics", str(explicit),
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


@dataclass(eq=False)
class TritonServer:
    """A Triton server process started by :func:`serve_models`; see the module docstring."""

    command: list[str]
    ports: dict[str, int]
    workspace: Path
    log_path: Path
    models: list[str]
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    leftovers: list[str] = field(default_factory=list)
    stopped: bool = False
    _finalizer: weakref.finalize | None = field(default=None, repr=False, compare=False)

    @property
    def http_url(self) -> str:
        """``127.0.0.1:<port>``: what ``tritonclient.http.InferenceServerClient(url=...)`` expects."""
        return f"127.0.0.1:{self.ports['http']}"

    @property
    def grpc_url(self) -> str:
        """``127.0.0.1:<port>``: what ``tritonclient.grpc.InferenceServerClient(url=...)`` expects."""
        return f"127.0.0.1:{self.ports['grpc']}"

    @property
    def metrics_url(self) -> str:
        """The Prometheus text endpoint."""
        return f"http://127.0.0.1:{self.ports['metrics']}/metrics"

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers for the restricted endpoints (statistics, model repository, logging, trace, shared memory)."""
        return {TOKEN_HEADER: self.token}

    @property
    def grpc_headers(self) -> dict[str, str]:
        """The same token as gRPC metadata (Triton expects the ``triton-grpc-protocol-`` prefix there)."""
        return {f"triton-grpc-protocol-{TOKEN_HEADER}": self.token}

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> "TritonServer":
        """Launch the worker in a new session, its output going to ``log_path``."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, TOKEN_ENV: self.token, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=paths.repo_root(), env=env, start_new_session=True,
            )
        _LIVE.add(self)
        self._finalizer = weakref.finalize(self, _kill_group, self.process.pid, self.workspace)
        return self

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server's log."""
        require_int(lines, "serving.TritonServer.log_tail", "lines", minimum=1)
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log written)"
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def _get(self, path: str) -> int:
        request = urllib.request.Request(f"http://{self.http_url}{path}", headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return 0

    def ready(self) -> bool:
        """True when the server and every model answer ready."""
        return self._get("/v2/health/ready") == 200 and all(
            self._get(f"/v2/models/{name}/ready") == 200 for name in self.models
        )

    def wait_ready(self, timeout_s: float = 120.0) -> "TritonServer":
        """Block until ready; on timeout or an early exit, stop the server and raise with its log tail."""
        _check_timeout(timeout_s, "serving.TritonServer.wait_ready", "timeout_s")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                self.stop()
                raise ServerError(
                    f"The Triton server exited during start-up (exit code {code}, models={self.models}). "
                    f"Its log ({self.log_path}) ends with:\n{self.log_tail()}\n"
                    "Read the first error above; `python -m workshop_utils doctor` checks the serving stack."
                )
            if self.ready():
                return self
            time.sleep(0.25)
        self.stop()
        raise ServerError(
            f"The Triton server was not ready after {timeout_s:.0f} s (http={self.http_url}, models={self.models}). "
            f"Its log ({self.log_path}) ends with:\n{self.log_tail()}\n"
            "The machine may be busy (other labs training) or a model failed to load; retry with a larger "
            "ready_timeout_s, or read the log above."
        )

    def stop(self, timeout_s: float = 20.0) -> bool:
        """SIGINT the worker, wait, SIGKILL its process group if needed, then check and return cleanup (True = clean)."""
        _check_timeout(timeout_s, "serving.TritonServer.stop", "timeout_s")
        if self.stopped:
            return not self.leftovers
        self.stopped = True
        if self.process is not None:
            if self.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.process.send_signal(signal.SIGINT)
                try:
                    self.process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    pass
            _kill_group(self.process.pid, self.workspace)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        if self._finalizer is not None:
            self._finalizer.detach()
        _LIVE.discard(self)
        self.leftovers = self._find_leftovers()
        return not self.leftovers

    def _find_leftovers(self) -> list[str]:
        found = []
        if self.process is not None:
            found += [f"process pid={pid}" for pid in _group_pids(self.process.pid)]
        for kind, port in self.ports.items():
            deadline = time.monotonic() + 3.0  # the kernel may take a moment to release a closed socket
            while not port_free(port) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not port_free(port):
                found.append(f"{kind} port {port} still bound")
        if self.workspace.exists():
            found.append(f"workspace {self.workspace}")
        if self.process is not None:
            found += [f"shared memory {p}" for p in Path("/dev/shm").glob(f"pytrtion{self.process.pid}-*")]
        return found

    def cleanup_report(self) -> bool:
        """True when the stopped server left no process, no bound port and no workspace (see ``leftovers``)."""
        if not self.stopped:
            return False
        return not self.leftovers

    def __enter__(self) -> "TritonServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _group_pids(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
    return found


def _kill_group(pgid: int, workspace: Path) -> None:
    """SIGKILL whatever is left of a worker's process group, then remove its workspace and shared memory."""
    if _group_pids(pgid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while _group_pids(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    shutil.rmtree(workspace, ignore_errors=True)
    for leftover in Path("/dev/shm").glob(f"pytrtion{pgid}-*"):  # PyTriton's shm prefix uses the worker's pid
        with contextlib.suppress(OSError):
            leftover.unlink()


def running_servers() -> list[TritonServer]:
    """Servers started from this process and not yet stopped."""
    return [server for server in list(_LIVE) if not server.stopped]


def stop_all_servers() -> int:
    """Stop every server this process started; returns how many were running."""
    servers = running_servers()
    for server in servers:
        server.stop()
    return len(servers)


def _workspace_root() -> Path:
    """``build/triton``, or a short folder under /tmp when that path is too long for the server's unix sockets."""
    root = paths.build_dir() / "triton"
    if len(str(root.resolve())) > MAX_WORKSPACE_ROOT_CHARS:  # sockets live in the workspace; AF_UNIX allows 107
        root = Path(tempfile.gettempdir()) / f"wu-triton-{os.getuid()}"
    return root


def leftover_workspaces(all_processes: bool = False) -> list[Path]:
    """Workspaces of servers this process started (or any process's) still on disk; none once all have stopped."""
    root = _workspace_root()
    pattern = "ws-*" if all_processes else f"ws-{os.getpid()}-*"
    return sorted(p for p in root.glob(pattern) if p.is_dir()) if root.is_dir() else []


atexit.register(stop_all_servers)


def worker_command(args: Sequence[str]) -> list[str]:
    """The command line that starts a worker (tests replace this to simulate a broken server)."""
    return [sys.executable, "-m", "workshop_utils.triton_worker", *args]


def _new_workspace(keep_logs: int = 30) -> tuple[Path, Path]:
    stamp = f"{os.getpid()}-{secrets.token_hex(3)}"
    logs = paths.build_dir() / "triton" / "logs"
    for old in sorted(logs.glob("server-*.log"))[:-keep_logs] if logs.is_dir() else []:  # newest kept
        with contextlib.suppress(OSError):
            old.unlink()
    log = logs / f"server-{time.strftime('%Y%m%d-%H%M%S')}-{stamp}.log"
    return _workspace_root() / f"ws-{stamp}", log


def _check_timeout(value: Any, where: str, name: str) -> float:
    return require_number(value, where, name, minimum=0.0, strict=True)


def _check_start(where: str, models: Any, options: Mapping[str, Any]) -> list[str]:
    """Check :func:`start_server`'s arguments without starting anything; return the model names as a list."""
    unknown = sorted(set(options) - set(START_OPTIONS))
    if unknown:
        raise bad_input(where, f"options drawn from {', '.join(START_OPTIONS)}", f"unknown {unknown}",
                        "Check the spelling (help(wu.serve_models) lists them).")
    names = require_nonempty(models, where, "models", "Pass a list of model names, e.g. models=['fixed_cost'].")
    repository = options.get("repository")
    if repository is not None:
        require_texts(names, where, "models")
        if not isinstance(repository, (str, os.PathLike)) or not Path(repository).is_dir():
            got = f"{repository} (not a folder)" if isinstance(repository, (str, os.PathLike)) else describe(repository)
            raise bad_input(where, "repository as an existing model-repository folder", got,
                            "Write one first: repository = wu.write_model_repository(onnx_path, ...).")
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
            _check_port(options[f"{kind}_port"], where, f"{kind}_port")
    return names


@contextlib.contextmanager
def serve_models(
    models: Sequence[str] = ("nuclei_unet",), *, ready_timeout_s: float = 120.0, **options: Any
) -> Iterator[TritonServer]:
    """Serve ``models`` until the block ends: ``nuclei_unet`` (the ONNX at ``onnx_path``) and/or ``fixed_cost``
    (~``fixed_cost_ms`` per batch); ``options`` are :func:`start_server`'s (batching, instances, ports...)."""
    _check_start("serving.serve_models", models, options)
    _check_timeout(ready_timeout_s, "serving.serve_models", "ready_timeout_s")
    server = _start_ready(models, options, ready_timeout_s)
    try:
        yield server
    finally:
        server.stop()


def _start_ready(models: Sequence[str], options: dict[str, Any], ready_timeout_s: float) -> TritonServer:
    """Start and wait; when another process grabbed a port we had chosen as free, retry once on new ports."""
    explicit_ports = any(options.get(f"{kind}_port") for kind in DEFAULT_PORTS)
    for attempt in (1, 2):
        server = start_server(models, **options)
        try:
            return server.wait_ready(ready_timeout_s)
        except ServerError:
            server.stop()
            if attempt == 2 or explicit_ports or "already in use" not in server.log_tail(200):
                raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def serve_side_by_side(*option_sets: dict[str, Any], ready_timeout_s: float = 120.0) -> Iterator[list[TritonServer]]:
    """Several servers at once (start-ups overlap): ``with wu.serve_side_by_side(dict(models=...), dict(...)) as (a, b):``."""
    where = "serving.serve_side_by_side"
    if not option_sets or not all(isinstance(options, Mapping) for options in option_sets):
        raise bad_input(where, "one dict of serve_models options per server", describe(option_sets),
                        "Pass e.g. serve_side_by_side(dict(models=['fixed_cost']), dict(models=['fixed_cost'])).")
    for options in map(dict, option_sets):  # check every set before starting any server
        _check_start(where, options.pop("models", ("nuclei_unet",)), options)
    _check_timeout(ready_timeout_s, where, "ready_timeout_s")
    servers: list[TritonServer] = []
    try:
        for options in map(dict, option_sets):
            servers.append(_start_ready(options.pop("models", ("nuclei_unet",)), options, ready_timeout_s))
        yield servers
    finally:
        for server in servers:
            server.stop()


def start_server(
    models: Sequence[str] = ("nuclei_unet",),
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
    models = _check_start("serving.start_server", models, options)
    args = ["--models", *models]
    if repository is not None:
        args += ["--repository", str(repository), "--binary", str(binary or "tritonserver")]
    elif "nuclei_unet" in models:
        if onnx_path is None or not Path(onnx_path).is_file():
            raise ServerError(
                f"nuclei_unet needs its ONNX file: expected onnx_path to be an existing .onnx file; got {onnx_path}. "
                "Lab 02 exports it: "
                "call workshop_utils.acceleration.ensure_nuclei_onnx(profile) and pass its result as onnx_path."
            )
        args += ["--onnx", str(Path(onnx_path).resolve())]
    ports = choose_ports(http_port, grpc_port, metrics_port)
    workspace, log_path = _new_workspace()
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


def serve_until_interrupted(profile: str = "smoke", *, models: Sequence[str] = ("nuclei_unet",), **ports: Any) -> int:
    """``make serve``: build the ONNX model if needed, serve it in the foreground, stop cleanly on Ctrl-C/SIGTERM."""
    where = "serving.serve_until_interrupted"
    require_profile(profile, where, allow_auto=True)
    port_names = {f"{kind}_port" for kind in DEFAULT_PORTS}
    if not set(ports) <= port_names:
        raise bad_input(where, f"keyword options drawn from {', '.join(sorted(port_names))}",
                        f"unknown {sorted(set(ports) - port_names)}", "Pass only ports, e.g. http_port=8000.")
    _check_start(where, models, ports)
    onnx_path = None
    if "nuclei_unet" in models:
        from .acceleration import ensure_nuclei_onnx
        from .profiles import choose_profile

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


# Re-exported so notebooks reach the load-test and repository helpers as ``wu.<name>`` too.
from .triton_load import LoadResult, batching_summary, plot_sweep, read_metrics, run_load, sweep  # noqa: E402
from .triton_repository import config_pbtxt, onnx_io, repository_models, write_model_repository  # noqa: E402
