"""Shared pieces of the bad-input tests: a case is one wrong call and what its error must say.

Each ``tests/test_bad_input_<group>.py`` lists ``CASES`` (wrong calls) and ``EXEMPT`` (public callables that
take nothing a caller could get wrong, or answer checks that return a hint instead of raising, each with the
reason); ``test_bad_input_coverage.py`` checks that together they name every public function and method.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from workshop_utils.core.errors import WorkshopError


@dataclass(frozen=True)
class Case:
    """One wrong call of ``target`` ("module.function" or "module.Class.method") and a regex its message must match."""

    target: str
    call: Callable[[], Any]
    match: str
    error: type[BaseException] = WorkshopError
    label: str = ""

    @property
    def id(self) -> str:
        return f"{self.target}:{self.label}" if self.label else self.target


def assert_rejects(case: Case) -> str:
    """Run the wrong call; it must raise a WorkshopError that says what was expected and matches ``case.match``."""
    with pytest.raises(case.error) as info:
        case.call()
    error = info.value
    message = str(error)
    assert isinstance(error, WorkshopError), f"{case.id} raised {type(error).__name__}, not a WorkshopError: {message}"
    assert re.search(r"expected|known|one of", message, re.I), f"{case.id}: message does not say what was expected: {message}"
    assert re.search(case.match, message), f"{case.id}: message {message!r} does not match {case.match!r}"
    assert len(message) >= 40, f"{case.id}: message too short to say what to do: {message!r}"
    return message


def parametrize(cases: list[Case]) -> Any:
    """``@parametrize(CASES)`` on a test that takes ``case``."""
    return pytest.mark.parametrize("case", cases, ids=[c.id for c in cases])
