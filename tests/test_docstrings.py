"""Every workshop_utils function and class a lab notebook calls has a docstring that teaches: ``help(wu.x)``.

The names are the ones :func:`tests.test_bad_input_coverage.notebook_callables` finds in the notebooks. Each
docstring (a class's own docstring, which documents its constructor) needs Google-style sections:

- ``Args:`` when the callable takes a parameter other than ``self``/``cls``;
- ``Returns:`` for a function whose return annotation is not ``None`` (classes skip it);
- ``Example:`` always, showing a typical call as the lab makes it.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import pytest

from tests.test_bad_input_coverage import notebook_callables, resolve

_MISSING = object()



def _return_annotation(function: Callable[..., Any]) -> Any:
    """The return annotation, resolved where possible; the raw (string) annotation when hints do not resolve."""
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # names imported only under TYPE_CHECKING, for example
        hints = None
    if hints is not None:
        return hints.get("return", _MISSING)
    raw = inspect.signature(function).return_annotation
    return _MISSING if raw is inspect.Signature.empty else raw


def _returns_none(annotation: Any) -> bool:
    return annotation is None or annotation is type(None) or (isinstance(annotation, str) and annotation == "None")


def missing_sections(obj: Any) -> list[str]:
    """The sections ``obj``'s docstring lacks: "Args:", "Returns:" and "Example", where each applies."""
    doc = (obj.__doc__ if inspect.isclass(obj) else inspect.getdoc(obj)) or ""
    parameters = [name for name in inspect.signature(obj).parameters if name not in ("self", "cls")]
    wanted = ["Args:"] if parameters else []
    if not inspect.isclass(obj) and not _returns_none(_return_annotation(obj)):
        wanted.append("Returns:")
    wanted.append("Example")
    return [section for section in wanted if section not in doc]


NAMES = sorted(notebook_callables().items())


@pytest.mark.parametrize("name,spelling", NAMES, ids=[spelling for _, spelling in NAMES])
def test_notebook_callable_has_a_teaching_docstring(name: str, spelling: str) -> None:
    missing = missing_sections(resolve(name))
    assert not missing, f"help({spelling}) lacks {', '.join(missing)} (workshop_utils.{name})"


def test_the_list_is_the_notebooks_surface() -> None:
    # Guards the parametrisation: an empty list would make the test above pass by testing nothing.
    assert len(NAMES) >= 80


def test_the_checker_rejects_a_function_without_the_sections() -> None:
    def bare(image: Any, threshold: float = 0.5) -> int:
        """Count something (a summary alone)."""
        return 0

    assert missing_sections(bare) == ["Args:", "Returns:", "Example"]


def test_the_checker_asks_only_for_the_sections_that_apply() -> None:
    def no_parameters_no_result() -> None:
        """Do something.

        Example:
            >>> no_parameters_no_result()
        """

    class Recorder:
        """Record something; the class docstring documents the constructor.

        Args:
            lab: the lab's name.

        Example:
            >>> Recorder("01_monai_nuclei_segmentation")
        """

        def __init__(self, lab: str) -> None:
            self.lab = lab

    class Bare:
        """A summary alone."""

        def __init__(self, lab: str) -> None:
            self.lab = lab

    assert missing_sections(no_parameters_no_result) == []
    assert missing_sections(Recorder) == []
    assert missing_sections(Bare) == ["Args:", "Example"]
