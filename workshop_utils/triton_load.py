"""Load a Triton server: bounded concurrent clients (HTTP or gRPC), latency percentiles, Prometheus metrics."""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .timing import percentile

_DTYPES = {np.dtype(np.float32): "FP32", np.dtype(np.float16): "FP16", np.dtype(np.int64): "INT64"}


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
        return (
            f"{self.model} {self.protocol} c={self.concurrency}: {self.rps:.1f} req/s · p50 {self.p50_ms:.1f} ms · "
            f"p99 {self.p99_ms:.1f} ms · {self.requests} requests, {self.failed} failed in {self.wall_s:.1f} s"
        )


def _client(protocol: str, url: str) -> Any:
    if protocol == "grpc":
        import tritonclient.grpc as module
    elif protocol == "http":
        import tritonclient.http as module
    else:
        raise ValueError(f"protocol={protocol!r}: expected 'grpc' or 'http'.")
    return module, module.InferenceServerClient(url=url)


def make_inputs(module: Any, arrays: Mapping[str, np.ndarray]) -> list[Any]:
    """tritonclient ``InferInput`` objects holding ``arrays`` (name -> batch-first array)."""
    inputs = []
    for name, array in arrays.items():
        if array.dtype not in _DTYPES:
            raise TypeError(f"Input {name!r} has dtype {array.dtype}; expected one of {sorted(map(str, _DTYPES))}.")
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
    fails on an error or, with ``expected``, when an output differs by more than ``atol``."""
    if concurrency < 1 or requests < 1 or time_limit_s <= 0:
        raise ValueError(f"concurrency={concurrency}, requests={requests}, time_limit_s={time_limit_s}: all must be > 0.")
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
    """One :func:`run_load` per concurrency level, each bounded by requests and seconds; prints a line per level."""
    results = []
    for level in concurrencies:
        result = run_load(url, model, arrays, concurrency=level, requests=requests_per_client * level,
                          protocol=protocol, time_limit_s=time_limit_s)
        print(result)
        results.append(result)
    return results


def plot_sweep(results: Sequence[LoadResult], title: str = "") -> Any:
    """Throughput and p50/p99 latency against the number of concurrent clients."""
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


_SAMPLE = re.compile(r'^(\w+)\{([^}]*)\}\s+([-+0-9.eE]+|NaN)$')


def read_metrics(metrics_url: str, model: str | None = None) -> dict[str, float]:
    """Triton's Prometheus counters (``nv_*``) for one model, summed over versions, as ``{name: value}``."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode("utf-8")
    values: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if not match:
            continue
        name, labels, value = match.groups()
        if model is not None and f'model="{model}"' not in labels:
            continue
        values[name] = values.get(name, 0.0) + float(value)
    return values


def batching_summary(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """Requests, model executions, mean batch size and mean queue/compute time (ms) between two metric reads."""
    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    requests, executions = delta("nv_inference_request_success"), delta("nv_inference_exec_count")
    return {
        "requests": requests,
        "executions": executions,
        "mean_batch": delta("nv_inference_count") / executions if executions else float("nan"),
        "queue_ms_per_request": delta("nv_inference_queue_duration_us") / 1000 / requests if requests else float("nan"),
        "compute_ms_per_request": delta("nv_inference_compute_infer_duration_us") / 1000 / requests
        if requests else float("nan"),
    }
