"""One Triton Inference Server process: start it, wait until ready, stop it, and prove nothing is left behind.

A :class:`TritonServer` runs :mod:`workshop_utils.serving.worker` in a new process group on 127.0.0.1. Leaving a
``with`` block (normally, by an exception or Ctrl-C), the kernel exiting, or the object being forgotten stops it,
then checks that no process, bound port, shared-memory region or workspace is left.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workshop_utils.core import paths
from workshop_utils.core.contract import (
    GRPC_TOKEN_HEADER,
    TOKEN_ENV,
    TOKEN_HEADER,
    shared_memory_regions,
    tensor_store_segments,
    unlink_all,
)
from workshop_utils.core.errors import ServerError
from workshop_utils.core.inputs import require_int, require_number
from workshop_utils.serving.ports import listening_sockets, ports_still_held, socket_inodes

RESTRICTED_PROBE = "/v2/logging"  # behind the access token on PyTriton's Triton and on ours started with a token

MAX_WORKSPACE_ROOT_CHARS = 60
_LIVE: weakref.WeakSet[TritonServer] = weakref.WeakSet()


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
    # the tensor store's psm_* segments the worker's group had mapped when stop() began: each must be gone after
    segments_at_stop: set[Path] = field(default_factory=set, repr=False)
    # {socket inode: port} of the listeners this server's processes held (seen when ready and when stop() began)
    own_listeners: dict[int, int] = field(default_factory=dict, repr=False)
    # this server's ports on which, when stop() began, another process listened (it took them first)
    ports_held_elsewhere: list[int] = field(default_factory=list, repr=False)
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
        return {GRPC_TOKEN_HEADER: self.token}

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> TritonServer:
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
        require_int(lines, "TritonServer.log_tail", "lines", minimum=1)
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
        """True when this server (it knows our token) and every model answer ready."""
        return (
            self._get("/v2/health/ready") == 200
            and self._get(RESTRICTED_PROBE) == 200  # health answers anyone's server; this only ours
            and all(self._get(f"/v2/models/{name}/ready") == 200 for name in self.models)
        )

    def port_clash(self) -> str | None:
        """What shows that another process holds one of this server's ports, or None.

        Another Triton on our HTTP port refuses our token on a restricted API (403); our own Triton, unable to
        bind, logs ``already in use``.
        """
        if self._get(RESTRICTED_PROBE) == 403:
            return f"another Triton server answers on 127.0.0.1:{self.ports['http']} (it refuses this server's token)"
        if "already in use" in self.log_tail(60):
            return "a port is already in use (see the log)"
        return None

    def wait_ready(self, timeout_s: float = 120.0) -> TritonServer:
        """Block until ready; on timeout or an early exit, stop the server and raise with its log tail."""
        require_number(timeout_s, "TritonServer.wait_ready", "timeout_s", minimum=0.0, strict=True)
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
                self._note_listeners()
                return self
            clash = self.port_clash()
            if clash:
                self.stop()
                raise ServerError(
                    f"The Triton server could not start: {clash} (ports {self.ports}, models={self.models}). "
                    f"Its log ({self.log_path}) ends with:\n{self.log_tail()}\n"
                    "Another server took a port as this one started; start again (serve_models does, on new ports)."
                )
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
        require_number(timeout_s, "TritonServer.stop", "timeout_s", minimum=0.0, strict=True)
        if self.stopped:
            return not self.leftovers
        self.stopped = True
        self._note_listeners()
        if self.process is not None:
            if self.process.poll() is None:
                self.segments_at_stop = tensor_store_segments(_group_pids(self.process.pid))
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
        held = ports_still_held(self.ports.values(), self.own_listeners)
        found += [f"{kind} port {port} still bound" for kind, port in self.ports.items() if port in held]
        if self.workspace.exists():
            found.append(f"workspace {self.workspace}")
        if self.process is not None:
            found += [f"shared memory {p}" for p in shared_memory_regions(self.process.pid)]
        found += [f"shared memory {p}" for p in sorted(self.segments_at_stop) if p.exists()]
        return found

    def _note_listeners(self) -> None:
        """Record which listeners on this server's ports are its own (by socket inode) and which are not."""
        listeners = listening_sockets(self.ports.values())
        if listeners is None:
            return
        ours = socket_inodes(_family_pids(self.process.pid)) if self.process is not None else set()
        self.own_listeners.update({inode: port for inode, port in listeners.items() if inode in ours})
        self.ports_held_elsewhere = sorted({port for inode, port in listeners.items()
                                            if inode not in self.own_listeners})

    def cleanup_report(self) -> bool:
        """True when the stopped server left no process, no bound port and no workspace (see ``leftovers``)."""
        if not self.stopped:
            return False
        return not self.leftovers

    def __enter__(self) -> TritonServer:
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


