"""Execute every lab notebook in the smoke profile, as CI does; a failure names the notebook and the cell."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from workshop_utils import paths, runner

NOTEBOOKS = runner.lab_notebooks()


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_lab_runs_in_smoke_profile(notebook) -> None:
    run = runner.run_notebook(notebook, "smoke", out_dir=paths.build_dir() / "executed", cell_timeout_s=600)
    if not run.ok:
        pytest.fail(runner.describe_failure(run), pytrace=False)
    record = json.loads((paths.results_dir() / f"{notebook.stem}.json").read_text())
    assert record["profile"] == "smoke" and record["passed"] is True
    assert record["metrics"], f"{notebook.stem} recorded no metrics"
    assert_exercises_pass(notebook, Path(run.executed))
    budget = runner.SMOKE_BUDGET_S.get(notebook.stem, 90)
    assert run.wall_s <= budget, f"{notebook.stem} took {run.wall_s:.0f} s in smoke; its budget is {budget:.0f} s"


def assert_exercises_pass(solution: Path, executed: Path) -> None:
    """Every wu.check(...) in the solution notebook printed its confirmation, none a hint."""
    calls = sum(cell.source.count("wu.check(") for cell in nbformat.read(solution, as_version=4).cells
                if cell.cell_type == "code")
    printed = "".join(output.get("text", "") for cell in nbformat.read(executed, as_version=4).cells
                      if cell.cell_type == "code" for output in cell.get("outputs", []))
    assert "❌" not in printed, f"{solution.stem}: a solution answer failed its check: " + printed.split("❌")[1][:200]
    assert printed.count("✅") >= calls, f"{solution.stem}: {calls} checks, {printed.count('✅')} confirmations"
