"""Honest timing: warm-up runs that are not counted, CUDA synchronisation, percentiles, interleaved comparisons."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workshop_utils.core.inputs import as_array, bad_input, describe, require_callable, require_int, require_number

# A speed ratio fails a lab only past this factor: a runaway, never a busy neighbour. Below it, speed is measured,
# printed and explained, not asserted (a shared 2-core machine moves ratios by tens of percent).
SANITY_SLOWDOWN = 3.0
# Ratios within this fraction of 1 read as "no faster": closer than run-to-run noise on a shared CPU.
SAME_SPEED_TOLERANCE = 0.05
# compare() calls its measurement unstable when the per-round ratios' interquartile range exceeds this fraction of
# their median: the rounds disagree too much for one confident ratio.
STABLE_SPREAD = 0.25


def cuda_sync() -> None:
    """Wait for queued GPU work, if torch is loaded and a GPU is in use; a no-op otherwise."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()



def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``samples`` with linear interpolation."""
    values = as_array(samples, "percentile", "samples", ndim=1, allow_empty=True)
    if values.size == 0:
        raise bad_input("percentile", "at least one sample", "an empty list",
                        "Time at least one call first (benchmark(..., iters=1) or more).")
    q = require_number(q, "percentile", "q", minimum=0, maximum=100)
    ordered = sorted(values.tolist())
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Timing:
    """Latency samples of one callable, in milliseconds, with the items each call processed."""

    name: str
    samples_ms: list[float] = field(repr=False)
    items_per_call: int = 1

    @property
    def p50_ms(self) -> float:
        return percentile(self.samples_ms, 50)

    @property
    def p90_ms(self) -> float:
        return percentile(self.samples_ms, 90)

    @property
    def p99_ms(self) -> float:
        return percentile(self.samples_ms, 99)

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.samples_ms)

    @property
    def throughput_per_s(self) -> float:
        """Items per second at the median latency."""
        return self.items_per_call * 1000.0 / self.p50_ms

    def as_dict(self) -> dict[str, float]:
        return {
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
            "throughput_per_s": self.throughput_per_s,
            "iterations": float(len(self.samples_ms)),
        }

    def __str__(self) -> str:
        return (
            f"{self.name}: p50 {self.p50_ms:.2f} ms · p90 {self.p90_ms:.2f} ms · p99 {self.p99_ms:.2f} ms · "
            f"{self.throughput_per_s:.1f} items/s ({len(self.samples_ms)} runs)"
        )


def _timed_call(fn: Callable[[], Any], sync: Callable[[], None]) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return (time.perf_counter() - start) * 1000.0


def benchmark(
    fn: Callable[[], Any],
    *,
    name: str = "",
    warmup: int = 3,
    iters: int = 20,
    min_time_s: float = 0.0,
    items_per_call: int = 1,
    sync: Callable[[], None] = cuda_sync,
) -> Timing:
    """Time ``fn`` after ``warmup`` uncounted calls: at least ``iters`` calls and ``min_time_s`` seconds.

    Args:
        fn: the call to time, with no arguments: wrap it in a lambda, e.g. ``lambda: model(x)``.
        name: a label for the printed line; ``""`` uses ``fn``'s ``__name__``.
        warmup: uncounted calls first (compilation, caches, lazy loading).
        iters: the least number of timed calls.
        min_time_s: the least total time (s) to keep timing for; 0 stops after ``iters`` calls.
        items_per_call: items each call processes (e.g. the batch size), for ``throughput_per_s``.
        sync: called before and after each timed call; the default waits for queued CUDA work (no-op on CPU).

    Returns:
        A :class:`Timing` of per-call samples (ms), with ``p50_ms``, ``p90_ms``, ``p99_ms``, ``mean_ms`` and
        ``throughput_per_s``; ``print(timing)`` gives one line.

    Example:
        >>> timing = wu.benchmark(lambda: a @ b, name="matmul", warmup=3, iters=20)
        >>> timing.p50_ms
    """
    require_callable(fn, "benchmark", "fn", "Wrap the call in a lambda: wu.benchmark(lambda: model(x)); "
                      "benchmark(model(x)) would time the result, not the call.")
    if not isinstance(name, str):
        raise bad_input("benchmark", "name as a string", describe(name), "Pass a label, e.g. name='torch eager'.")
    warmup = require_int(warmup, "benchmark", "warmup", minimum=0)
    iters = require_int(iters, "benchmark", "iters", minimum=1)
    require_number(min_time_s, "benchmark", "min_time_s", minimum=0)
    items_per_call = require_int(items_per_call, "benchmark", "items_per_call", minimum=1)
    require_callable(sync, "benchmark", "sync", "Leave sync at its default (workshop_utils.core.timing.cuda_sync) or pass a function.")
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < iters or time.perf_counter() - started < min_time_s:
        samples.append(_timed_call(fn, sync))
    return Timing(name or getattr(fn, "__name__", "fn"), samples, items_per_call)


class Comparison(dict[str, Timing]):
    """What :func:`compare` returns: ``name -> Timing``, plus whether its interleaved rounds agree.

    ``spread`` is the largest, over candidates, interquartile range of the per-round ratio to the first candidate,
    as a fraction of its median; ``stable`` is ``spread <= STABLE_SPREAD``. A busy neighbour that slows one
    round shows up here instead of as a confident but wrong ratio.
    """

    spread: float = 0.0

    @property
    def stable(self) -> bool:
        return self.spread <= STABLE_SPREAD

    def verdict(self) -> str:
        """One line for the lab's output: stable, or how far the rounds disagreed."""
        if self.stable:
            return f"measurement stable: rounds agree within ±{self.spread / 2:.0%}"
        return (f"measurement UNSTABLE: interleaved rounds disagree by ±{self.spread / 2:.0%} (another process is "
                "competing for the CPU?); read the ratios as rough and rerun on a quiet machine")