def _family_pids(pid: int) -> set[int]:
    """The worker ``pid``, its process group and its descendants (a child may have left the group)."""
    import psutil

    family = {pid, *_group_pids(pid)}
    with contextlib.suppress(psutil.Error):
        family |= {child.pid for child in psutil.Process(pid).children(recursive=True)}
    return family


def _kill_group(pgid: int, workspace: Path) -> None:
    """SIGKILL whatever is left of a worker's process group, then remove its workspace and shared memory."""
    members = _group_pids(pgid)
    segments = tensor_store_segments(members)  # read before the kill: afterwards /proc no longer shows them
    if members:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while _group_pids(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    shutil.rmtree(workspace, ignore_errors=True)
    unlink_all([*shared_memory_regions(pgid), *segments])  # PyTriton's shm prefix uses the worker's pid


def running_servers() -> list[TritonServer]:
    """Servers started from this process and not yet stopped.

    Returns:
        The live :class:`TritonServer` objects; empty once every server has been stopped.

    Example:
        >>> wu.serving.running_servers()
        []
    """
    return [server for server in list(_LIVE) if not server.stopped]


def stop_all_servers() -> int:
    """Stop every server this process started; returns how many were running.

    Also runs when the Python process exits, so a forgotten server does not outlive the kernel.

    Returns:
        The number of servers that were still running.

    Example:
        >>> print(f"Servers still running: {wu.serving.stop_all_servers()}")
    """
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
    """Workspaces of servers this process started (or any process's) still on disk; none once all have stopped.

    Workspaces live under ``build/triton`` (or a short folder in the temp dir when that path is too long).

    Args:
        all_processes: True lists every process's server workspaces, not only this process's.

    Returns:
        The workspace folders still on disk, sorted.

    Example:
        >>> leftovers = wu.serving.leftover_workspaces()
    """
    root = _workspace_root()
    pattern = "ws-*" if all_processes else f"ws-{os.getpid()}-*"
    return sorted(p for p in root.glob(pattern) if p.is_dir()) if root.is_dir() else []


atexit.register(stop_all_servers)


def worker_command(args: Sequence[str]) -> list[str]:
    """The command line that starts a worker (tests replace this to simulate a broken server)."""
    return [sys.executable, "-m", "workshop_utils.serving.worker", *args]


def new_workspace(keep_logs: int = 30) -> tuple[Path, Path]:
    """A fresh workspace folder and log file for one server (the oldest logs beyond ``keep_logs`` removed)."""
    stamp = f"{os.getpid()}-{secrets.token_hex(3)}"
    logs = paths.build_dir() / "triton" / "logs"
    for old in sorted(logs.glob("server-*.log"))[:-keep_logs] if logs.is_dir() else []:  # newest kept
        with contextlib.suppress(OSError):
            old.unlink()
    log = logs / f"server-{time.strftime('%Y%m%d-%H%M%S')}-{stamp}.log"
    return _workspace_root() / f"ws-{stamp}", log
