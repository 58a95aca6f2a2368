"""Load a Triton server: bounded concurrent clients (HTTP or gRPC), latency percentiles, sweeps and their plot.

The server's own view of the same load (requests, executions, batch sizes) is :mod:`workshop_utils.serving.metrics`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workshop_utils.core.inputs import (
    bad_input,
    describe,
    require_choice,
    require_int,
    require_nonempty,
    require_number,
)
from workshop_utils.core.timing import percentile

_DTYPES = {np.dtype(np.float32): "FP32", np.dtype(np.float16): "FP16", np.dtype(np.int64): "INT64"}
PROTOCOLS = ("grpc", "http")


@dataclass
class LoadResult:
    """What ``concurrency`` clients saw sending up to ``requests`` requests to one model."""

    model: str
    protocol: str
    concurrency: int
    requests: int
    failed: int
    wall_s: float
    latencies_ms: list[float] = field(repr=False)
    errors: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        """Successful requests per second over the whole run."""
        return (self.requests - self.failed) / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50) if self.latencies_ms else float("nan")

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 99) if self.latencies_ms else float("nan")

    def __str__(self) -> str:
        line = (
            f"{self.model} {self.protocol} c={self.concurrency}: {self.rps:.1f} req/s · p50 {self.p50_ms:.1f} ms · "
            f"p99 {self.p99_ms:.1f} ms · {self.requests} requests, {self.failed} failed in {self.wall_s:.1f} s"
        )
        if self.failed or self.errors:  # a failure nobody can read is a failure nobody can fix
            first = self.errors[0] if self.errors else "no error was caught (a client thread did not finish)"
            line += f"\n  first error: {first[:300]}"
        return line


def _client(protocol: str, url: str) -> Any:
    if protocol == "grpc":
        import tritonclient.grpc as module
    elif protocol == "http":
        import tritonclient.http as module
    else:
        raise ValueError(f"protocol={protocol!r}: expected 'grpc' or 'http'.")
    return module, module.InferenceServerClient(url=url)


def _check_arrays(arrays: Any, where: str) -> dict[str, np.ndarray]:
    """``arrays`` as {input name: batch-first numpy array} with a dtype Triton takes, or an error saying what to fix."""
    if not isinstance(arrays, Mapping) or not arrays:
        raise bad_input(where, "arrays as a non-empty dict of input name -> batch-first array", describe(arrays),
                        "Pass e.g. {'image': tiles[:1]} (keys are the model's input names).")
    checked = {}
    for key, value in arrays.items():
        try:
            array = np.asarray(value)
        except (TypeError, ValueError, RuntimeError) as err:  # ragged lists, GPU tensors
            raise bad_input(where, f"arrays[{key!r}] as a numpy array", f"{type(value).__name__} ({err})",
                            "Pass a numpy array (tensor.cpu().numpy()).") from None
        if not isinstance(key, str):
            raise bad_input(where, "arrays keyed by input name (a string)", describe(key),
                            "Use the model's input names as keys.")
        if array.dtype not in _DTYPES:
            raise bad_input(where, f"arrays[{key!r}] with dtype one of {', '.join(sorted(map(str, _DTYPES)))}",
                            describe(array), f"Convert it, e.g. arrays[{key!r}].astype(np.float32).")
        if array.ndim < 1 or array.shape[0] == 0:
            raise bad_input(where, f"arrays[{key!r}] batch-first with at least one item (N, ...)", describe(array),
                            "Add a batch axis (x[None]) or check the slice is not empty.")
        checked[key] = array
    return checked


def _check_target(url: Any, model: Any, where: str) -> None:
    if not isinstance(url, str) or not url or "://" in url:
        raise bad_input(where, "url as host:port without a scheme, e.g. server.grpc_url", describe(url),
                        "Pass server.grpc_url (or server.http_url with protocol='http').")
    if not isinstance(model, str) or not model:
        raise bad_input(where, "model as the served model's name", describe(model), "Pass e.g. 'fixed_cost'.")


def make_inputs(module: Any, arrays: Mapping[str, np.ndarray]) -> list[Any]:
    """tritonclient ``InferInput`` objects holding ``arrays`` (name -> batch-first array)."""
    arrays = _check_arrays(arrays, "make_inputs")
    if not hasattr(module, "InferInput"):
        raise bad_input("make_inputs", "module as tritonclient.grpc or tritonclient.http", describe(module),
                        "import tritonclient.grpc as grpcclient, then pass grpcclient.")
    inputs = []
    for name, array in arrays.items():
        item = module.InferInput(name, list(array.shape), _DTYPES[array.dtype])
        item.set_data_from_numpy(np.ascontiguousarray(array))
        inputs.append(item)
    return inputs


def run_load(
    url: str,
    model: str,
    arrays: Mapping[str, np.ndarray],
    *,
    concurrency: int,
    requests: int,
    protocol: str = "grpc",
    time_limit_s: float = 30.0,
    expected: Mapping[str, np.ndarray] | None = None,
    atol: float = 1e-4,
    warmup: int = 2,
) -> LoadResult:
    """``concurrency`` closed-loop clients share ``requests`` requests (stopping at ``time_limit_s``); a request
    fails on an error or, with ``expected``, when an output differs by more than ``atol``.

    Args:
        url: the server's ``"host:port"`` for ``protocol``, e.g. ``server.grpc_url``.
        model: the served model's name, e.g. ``"nuclei_unet"``.
        arrays: ``{input name: batch-first numpy array}`` sent with every request (float32, float16 or int64).
        concurrency: clients sending at once, each waiting for its reply before the next request (1-1024).
        requests: timed requests shared by all clients.
        protocol: ``"grpc"`` or ``"http"``.
        time_limit_s: no new request starts after this many seconds (s) from the timed start.
        expected: ``{output name: array}`` every reply must match; None checks nothing but errors.
        atol: the largest absolute difference from ``expected`` that still passes.
        warmup: untimed requests per client before the clock starts.

    Returns:
        A :class:`LoadResult`: ``requests`` issued, ``failed``, ``wall_s``, ``latencies_ms``, ``rps``, ``p50_ms``...

    Example:
        >>> run = wu.serving.run_load(srv.grpc_url, "nuclei_unet", {"image": tiles[:1]}, concurrency=8, requests=200)
    """
    where = "run_load"
    _check_target(url, model, where)
    arrays = _check_arrays(arrays, where)
    require_int(concurrency, where, "concurrency", minimum=1, maximum=1024)
    require_int(requests, where, "requests", minimum=1)
    require_choice(protocol, where, "protocol", PROTOCOLS)
    require_number(time_limit_s, where, "time_limit_s", minimum=0.0, strict=True)
    if expected is not None and (not isinstance(expected, Mapping) or not expected):
        raise bad_input(where, "the expected= outputs as None or a dict of output name -> array", describe(expected),
                        "Pass e.g. expected={'y': np.ones((1, 4), np.float32)}, or leave it out.")
    require_number(atol, where, "atol", minimum=0.0)
    require_int(warmup, where, "warmup", minimum=0, maximum=1000)
    lock, issued = threading.Lock(), [0]
    latencies: list[float] = []
    errors: list[str] = []
    clock = [0.0, 0.0]  # start, deadline: set once every client is warmed up, before any is released

    def start_clock() -> None:
        clock[0] = time.perf_counter()
        clock[1] = clock[0] + time_limit_s

    barrier = threading.Barrier(concurrency + 1, action=start_clock)

    def take() -> bool:
        with lock:
            if issued[0] >= requests or time.perf_counter() > clock[1]:
                return False
            issued[0] += 1
            return True

    def client_loop() -> None:
        module, client = _client(protocol, url)
        try:
            inputs = make_inputs(module, arrays)
            for _ in range(warmup):
                client.infer(model, inputs)
        except Exception as exc:  # counted below: the client never got going
            errors.append(f"warm-up: {type(exc).__name__}: {exc}")
        barrier.wait()
        mine: list[float] = []
        while take():
            start = time.perf_counter()
            try:
                result = client.infer(model, inputs)
                if expected is not None:
                    for name, want in expected.items():
                        if not np.allclose(result.as_numpy(name), want, atol=atol, rtol=0):
                            raise AssertionError(f"output {name!r} differs from local inference beyond atol={atol}")
                mine.append((time.perf_counter() - start) * 1000.0)
            except Exception as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
        with lock:
            latencies.extend(mine)
        client.close()

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    barrier.wait()
    for thread in threads:
        thread.join(timeout=time_limit_s + 60)
    wall = time.perf_counter() - clock[0]
    failed = issued[0] - len(latencies)
    return LoadResult(model, protocol, concurrency, issued[0], failed, wall, latencies, errors[:5])


def sweep(
    url: str,
    model: str,
    arrays: Mapping[str, np.ndarray],
    concurrencies: Sequence[int],
    *,
    requests_per_client: int,
    time_limit_s: float,
    protocol: str = "grpc",
) -> list[LoadResult]:
    """One :func:`run_load` per concurrency level, each bounded by requests and seconds; prints a line per level.

    Args:
        url: the server's ``"host:port"`` for ``protocol``, e.g. ``server.grpc_url``.
        model: the served model's name.
        arrays: ``{input name: batch-first numpy array}`` sent with every request.
        concurrencies: the client counts to run, e.g. ``[1, 2, 4, 8]`` (each 1-1024).
        requests_per_client: timed requests per client at each level (a level sends ``level`` times as many).
        time_limit_s: the longest each level runs (s).
        protocol: ``"grpc"`` or ``"http"``.

    Returns:
        One :class:`LoadResult` per level, in order; pass them to :func:`plot_sweep`.

    Example:
        >>> sweep = wu.serving.sweep(server.grpc_url, "nuclei_unet", real_in, [1, 2, 4, 8], requests_per_client=20,
        ...                          time_limit_s=10.0)
    """
    where = "sweep"  # check everything before the first level runs
    _check_target(url, model, where)
    arrays = _check_arrays(arrays, where)
    levels = require_nonempty(concurrencies, where, "concurrencies", "Pass e.g. concurrencies=[1, 2, 4, 8].")
    for level in levels:
        require_int(level, where, "each concurrency level", minimum=1, maximum=1024)
    require_int(requests_per_client, where, "requests_per_client", minimum=1)
    require_number(time_limit_s, where, "time_limit_s", minimum=0.0, strict=True)
    require_choice(protocol, where, "protocol", PROTOCOLS)
    results = []
    for level in levels:
        result = run_load(url, model, arrays, concurrency=level, requests=requests_per_client * level,
                          protocol=protocol, time_limit_s=time_limit_s)
        print(result)
        results.append(result)
    return results


def plot_sweep(results: Sequence[LoadResult], title: str = "") -> Any:
    """Throughput and p50/p99 latency against the number of concurrent clients.

    Args:
        results: the :class:`LoadResult` list :func:`sweep` returns, one per concurrency level.
        title: a title above both panels; ``""`` for none.

    Returns:
        The matplotlib ``Figure``: requests/s on the left, p50 and p99 latency (ms) on the right.

    Example:
        >>> fig = wu.serving.plot_sweep(sweep, title="nuclei_unet on Triton, dynamic batching on")
    """
    results = require_nonempty(results, "plot_sweep", "results", "Pass what wu.serving.sweep(...) returned.")
    if not all(isinstance(result, LoadResult) for result in results):
        raise bad_input("plot_sweep", "results as a list of LoadResult (from wu.serving.sweep)",
                        describe(results), "Pass what wu.serving.sweep(...) returned.")
    if not isinstance(title, str):
        raise bad_input("plot_sweep", "title as a string", describe(title),
                        "Pass title='...' or leave it out.")
    import matplotlib.pyplot as plt

    levels = [r.concurrency for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(levels, [r.rps for r in results], "o-")
    left.set(xlabel="concurrent clients", ylabel="requests / s", title="throughput")
    right.plot(levels, [r.p50_ms for r in results], "o-", label="p50")
    right.plot(levels, [r.p99_ms for r in results], "s--", label="p99")
    right.set(xlabel="concurrent clients", ylabel="latency (ms)", title="latency")
    right.legend()
    for axis in (left, right):
        axis.set_xscale("log", base=2)
        axis.set_xticks(levels, [str(v) for v in levels])
        axis.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
