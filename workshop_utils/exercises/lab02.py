"""Lab 02's exercise: Amdahl's law for an end-to-end speedup when only the model gets faster."""

from __future__ import annotations

from typing import Any

from workshop_utils.exercises import as_answer_number, exercise, not_a_number

FRACTION, SPEEDUP = 0.6, 2.5


@exercise("02-amdahl", "Only the accelerated fraction shrinks: 1 / ((1 - f) + f / s). The rest caps the gain.")
def amdahl(value: Any) -> str | None:
    """End-to-end speedup when a fraction f = 0.6 of the time runs s = 2.5 times faster."""
    got = as_answer_number(value)
    if got is None:
        return not_a_number(value, "predicted = 1 / ((1 - f) + f / s)")
    expected = 1 / ((1 - FRACTION) + FRACTION / SPEEDUP)
    if abs(got - expected) < 1e-6:
        return None
    if abs(got - SPEEDUP) < 1e-6:
        return "2.5 is the model-only speedup; the 40% spent outside the model does not get faster."
    if abs(got - 1 / (FRACTION / SPEEDUP)) < 1e-6:
        return "you dropped the part that is not accelerated: add (1 - f) to the new time."
    if abs(got - ((1 - FRACTION) + FRACTION / SPEEDUP)) < 1e-6:
        return "that is the new time as a fraction of the old one; the speedup is its inverse."
    return f"new time = (1 - f) + f / s of the old; speedup = old / new. You gave {got:.3f}."
