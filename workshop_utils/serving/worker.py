"""The Triton server process: ``python -m workshop_utils.serving.worker ...``, started by :mod:`workshop_utils.serving.server`.

It runs PyTriton's bundled Triton Inference Server (or, with ``--repository``, a standalone ``tritonserver``) on
127.0.0.1 and stops it, cleaning its workspace, on SIGINT/SIGTERM or when the process that started it dies.
Never import this in a notebook kernel: the server must live in its own process group so it can always be killed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import logging
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from workshop_utils.core.contract import (
    INPUT_NAME,
    MODELS,
    NUCLEI_MODEL,
    OUTPUT_NAME,
    TOKEN_ENV,
    TOKEN_HEADER,
    shared_memory_regions,
    tensor_store_segments,
    unlink_all,
)
from workshop_utils.core.inputs import bad_input, describe, require_callable, require_int, require_number

FIXED_COST_FEATURES = 4  # width of the fixed_cost model's input/output vector
# PyTriton hands each model instance its config over a Unix socket that the first instance creates: bind() makes
# the file, listen() comes a moment later. An instance that connects in between is refused, and the model load
# fails. On a loaded machine that moment grows, so a refused load is retried (a bounded number of times).
LOAD_ATTEMPTS = 3

log = logging.getLogger("triton_worker")


def fix_library_path() -> str:
    """Put this interpreter's libpython folder first in LD_LIBRARY_PATH (else the python-backend stub loads the
    system libpython and fails with "'_thread.RLock' object has no attribute '_recursion_count'")."""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    current = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p and p != libdir]
    os.environ["LD_LIBRARY_PATH"] = os.pathsep.join([libdir, *current]) if libdir else os.pathsep.join(current)
    return os.environ["LD_LIBRARY_PATH"]


def _onnx_infer_fn(onnx_path: Path, threads: int) -> tuple[Callable[..., Any], Any, Any]:
    """An ONNX Runtime session wrapped as a PyTriton batch function, plus the input/output Tensor specs."""
    import numpy as np
    from pytriton.decorators import batch
    from pytriton.model_config import Tensor

    from workshop_utils.acceleration.onnx_runtime import ort_session

    session = ort_session(onnx_path, threads=threads)  # lab 02's settings: spinning off, one inter-op thread
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    if inp.name != INPUT_NAME or out.name != OUTPUT_NAME:
        raise ValueError(f"{onnx_path} has input {inp.name!r} and output {out.name!r}; "
                         f"expected {INPUT_NAME!r} and {OUTPUT_NAME!r}.")
    in_shape = tuple(int(d) for d in inp.shape[1:])
    out_shape = tuple(d if isinstance(d, int) else -1 for d in out.shape[1:])

    @batch
    def infer(image: Any) -> dict[str, Any]:
        (logits,) = session.run(["logits"], {"image": np.ascontiguousarray(image, dtype=np.float32)})
        return {"logits": logits}

    return infer, [Tensor(name="image", dtype=np.float32, shape=in_shape)], [
        Tensor(name="logits", dtype=np.float32, shape=out_shape)
    ]


def _fixed_cost_infer_fn(cost_ms: float) -> tuple[Callable[..., Any], Any, Any]:
    """A simulated accelerator: each call takes ``cost_ms`` whatever the batch size; returns ``x + 1``."""
    import numpy as np
    from pytriton.decorators import batch
    from pytriton.model_config import Tensor

    @batch
    def infer(x: Any) -> dict[str, Any]:
        time.sleep(cost_ms / 1000.0)
        return {"y": (x + 1.0).astype(np.float32)}

    spec = [Tensor(name="x", dtype=np.float32, shape=(FIXED_COST_FEATURES,))]
    return infer, spec, [Tensor(name="y", dtype=np.float32, shape=(FIXED_COST_FEATURES,))]


def _bind_models(triton: Any, args: argparse.Namespace) -> None:
    from pytriton.model_config import DynamicBatcher, ModelConfig

    threads = max(1, (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2) // args.instances)
    for name in args.models:
        fns = []
        for _ in range(args.instances):
            if name == NUCLEI_MODEL:
                fn, inputs, outputs = _onnx_infer_fn(Path(args.onnx), threads)
            else:
                fn, inputs, outputs = _fixed_cost_infer_fn(args.fixed_cost_ms)
            fns.append(fn)
        batcher = DynamicBatcher(max_queue_delay_microseconds=args.max_queue_delay_us) if args.dynamic_batching else None
        config = ModelConfig(batching=True, max_batch_size=args.max_batch_size, batcher=batcher)
        triton.bind(model_name=name, infer_func=fns, inputs=inputs, outputs=outputs, config=config, strict=False)
        log.info("bound %s: instances=%d dynamic_batching=%s max_queue_delay_us=%d max_batch_size=%d",
                 name, args.instances, args.dynamic_batching, args.max_queue_delay_us, args.max_batch_size)


def lost_handshake_race(error: BaseException) -> bool:
    """True when a model load failed because an instance reached PyTriton's config socket before it listened."""
    if not isinstance(error, BaseException):
        raise bad_input("lost_handshake_race", "error as an exception", describe(error),
                        "Pass the exception a model load raised.")
    text = f"{type(error).__name__}: {error}"
    return isinstance(error, ConnectionRefusedError) or "ConnectionRefusedError" in text or "Connection refused" in text


