"""Answer checks for the labs' exercises: ``wu.check("01-transforms", value)``.

Each lab keeps its checks in ``exercises/labNN.py``; a check returns ``None`` for a right answer or a hint that
points at the likely mistake. Modules are imported on first use, so checking lab 00 never imports torch.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Callable

Checker = Callable[[Any], "str | None"]
_CHECKS: dict[str, tuple[Checker, str]] = {}
_ID = re.compile(r"^(\d\d)-[a-z0-9-]+$")


def exercise(exercise_id: str, confirmation: str) -> Callable[[Checker], Checker]:
    """Register ``fn`` as the check of ``exercise_id``; ``confirmation`` is printed on a right answer."""
    if not _ID.match(exercise_id):
        raise ValueError(f"Exercise ids look like '01-transforms' (lab number, dash, name); got {exercise_id!r}.")

    def register(fn: Checker) -> Checker:
        _CHECKS[exercise_id] = (fn, confirmation)
        return fn

    return register


def _lookup(exercise_id: str) -> tuple[Checker, str]:
    match = _ID.match(exercise_id)
    if match and exercise_id not in _CHECKS:
        try:
            importlib.import_module(f"{__name__}.lab{match.group(1)}")
        except ModuleNotFoundError:
            pass
    if exercise_id not in _CHECKS:
        known = ", ".join(sorted(_CHECKS)) or "none loaded"
        raise KeyError(f"No check named {exercise_id!r}. Known checks: {known}. Check the id in the notebook cell.")
    return _CHECKS[exercise_id]


def check(exercise_id: str, value: Any) -> bool:
    """Print whether ``value`` answers the exercise, with a hint on a wrong answer; return True when right."""
    checker, confirmation = _lookup(exercise_id)
    try:
        hint = checker(value)
    except Exception as exc:  # a malformed answer deserves a hint, not a traceback
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
