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


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_lab_reruns_in_the_same_workspace(notebook) -> None:
    """Second pass: caches, artifacts and results of the first run are present; the lab must pass again."""
    run = runner.run_notebook(notebook, "smoke", out_dir=paths.build_dir() / "executed-rerun", cell_timeout_s=600)
    if not run.ok:
        pytest.fail("rerun: " + runner.describe_failure(run), pytrace=False)
    assert json.loads((paths.results_dir() / f"{notebook.stem}.json").read_text())["passed"] is True


@pytest.mark.notebook
def test_capstone_runs_alone_in_a_fresh_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No artifact from labs 01-05: the capstone rebuilds each through the same workshop_utils code and passes."""
    build = tmp_path / "build"
    monkeypatch.setenv("WORKSHOP_BUILD_DIR", str(build))
    capstone = next(nb for nb in NOTEBOOKS if nb.stem.startswith("06_"))
    run = runner.run_notebook(capstone, "smoke", out_dir=build / "executed", cell_timeout_s=900)
    if not run.ok:
        pytest.fail("alone: " + runner.describe_failure(run), pytrace=False)
    record = json.loads((build / "results" / f"{capstone.stem}.json").read_text())
    assert record["passed"] is True and record["metrics"]["artifacts_rebuilt"] == 4
    assert {p.name for p in (build / "artifacts").iterdir()} >= {
        "nuclei_unet.pt", "nuclei_unet.onnx", "lab_notes_asr.nemo", "cell_clip.pt"}
