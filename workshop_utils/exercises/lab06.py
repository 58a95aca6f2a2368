"""Lab 06's exercise: name the stage to accelerate first (the one with the largest median latency)."""

from __future__ import annotations

from typing import Any

from . import exercise


@exercise("06-slowest-stage", "Accelerate the stage with the largest median first: it bounds what any other gain buys.")
def slowest_stage(value: Any) -> str | None:
    """``value`` is (the stage you picked, the measured {stage: p50 ms} dict)."""
    choice, stage_p50 = value
    if not isinstance(stage_p50, dict) or not stage_p50:
        return "pass (your answer, stage_p50) so the check can compare with what you measured."
    slowest = max(stage_p50, key=stage_p50.get)
    if choice == slowest:
        return None
    if choice not in stage_p50:
        return f"{choice!r} is not a stage; the stages are {sorted(stage_p50)}."
    if choice == min(stage_p50, key=stage_p50.get):
        return "that is the fastest stage; look for the largest value in stage_p50."
    return f"{choice!r} takes {stage_p50[choice]:.0f} ms, but another stage takes longer. Use max(stage_p50, key=stage_p50.get)."