def run_with_retry(make_triton: Callable[[], Any], attempts: int = LOAD_ATTEMPTS, pause_s: float = 0.5) -> tuple[Any, int]:
    """Start a server from ``make_triton()`` and load its models; a load that lost the handshake race starts over.

    A failed load leaves PyTriton's sockets and stubs half torn down, and loading again into the same server hangs
    (seen on a busy 2-core machine), so each retry stops that server and starts a fresh one from the factory. Any
    other error is raised at once. Returns the running server and the number of attempts it took.
    """
    where = "run_with_retry"
    require_callable(make_triton, where, "make_triton", "Pass a function that builds a Triton with its models bound.")
    attempts = require_int(attempts, where, "attempts", minimum=1)
    pause_s = require_number(pause_s, where, "pause_s", minimum=0.0)
    for attempt in range(1, attempts + 1):
        triton = make_triton()
        try:
            triton.run()
            return triton, attempt
        except Exception as exc:
            if attempt == attempts or not lost_handshake_race(exc):
                raise  # the caller stops what make_triton() built last
            log.warning("model load %d of %d was refused by PyTriton's config socket (%s); restarting the server",
                        attempt, attempts, str(exc).splitlines()[0][:200])
            with contextlib.suppress(Exception):
                triton.stop()
            time.sleep(pause_s * attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


class _PyTritonServer:
    """PyTriton's Triton with the workshop's models bound."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.triton: Any = None

    def _new_triton(self) -> Any:
        from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

        args = self.args
        config = TritonConfig(
            http_address="127.0.0.1", grpc_address="127.0.0.1", metrics_address="127.0.0.1",
            http_port=args.http_port, grpc_port=args.grpc_port, metrics_port=args.metrics_port,
            exit_timeout_secs=args.exit_timeout_s, allow_gpu_metrics=False,
        )
        security = TritonSecurityConfig(access_token=os.environ.get(TOKEN_ENV) or None)
        if self.triton is not None:  # a retry: whatever the refused attempt left in the workspace goes first
            shutil.rmtree(args.workspace, ignore_errors=True)
        self.triton = Triton(config=config, workspace=Path(args.workspace), security_config=security)
        _bind_models(self.triton, args)
        return self.triton

    def start(self) -> None:
        self.triton, _ = run_with_retry(self._new_triton)

    def alive(self) -> bool:
        return self.triton is not None and bool(self.triton.is_alive())

    def stop(self) -> None:
        if self.triton is not None:
            self.triton.stop()


class _BinaryServer:
    """A standalone ``tritonserver`` serving a model repository (NGC container, GPU clouds)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.command = [
            args.binary, f"--model-repository={args.repository}", "--http-address=127.0.0.1",
            "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1", f"--http-port={args.http_port}",
            f"--grpc-port={args.grpc_port}", f"--metrics-port={args.metrics_port}",
            f"--exit-timeout-secs={args.exit_timeout_s}",
        ]
        token = os.environ.get(TOKEN_ENV)
        if token:
            restricted = f"shared-memory,model-repository,statistics,trace,logging:{TOKEN_HEADER}={token}"
            self.command += [f"--http-restricted-api={restricted}", f"--grpc-restricted-protocol={restricted}"]
        Path(args.workspace).mkdir(parents=True)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.process = subprocess.Popen(self.command, preexec_fn=lambda: libc.prctl(1, signal.SIGTERM))  # PDEATHSIG

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _watch(stop: threading.Event, parent_pid: int, server: Any, started: threading.Event) -> None:
    """Set ``stop`` when the parent process dies (kernel killed or restarted) or the server itself exits."""
    while not stop.wait(0.5):
        if parent_pid and os.getppid() != parent_pid:
            log.warning("parent pid=%d is gone: stopping the server", parent_pid)
            stop.set()
        elif started.is_set() and not server.alive():
            log.error("the Triton server process exited on its own: stopping")
            stop.set()


def _rest_of_group() -> list[Any]:
    """The other live processes of this worker's process group (tritonserver, python-backend stubs, tensor store)."""
    import psutil

    me, rest = os.getpid(), []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            if proc.pid != me and os.getpgid(proc.pid) == me:
                rest.append(proc)
    return rest


def _group_segments(rest: list[Any] | None = None) -> set[Path]:
    """The tensor store's ``psm_*`` segments this worker's group (itself and ``rest``, default: found now) has mapped."""
    members = _rest_of_group() if rest is None else rest
    return tensor_store_segments([os.getpid(), *(proc.pid for proc in members)])


def _kill_rest_of_group(segments: Iterable[Path] = ()) -> None:
    """SIGKILL what is left of this worker's process group except itself, then unlink its shared memory.

    After a kernel restart, stop() could return with the stubs still running, orphaned; the worker leads its own
    group (started with start_new_session), so every process it spawned is found by group id. ``segments``: the
    tensor store's segments seen before PyTriton's stop (it does not always unlink them, and a killed store cannot).
    """
    import psutil

    rest = _rest_of_group()
    segments = {*segments, *_group_segments(rest)}
    for proc in rest:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(rest, timeout=5)
    unlink_all(segments)


def _check_argv(argv: Any, where: str) -> None:
    if argv is not None and (isinstance(argv, str) or not isinstance(argv, (list, tuple))
                             or not all(isinstance(arg, str) for arg in argv)):
        raise bad_input(where, "argv as a list of strings (or None for sys.argv)", describe(argv),
                        "Split the command line, e.g. ['--models', 'fixed_cost', '--workspace', '/tmp/ws'].")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The worker's command line; mistakes end in argparse's usage message (exit code 2)."""
    _check_argv(argv, "parse_args")
    parser = argparse.ArgumentParser(prog="python -m workshop_utils.serving.worker", description=__doc__)
    parser.add_argument("--models", nargs="+", default=[NUCLEI_MODEL], help=f"PyTriton: any of {MODELS}")
    parser.add_argument("--onnx", help="ONNX file served as nuclei_unet")
    parser.add_argument("--repository", help="serve this model repository with --binary instead of PyTriton")
    parser.add_argument("--binary", help="standalone tritonserver executable (with --repository)")
    parser.add_argument("--workspace", required=True, help="folder for the server's files; must not exist yet")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--dynamic-batching", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--max-queue-delay-us", type=int, default=0)
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--fixed-cost-ms", type=float, default=10.0)
    parser.add_argument("--exit-timeout-s", type=int, default=1)
    parser.add_argument("--parent-pid", type=int, default=0, help="stop when this process dies (0: never)")
    args = parser.parse_args(argv)
    if not args.repository and not set(args.models) <= set(MODELS):
        parser.error(f"--models {args.models}: PyTriton serves only {MODELS}")
    if not args.repository and NUCLEI_MODEL in args.models and not args.onnx:
        parser.error("nuclei_unet needs --onnx PATH")
    for flag in ("http_port", "grpc_port", "metrics_port"):
        if not 1 <= getattr(args, flag) <= 65535:
            parser.error(f"--{flag.replace('_', '-')} {getattr(args, flag)}: expected a port between 1 and 65535")
    for flag, low in (("instances", 1), ("max_batch_size", 1), ("max_queue_delay_us", 0), ("fixed_cost_ms", 0)):
        if getattr(args, flag) < low:
            parser.error(f"--{flag.replace('_', '-')} {getattr(args, flag)}: expected at least {low}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Start the server, serve until a signal or the parent's death, then stop it and remove the workspace."""
    _check_argv(argv, "main")
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="[worker %(asctime)s] %(levelname)s %(message)s")
    args = parse_args(argv)
    stop, started = threading.Event(), threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()
        if not started.is_set():
            raise KeyboardInterrupt  # abort a start-up in progress

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    log.info("pid=%d pgid=%d LD_LIBRARY_PATH=%s", os.getpid(), os.getpgid(0), fix_library_path())
    code, server = 0, None
    try:
        server = _BinaryServer(args) if args.repository else _PyTritonServer(args)
        threading.Thread(target=_watch, args=(stop, args.parent_pid, server, started), daemon=True).start()
        server.start()
        started.set()
        log.info("READY http=127.0.0.1:%d grpc=127.0.0.1:%d metrics=127.0.0.1:%d",
                 args.http_port, args.grpc_port, args.metrics_port)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        log.info("interrupted during start-up")
    except Exception as exc:  # report it in the log the parent shows, then clean up
        log.exception("server failed: %s", exc)
        code = 1
    finally:
        started.set()
        in_use = _group_segments()  # while the tensor store still runs
        if server is not None:
            try:
                server.stop()
            except Exception as exc:
                log.warning("stop raised %s: %s", type(exc).__name__, exc)
        shutil.rmtree(args.workspace, ignore_errors=True)
        for region in shared_memory_regions(os.getpid()):  # PyTriton's shared memory, if it leaked
            region.unlink(missing_ok=True)
        _kill_rest_of_group(in_use)
        log.info("stopped; workspace %s removed=%s", args.workspace, not Path(args.workspace).exists())
        sys.stdout.flush()
    os._exit(code)  # PyTriton leaves non-daemon threads behind; everything is already cleaned up


if __name__ == "__main__":
    main()
