"""Every public function and method of workshop_utils is either tested with bad input or exempt with a reason."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "workshop_utils"
GROUP_FILES = sorted(Path(__file__).parent.glob("test_bad_input_*.py"))
# Dunder methods that take caller data; the other dunders are Python plumbing.
CALLER_DUNDERS = {"__call__", "__init__"}


def public_callables() -> set[str]:
    """"module.function" and "module.Class.method" for every public def in the package (read from the source)."""
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts).replace(".__init__", "")
        module = "__init__" if module == "__init__" else module
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                found.add(f"{module}.{node.name}")
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and (not item.name.startswith("_") or item.name in CALLER_DUNDERS):
                        found.add(f"{module}.{node.name}.{item.name}")
    return found


def claimed() -> tuple[set[str], set[str]]:
    """Targets with a bad-input case, and targets declared as taking no caller data."""
    tested: set[str] = set()
    exempt: set[str] = set()
    for path in GROUP_FILES:
        if path.stem == "test_bad_input_coverage":
            continue
        module = importlib.import_module(f"tests.{path.stem}")
        tested |= {case.target for case in module.CASES}
        for target, reason in module.EXEMPT.items():
            assert reason.strip(), f"{path.name}: {target} needs a reason in EXEMPT"
            exempt.add(target)
    return tested, exempt


def test_every_public_callable_is_tested_or_exempt() -> None:
    tested, exempt = claimed()
    missing = sorted(public_callables() - tested - exempt)
    assert not missing, "No bad-input case and no EXEMPT reason for: " + ", ".join(missing)


def test_no_stale_or_double_claims() -> None:
    tested, exempt = claimed()
    known = public_callables()
    assert not sorted((tested | exempt) - known), "claims for callables that no longer exist"
    assert not sorted(tested & exempt), "a callable is both tested and declared as taking no caller data"


@pytest.mark.parametrize("target", ["nuclei.segment_nuclei", "data.fetch", "timing.compare"])
def test_scanner_sees_known_functions(target: str) -> None:
    assert target in public_callables()
