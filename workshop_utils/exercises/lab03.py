"""Lab 03's exercises: build a Triton request by hand, and the best case of dynamic batching."""

from __future__ import annotations

import numbers
from typing import Any

from workshop_utils.exercises import as_answer_number, exercise, not_a_number

BATCH = 4
FIXED_COST_MS = 10.0
CLIENTS = 8


@exercise("03-infer-input", "A request names the input, its Triton datatype and its full shape, batch axis first.")
def infer_input(value: Any) -> str | None:
    """A tritonclient ``InferInput`` for a batch of 4 nuclei tiles."""
    if not all(callable(getattr(value, attr, None)) for attr in ("name", "datatype", "shape")):
        return f"expected a tritonclient InferInput (httpclient.InferInput or grpcclient.InferInput); got {type(value).__name__}."
    name, datatype, shape = value.name(), value.datatype(), value.shape()
    if not isinstance(shape, (list, tuple)) or not all(isinstance(n, numbers.Integral) for n in shape):
        return f"expected the shape as a list of ints, e.g. list(tiles[:4].shape); got {shape!r}."
    shape = [int(n) for n in shape]
    if name != "image":
        return f"the input is named {name!r}; the model's metadata says its input is 'image'."
    if datatype != "FP32":
        hint = " numpy defaults to float64: convert with .astype(np.float32)." if datatype == "FP64" else ""
        return f"datatype {datatype!r} does not match the model's FP32 input.{hint}"
    if len(shape) == 3:
        return f"shape {shape} has no batch axis: Triton expects [batch, 1, T, T] for a model with max_batch_size > 0."
    if len(shape) != 4 or shape[1] != 1 or shape[2] != shape[3]:
        return f"shape {shape} should be [batch, 1, T, T]: one grey channel, square tiles."
    if shape[0] != BATCH:
        return f"the batch axis is {shape[0]}; the exercise asks for {BATCH} tiles in one request."
    return None


@exercise("03-ideal-batching", "8 requests share each 10 ms call: 800 req/s at best. Overheads take the rest.")
def ideal_batching(value: Any) -> str | None:
    """Best-case requests/s of the fixed-cost model with 8 closed-loop clients and perfect batching."""
    expected = CLIENTS * 1000.0 / FIXED_COST_MS
    got = as_answer_number(value)
    if got is None:
        return not_a_number(value, "ideal_rps = 8 * 1000 / 10")
    if abs(got - expected) <= 0.01 * expected:
        return None
    if abs(got - 1000.0 / FIXED_COST_MS) < 1:
        return "100 req/s is one request per 10 ms call: that is the model without batching."
    if abs(got - 1000.0 / FIXED_COST_MS / CLIENTS) < 1:
        return "you divided by the number of clients; a batch of 8 still takes only 10 ms, so it multiplies."
    if abs(got - CLIENTS / FIXED_COST_MS) < 0.1:
        return "check the units: 10 ms is 0.01 s, so one call per 10 ms is 100 calls per second."
    return f"{got:g} req/s: count the requests finished per 10 ms call, then the calls per second."
