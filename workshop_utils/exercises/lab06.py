"""Lab 06's exercise: name the stage to accelerate first (the one with the largest median latency)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from workshop_utils.core.inputs import describe
from workshop_utils.exercises import exercise


@exercise("06-slowest-stage", "Accelerate the stage with the largest median first: it bounds what any other gain buys.")
def slowest_stage(value: Any) -> str | None:
    """``value`` is (the stage you picked, the measured {stage: p50 ms} dict)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        return f"expected a pair (your answer, stage_p50); got {describe(value)}."
    choice, stage_p50 = value
    if not isinstance(stage_p50, Mapping) or not stage_p50:
        return ("expected stage_p50 as a non-empty {stage: median ms} dict; pass (your answer, stage_p50) so the "
                "check can compare with what you measured.")
    values = list(stage_p50.values())
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        return f"expected stage_p50 as {{stage: median ms}} with finite numbers; got {describe(dict(stage_p50))}."
    if not isinstance(choice, str):
        return (f"expected your answer as a stage name (a str), one of {sorted(map(str, stage_p50))}; got "
                f"{describe(choice)}.")
    median_of: Callable[[Any], Any] = stage_p50.get  # every value was checked above to be a finite number
    slowest = max(stage_p50, key=median_of)
    if choice == slowest:
        return None
    if choice not in stage_p50:
        return f"{choice!r} is not a stage; the stages are {sorted(map(str, stage_p50))}."
    if choice == min(stage_p50, key=median_of):
        return "that is the fastest stage; look for the largest value in stage_p50."
    return f"{choice!r} takes {stage_p50[choice]:.0f} ms, but another stage takes longer. Use max(stage_p50, key=stage_p50.get)."
