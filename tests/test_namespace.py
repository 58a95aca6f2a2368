"""The one import a lab needs: ``import workshop_utils as wu``, light at import, complete under tab completion."""

from __future__ import annotations

import subprocess
import sys

import pytest

import workshop_utils as wu


def test_every_public_name_resolves() -> None:
    missing = [name for name in wu.__all__ if not hasattr(wu, name)]
    assert not missing, missing


@pytest.mark.parametrize("module", sorted(wu.SUBMODULES))
def test_lazy_modules_are_offered_by_tab_completion(module: str) -> None:
    assert module in dir(wu) and module in wu.__all__


def test_importing_wu_loads_no_framework() -> None:
    code = ("import sys, workshop_utils as wu; heavy = {'torch', 'monai', 'nemo', 'pytriton', 'onnxruntime'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"import workshop_utils loaded {out}; load these on first use instead"


def test_a_lazy_module_loads_on_first_use_and_once() -> None:
    code = ("import sys, workshop_utils as wu; assert 'workshop_utils.serving' not in sys.modules; "
            "first = wu.serving; assert wu.serving is first is sys.modules['workshop_utils.serving']; print('ok')")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "ok"


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'no_such_thing'"):
        wu.no_such_thing  # noqa: B018


def test_one_spelling_per_name_in_the_notebooks() -> None:
    # Domain code is wu.<module>.<name>; no notebook reaches into workshop_utils by another import.
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "notebooks"
    for notebook in sorted(root.glob("[0-9][0-9]_*.ipynb")):
        source = "\n".join("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"]
                           if c["cell_type"] == "code")
        assert "from workshop_utils" not in source and "import workshop_utils." not in source, notebook.name
