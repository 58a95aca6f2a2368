"""Triton's own counters, read from its Prometheus endpoint: requests, executions, and the batches it formed.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Mapping

from workshop_utils.core.inputs import (
    bad_input,
    describe,
)

_SAMPLE = re.compile(r'^(\w+)\{([^}]*)\}\s+([-+0-9.eE]+|NaN)$')


def read_metrics(metrics_url: str, model: str | None = None) -> dict[str, float]:
    """Triton's Prometheus counters (``nv_*``) for one model, summed over versions, as ``{name: value}``.

    Args:
        metrics_url: the metrics endpoint, ``http://host:port/metrics``, e.g. ``server.metrics_url``.
        model: the served model whose counters to read; None sums over every model.

    Returns:
        ``{metric name: value}``, e.g. ``"nv_inference_exec_count"``; read it before and after a load.

    Example:
        >>> before = wu.serving.read_metrics(srv.metrics_url, "nuclei_unet")
    """
    if not isinstance(metrics_url, str) or not metrics_url.startswith(("http://", "https://")):
        raise bad_input("read_metrics", "metrics_url as http://host:port/metrics", describe(metrics_url),
                        "Pass server.metrics_url.")
    if model is not None and (not isinstance(model, str) or not model):
        raise bad_input("read_metrics", "model as None or a served model's name", describe(model),
                        "Pass e.g. 'fixed_cost', or None for every model.")
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
    """Requests, model executions, mean batch size and mean queue/compute time (ms) between two metric reads.

    Args:
        before: :func:`read_metrics` of the model before the load.
        after: :func:`read_metrics` of the same model after it.

    Returns:
        ``{"requests", "executions", "mean_batch", "queue_ms_per_request", "compute_ms_per_request"}`` (NaN if none).

    Example:
        >>> batching = wu.serving.batching_summary(before, wu.serving.read_metrics(srv.metrics_url, "nuclei_unet"))
    """
    for name, reading in (("before", before), ("after", after)):
        if not isinstance(reading, Mapping):
            raise bad_input("batching_summary", f"{name} as the dict wu.serving.read_metrics returns",
                            describe(reading), "Pass before=wu.serving.read_metrics(url, model) and the same after the load.")

    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    requests, executions = delta("nv_inference_request_success"), delta("nv_inference_exec_count")
    if requests < 0 or executions < 0:
        raise bad_input("batching_summary", "before read before after (counters only grow)",
                        f"{requests:+.0f} requests, {executions:+.0f} executions",
                        "Swap the arguments: batching_summary(before, after), both from the same server.")
    return {
        "requests": requests,
        "executions": executions,
        "mean_batch": delta("nv_inference_count") / executions if executions else float("nan"),
        "queue_ms_per_request": delta("nv_inference_queue_duration_us") / 1000 / requests if requests else float("nan"),
        "compute_ms_per_request": delta("nv_inference_compute_infer_duration_us") / 1000 / requests
        if requests else float("nan"),
    }
