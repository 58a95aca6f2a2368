"""Answer checks for the labs' exercises: ``wu.check("01-transforms", value)``.

Each lab keeps its checks in ``exercises/labNN.py``; a check returns ``None`` for a right answer or a hint that
points at the likely mistake — also for a malformed answer (None, a string, a wrong shape), never an exception.
Modules are imported on first use, so checking lab 00 never imports torch.
"""

from __future__ import annotations

import importlib
import math
import numbers
import re
from collections.abc import Callable
from typing import Any

from workshop_utils.core.errors import InputError
from workshop_utils.core.inputs import bad_input, describe

Checker = Callable[[Any], "str | None"]
_CHECKS: dict[str, tuple[Checker, str]] = {}
_ID = re.compile(r"^(\d\d)-[a-z0-9-]+$")



def exercise(exercise_id: str, confirmation: str) -> Callable[[Checker], Checker]:
    """Register ``fn`` as the check of ``exercise_id``; ``confirmation`` is printed on a right answer."""
    if not isinstance(exercise_id, str) or not _ID.match(exercise_id):
        raise bad_input("exercise", "an id like '01-transforms' (lab number, dash, lower-case name)",
                        describe(exercise_id), "Name the check after its lab: two digits, a dash, then a-z, 0-9, -.")
    if not isinstance(confirmation, str) or not confirmation.strip():
        raise bad_input("exercise", "confirmation as a sentence printed on a right answer",
                        describe(confirmation), "Say what the right answer shows, in one sentence.")

    def register(fn: Checker) -> Checker:
        _CHECKS[exercise_id] = (fn, confirmation)
        return fn

    return register


def _lookup(exercise_id: str) -> tuple[Checker, str]:
    match = _ID.match(exercise_id) if isinstance(exercise_id, str) else None
    if match and exercise_id not in _CHECKS:
        try:
            importlib.import_module(f"{__name__}.lab{match.group(1)}")
        except ModuleNotFoundError:
            pass
    if exercise_id not in _CHECKS:
        known = ", ".join(map(repr, known_checks()))
        raise InputError(f"check: expected an exercise id, one of {known}; got "
                                   f"{describe(exercise_id)}. Check the id in the notebook cell.")
    return _CHECKS[exercise_id]


def check(exercise_id: str, value: Any) -> bool:
    """Print whether ``value`` answers the exercise, with a hint on a wrong answer; return True when right.

    Args:
        exercise_id: the id the notebook cell names, e.g. ``"00-matmul-flops"``; an unknown id is an error.
        value: your answer, of the kind the exercise asks for (a number, an array, a transform list...).

    Returns:
        True when the answer is right; False after printing a hint (also when the answer could not be checked).

    Example:
        >>> wu.check("00-matmul-flops", flops)
    """
    checker, confirmation = _lookup(exercise_id)
    try:
        hint = checker(value)
    except Exception as exc:  # a safety net: checkers return hints for malformed answers themselves
        hint = f"the answer could not be checked ({type(exc).__name__}: {exc}). Look at its type and shape."
    if hint is None:
        print(f"✅ {exercise_id}: correct. {confirmation}")
        return True
    print(f"❌ {exercise_id}: not yet — {hint}")
    return False


def known_checks() -> list[str]:
    """Ids of every exercise check (imports each lab's module)."""
    from pathlib import Path

    for file in sorted(Path(__file__).parent.glob("lab[0-9][0-9].py")):
        importlib.import_module(f"{__name__}.{file.stem}")
    return sorted(_CHECKS)


def as_answer_number(value: Any) -> float | None:
    """A finite real number from an int, float, numpy scalar or one-element array/tensor; None for anything else."""
    if isinstance(value, (str, bytes, bool)):
        return None
    if not isinstance(value, numbers.Real):
        # a torch tensor counts its elements with numel(), a numpy array with .size
        numel = value.numel() if callable(getattr(value, "numel", None)) else getattr(value, "size", None)
        if numel != 1 or not callable(getattr(value, "item", None)):
            return None
        value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return None
    number = float(value)
    return number if math.isfinite(number) else None


def not_a_number(value: Any, example: str) -> str:
    """The hint for an answer that should have been one finite number."""
    return f"expected one finite number, e.g. {example}; got {describe(value)}."
