"""Bad input, in one place: every wrong call listed anywhere runs here, and every name a notebook calls has one.

``test_rejects`` collects the ``CASES`` of every ``tests/test_bad_input_<area>.py`` into one parametrised test.

Attendees type the names the notebooks use (``wu.fetch``, ``wu.nuclei.segment_nuclei``); those must answer a wrong
argument with a message that says what was expected. Internal helpers need no such case. Each
``tests/test_bad_input_<area>.py`` lists ``CASES`` and ``EXEMPT``; targets are spelled ``module.name`` (or
``module.Class.method``) under ``workshop_utils`` and compared by the object they name, so a name re-exported by a
package (``nuclei.segment_nuclei``) and its defining module (``nuclei.pipeline.segment_nuclei``) count as one.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest

import workshop_utils as wu
from tests.badinput import Case, assert_rejects, parametrize

ROOT = Path(__file__).resolve().parents[1]
GROUP_FILES = sorted(Path(__file__).parent.glob("test_bad_input_*.py"))
WU_NAME = re.compile(r"(?<![\w.])wu\.(\w+)(?:\.(\w+))?")


def canonical(obj: Any) -> str:
    """``module.qualname`` of the object a target names, relative to ``workshop_utils``."""
    target = obj.__func__ if inspect.ismethod(obj) else obj
    module = target.__module__.removeprefix("workshop_utils.").removeprefix("workshop_utils")
    return f"{module or '__init__'}.{target.__qualname__}"


def resolve(target: str) -> Any:
    """The object ``target`` names: the longest importable module prefix, then attributes (class attributes are
    read from the class ``__dict__``, so a property is the property, not its value)."""
    parts = target.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        dotted = "workshop_utils" if module_name == "__init__" else f"workshop_utils.{module_name}"
        try:
            obj: Any = importlib.import_module(dotted)
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            obj = vars(obj)[attribute] if inspect.isclass(obj) and attribute in vars(obj) else getattr(obj, attribute)
        return obj
    raise LookupError(f"{target}: no such module under workshop_utils")


def all_cases() -> list[Case]:
    """The wrong calls listed in every area's file, in file order."""
    cases: list[Case] = []
    for path in GROUP_FILES:
        if path.stem != "test_bad_input_coverage":
            cases += importlib.import_module(f"tests.{path.stem}").CASES
    return cases


@parametrize(all_cases())
def test_rejects(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_BUILD_DIR", str(tmp_path / "build"))  # a wrong call must not touch the real build/
    assert_rejects(case)


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in all_cases()]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def notebook_callables() -> dict[str, str]:
    """canonical name -> the spelling a notebook used, for every workshop_utils function or class it calls."""
    found: dict[str, str] = {}
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        source = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
        for first, second in WU_NAME.findall(source):
            obj = getattr(wu, first)
            spelling = f"wu.{first}"
            if inspect.ismodule(obj) and second:
                obj, spelling = getattr(obj, second), f"wu.{first}.{second}"
            if inspect.isfunction(obj) or inspect.isclass(obj):
                if inspect.isclass(obj) and issubclass(obj, BaseException):
                    continue
                found[canonical(obj)] = spelling
    return found


def claimed() -> tuple[dict[str, str], dict[str, str]]:
    """canonical name -> target string, for targets with a case and for targets declared exempt."""
    tested: dict[str, str] = {}
    exempt: dict[str, str] = {}
    for path in GROUP_FILES:
        if path.stem == "test_bad_input_coverage":
            continue
        module = importlib.import_module(f"tests.{path.stem}")
        for case in module.CASES:
            tested[canonical_target(case.target)] = case.target
        for target, reason in module.EXEMPT.items():
            assert reason.strip(), f"{path.name}: {target} needs a reason in EXEMPT"
            exempt[canonical_target(target)] = target
    return tested, exempt


def canonical_target(target: str) -> str:
    obj = resolve(target)
    if isinstance(obj, property):  # a property is a method the attendee reads without calling
        obj = obj.fget
    if isinstance(obj, (classmethod, staticmethod)):
        obj = obj.__func__
    if inspect.isclass(obj):  # a class target means its constructor
        return canonical(obj)
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        return canonical(obj)
    if callable(obj):
        return canonical(type(obj))
    raise AssertionError(f"{target} names {type(obj).__name__}, not a function or class")


def constructor_key(key: str) -> str:
    """Cases for ``Class.__init__`` cover the class itself."""
    return key.removesuffix(".__init__")


def test_every_notebook_callable_is_tested_or_exempt() -> None:
    tested, exempt = claimed()
    covered = {constructor_key(k) for k in tested} | {constructor_key(k) for k in exempt}
    used = notebook_callables()
    missing = sorted(spelling for key, spelling in used.items() if key not in covered)
    assert not missing, "No bad-input case and no EXEMPT reason for these notebook names: " + ", ".join(missing)


def test_the_surface_is_the_size_the_notebooks_use() -> None:
    # A guard on the scanner itself: the labs call on the order of a hundred workshop_utils names.
    used = notebook_callables()
    assert len(used) >= 80, sorted(used)
    assert "nuclei.pipeline.segment_nuclei" in used and "core.data.fetch" in used


def test_no_double_claims() -> None:
    tested, exempt = claimed()
    both = sorted(set(tested) & set(exempt))
    assert not both, f"both tested and declared as taking no caller data: {both}"


@pytest.mark.parametrize("target", ["nuclei.segment_nuclei", "core.data.fetch", "core.timing.compare"])
def test_targets_resolve_to_the_object(target: str) -> None:
    assert callable(resolve(target))