def _ratio_spread(samples: Mapping[str, list[float]]) -> float:
    """Largest relative interquartile range of the per-round ratio of each candidate to the first one."""
    names = list(samples)
    spreads = [0.0]
    for name in names[1:]:
        ratios = [base / other for base, other in zip(samples[names[0]], samples[name], strict=False) if other > 0]
        if len(ratios) >= 2:
            middle = percentile(ratios, 50)
            spreads.append((percentile(ratios, 75) - percentile(ratios, 25)) / middle if middle > 0 else 0.0)
    return max(spreads)


def compare(
    candidates: Mapping[str, Callable[[], Any]],
    *,
    warmup: int = 3,
    rounds: int = 20,
    items_per_call: int = 1,
    sync: Callable[[], None] = cuda_sync,
) -> Comparison:
    """Time several callables side by side, interleaved round by round, so machine noise hits all alike.

    Args:
        candidates: ``name -> callable`` with no arguments, e.g. ``{"torch": lambda: model(x)}``.
        warmup: uncounted calls of each candidate first.
        rounds: timed rounds; each round calls every candidate once, in order.
        items_per_call: items each call processes (for throughput).
        sync: waits for queued device work before and after each call.

    Returns:
        A :class:`Comparison`: ``name -> Timing``, with ``.stable``, ``.spread`` and ``.verdict()``.

    Example:
        >>> timings = wu.compare({"torch": lambda: net(x), "onnx": lambda: session.run(None, {"image": x_np})})
        >>> timings["torch"].p50_ms / timings["onnx"].p50_ms, timings.verdict()
    """
    if not isinstance(candidates, Mapping) or not candidates:
        raise bad_input("compare", "candidates as a non-empty dict of name -> callable", describe(candidates),
                        "Name each one: wu.compare({'torch': lambda: model(x), 'onnx': lambda: session.run(...)}).")
    for name, fn in candidates.items():
        if not isinstance(name, str) or not name.strip():
            raise bad_input("compare", "each candidate name as a non-blank string", describe(name),
                            "Use labels such as 'torch eager' as the dict keys.")
        require_callable(fn, "compare", f"candidates[{name!r}]", "Wrap the call in a lambda: {'torch': lambda: model(x)}.")
    warmup = require_int(warmup, "compare", "warmup", minimum=0)
    rounds = require_int(rounds, "compare", "rounds", minimum=1)
    items_per_call = require_int(items_per_call, "compare", "items_per_call", minimum=1)
    require_callable(sync, "compare", "sync", "Leave sync at its default (workshop_utils.core.timing.cuda_sync) or pass a function.")
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            samples[name].append(_timed_call(fn, sync))
    result = Comparison({name: Timing(name, values, items_per_call) for name, values in samples.items()})
    result.spread = _ratio_spread(samples)
    return result


def speedup_phrase(speedup: float, subject: str, baseline: str, *, tolerance: float = SAME_SPEED_TOLERANCE) -> str:
    """Say in words what a measured ``speedup`` (baseline time / subject time) shows, so prose matches its figure.

    Args:
        speedup: the baseline's latency divided by the subject's (above 1: the subject is faster).
        subject: what was made faster, e.g. ``"ONNX Runtime"``.
        baseline: what it is compared with, e.g. ``"eager PyTorch"``.
        tolerance: ratios within this fraction of 1 read as "no faster" rather than a win or a loss.

    Returns:
        A clause such as ``"ONNX Runtime was 1.50x faster than eager PyTorch"``.

    Example:
        >>> speedup_phrase(0.99, "ONNX Runtime", "eager PyTorch")
        'ONNX Runtime was no faster than eager PyTorch (0.99x)'
    """
    ratio = require_number(speedup, "speedup_phrase", "speedup", minimum=0.0, strict=True)
    for name, value in (("subject", subject), ("baseline", baseline)):
        if not isinstance(value, str) or not value.strip():
            raise bad_input("speedup_phrase", f"{name} as a non-blank name", describe(value),
                            "Name both sides, e.g. speedup_phrase(1.3, 'ONNX Runtime', 'eager PyTorch').")
    tolerance = require_number(tolerance, "speedup_phrase", "tolerance", minimum=0.0, maximum=1.0)
    if ratio >= 1 + tolerance:
        return f"{subject} was {ratio:.2f}x faster than {baseline}"
    if ratio <= 1 / (1 + tolerance):
        return f"{subject} was {1 / ratio:.2f}x slower than {baseline}"
    return f"{subject} was no faster than {baseline} ({ratio:.2f}x)"


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``: wall time of a block.

    ``seconds`` is 0.0 until the block ends, then the block's wall-clock time (s, ``time.perf_counter``).

    Example:
        >>> with wu.Stopwatch() as export_time:
        ...     wu.acceleration.export_onnx(model.network, onnx_path, cfg.tile_px)
        >>> export_time.seconds
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
