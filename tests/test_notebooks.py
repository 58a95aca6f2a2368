"""Execute every lab notebook in the smoke profile, as CI does; a failure names the notebook and the cell."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from workshop_utils.core import labs, paths
from workshop_utils.instructor import runner

NOTEBOOKS = runner.lab_notebooks()
# stem -> wall seconds of its smoke run (kernel start included); conftest prints them against their budgets.
SMOKE_WALL_S: dict[str, float] = {}


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
    SMOKE_WALL_S[notebook.stem] = run.wall_s
    budget = labs.smoke_budget_s(notebook.stem)
    assert not labs.is_runaway(run.wall_s, budget), (
        f"{notebook.stem} took {run.wall_s:.0f} s in smoke, over {labs.RUNAWAY_FACTOR:g}x its {budget:.0f} s budget: "
        "a runaway, not a busy neighbour")


def assert_exercises_pass(solution: Path, executed: Path) -> None:
    """Every wu.check(...) in the solution notebook printed its confirmation, none a hint."""
    calls = sum(cell.source.count("wu.check(") for cell in nbformat.read(solution, as_version=4).cells
                if cell.cell_type == "code")
    printed = "".join(output.get("text", "") for cell in nbformat.read(executed, as_version=4).cells
                      if cell.cell_type == "code" for output in cell.get("outputs", []))
    assert "❌" not in printed, f"{solution.stem}: a solution answer failed its check: " + printed.split("❌")[1][:200]
    assert printed.count("✅") >= calls, f"{solution.stem}: {calls} checks, {printed.count('✅')} confirmations"


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", [nb for nb in NOTEBOOKS if not nb.stem.startswith("00_")], ids=lambda p: p.stem)
def test_lab_reruns_in_the_same_workspace(notebook) -> None:
    """Second pass: caches, artifacts and results of the first run are present; the lab must pass again.

    Lab 00's second pass is the nbmake test below, in the same workspace.
    """
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


@pytest.mark.notebook
def test_nbmake_runs_a_lab_as_the_readme_says() -> None:
    """``WORKSHOP_PROFILE=smoke pytest --nbmake notebooks/00_environment_check.ipynb`` passes, outputs untouched.

    It runs in the workspace of the smoke pass above, so it is also lab 00's rerun in the same workspace.
    """
    import os
    import subprocess
    import sys

    notebook = next(nb for nb in NOTEBOOKS if nb.stem.startswith("00_"))
    before = notebook.read_bytes()
    results_file = paths.results_dir() / f"{notebook.stem}.json"
    results_file.unlink(missing_ok=True)  # what the smoke pass wrote; nbmake's run must write it anew
    env = dict(os.environ, WORKSHOP_PROFILE="smoke", WORKSHOP_BUILD_DIR=str(paths.build_dir()))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake",
                           "--nbmake-timeout=600", str(notebook)], env=env, capture_output=True, text=True,
                          cwd=notebook.parents[1], timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout
    assert json.loads(results_file.read_text())["passed"] is True
    assert notebook.read_bytes() == before, "nbmake must not write outputs into the committed notebook"
