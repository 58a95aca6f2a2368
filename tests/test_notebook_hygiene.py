"""Lab notebooks follow the conventions in CONTRIBUTING.md: committed clean, with the agreed header and cells."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from workshop_utils.instructor import runner

NOTEBOOKS = runner.lab_notebooks()
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_labs_exist_and_are_numbered() -> None:
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_environment_check.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path: Path) -> None:
    for index, cell in enumerate(load(path)["cells"]):
        if cell["cell_type"] != "code" or "keep_output" in cell.get("metadata", {}).get("tags", []):
            continue
        assert not cell.get("outputs") and cell.get("execution_count") is None, (
            f"{path.name} cell {index} carries outputs or an execution count: run `make strip`"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_kernelspec_is_python3(path: Path) -> None:
    assert load(path)["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_header_has_the_agreed_fields(path: Path) -> None:
    cells = load(path)["cells"]
    header = source(cells[0])
    number = path.stem[:2]
    assert cells[0]["cell_type"] == "markdown"
    assert re.match(rf"# {number} · \S", header), f"{path.name}: header must start with '# {number} · Title'"
    assert re.search(r"Teaching: \d+ min · Exercises: \d+ min", header), f"{path.name}: time box missing"
    for field in ("**Questions**", "**Objectives**", "| smoke", "| cpu", "| gpu"):
        assert field in header, f"{path.name}: header lacks {field!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_setup_keypoints_cleanup(path: Path) -> None:
    cells = load(path)["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert "parameters" in code[0].get("metadata", {}).get("tags", []), f"{path.name}: first code cell must be tagged parameters"
    assert re.search(r'^PROFILE = "auto"', source(code[0]), re.M), f'{path.name}: parameters need PROFILE = "auto"'
    setup = source(code[1])
    assert "import workshop_utils as wu" in setup and "print_env()" in setup, f"{path.name}: setup cell"
    assert f'wu.start_lab("{path.stem}"' in setup, f"{path.name}: setup must call wu.start_lab(\"{path.stem}\", PROFILE)"
    everything = "\n".join(source(c) for c in code)
    assert "lab.finish()" in everything, f"{path.name}: results are never written (lab.finish())"
    assert any(c["cell_type"] == "markdown" and "## Key points" in source(c) for c in cells[-3:]), (
        f"{path.name}: '## Key points' belongs near the end"
    )
    assert cells[-1]["cell_type"] == "code" and "cleanup" in source(cells[-1]).lower(), f"{path.name}: last cell cleans up"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_solution_markers_are_closed_and_not_nested(path: Path) -> None:
    for index, cell in enumerate(load(path)["cells"]):
        depth = 0
        for line in source(cell).splitlines():
            if line.strip() == BEGIN:
                depth += 1
                assert depth == 1, f"{path.name} cell {index}: nested {BEGIN}"
            elif line.strip() == END:
                depth -= 1
                assert depth == 0, f"{path.name} cell {index}: {END} without {BEGIN}"
        assert depth == 0, f"{path.name} cell {index}: {BEGIN} is never closed"
        if BEGIN in source(cell):
            # An exported cell holds definitions only (make export), so its check runs in the next code cell.
            exported = source(cell).startswith("#| export")
            following = next((source(c) for c in load(path)["cells"][index + 1:] if c["cell_type"] == "code"), "")
            checked = source(cell) + (following if exported else "")
            assert "wu.check(" in checked, f"{path.name} cell {index}: an exercise needs wu.check(...)" + (
                " in the next code cell" if exported else "")


COMPUTES_WITHOUT_TORCH = {"03_triton_serving": "Triton's ONNX Runtime backend computes; the client only sends tiles"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_lab_that_runs_torch_sets_its_threads_from_the_free_cores(path: Path) -> None:
    """torch's default, one thread per core, waits on a busy neighbour's core: figures would depend on the room."""
    if path.stem in COMPUTES_WITHOUT_TORCH:
        return
    code = "\n".join(source(cell) for cell in load(path)["cells"] if cell["cell_type"] == "code")
    sets_threads = "torch.set_num_threads(" in code and "wu.fair_cpu_threads()" in code
    assert sets_threads or "wu.asr.apply_threads(" in code, (
        f"{path.stem} imports torch but never sets torch.set_num_threads(wu.fair_cpu_threads())")
