"""Execute every lab notebook in the smoke profile, as CI does; a failure names the notebook and the cell.

The runs start in the background when the session starts, two at a time (``tests/smoke_lanes.py``); each test
here waits for the run it reads and checks what that run left behind.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.smoke_lanes import SmokeLanes
from workshop_utils.core import labs, manifests, paths
from workshop_utils.instructor import runner

NOTEBOOKS = runner.lab_notebooks()
# stem -> wall seconds of its smoke run (kernel start included); conftest prints them against their budgets.
SMOKE_WALL_S: dict[str, float] = {}


def finished_run(lanes: SmokeLanes, name: str) -> tuple[runner.NotebookRun, dict[str, Any]]:
    """The run ``name`` (e.g. ``first:01``) and the results JSON it wrote; fails the test when the run failed."""
    job = lanes.result(name)
    run = job.get("run")
    if run is None:
        detail = job.get("error") or (job.get("stderr", "") or "")[-3000:]
        pytest.fail(f"{name}: the run did not report back: {detail}", pytrace=False)
    if not run.ok:
        pytest.fail(f"{name}: " + runner.describe_failure(run), pytrace=False)
    return run, job.get("record") or {}


@pytest.mark.notebook
@pytest.mark.smoke_job("first")
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_lab_runs_in_smoke_profile(notebook: Path, smoke_runs: SmokeLanes) -> None:
    run, record = finished_run(smoke_runs, f"first:{notebook.name[:2]}")
    assert record.get("profile") == "smoke" and record.get("passed") is True
    assert record["metrics"], f"{notebook.stem} recorded no metrics"
    assert_data_sources_named(notebook, record)
    assert_exercises_pass(notebook, Path(run.executed))
    SMOKE_WALL_S[notebook.stem] = run.wall_s
    budget = labs.smoke_budget_s(notebook.stem)
    assert not labs.is_runaway(run.wall_s, budget), (
        f"{notebook.stem} took {run.wall_s:.0f} s in smoke, over {labs.RUNAWAY_FACTOR:g}x its {budget:.0f} s budget: "
        "a runaway, not a busy neighbour")


def assert_data_sources_named(notebook: Path, record: dict[str, Any]) -> None:
    """Every manifest entry the lab fetches is in its results' ``data_source``, which names only real sources."""
    source = "".join(cell.source for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "code")
    fetched = set(re.findall(r"wu\.fetch\(\s*[\"']([\w.-]+)[\"']", source))
    named = record.get("data_source")
    assert isinstance(named, list), f"{notebook.stem}: results carry no data_source list"
    assert fetched <= set(named), f"{notebook.stem} fetched {sorted(fetched - set(named))} but data_source says {named}"
    assert set(named) <= {"synthetic", *manifests.load_all()}, named


def assert_exercises_pass(solution: Path, executed: Path) -> None:
    """Every wu.check(...) in the solution notebook printed its confirmation, none a hint."""
    calls = sum(cell.source.count("wu.check(") for cell in nbformat.read(solution, as_version=4).cells
                if cell.cell_type == "code")
    printed = "".join(output.get("text", "") for cell in nbformat.read(executed, as_version=4).cells
                      if cell.cell_type == "code" for output in cell.get("outputs", []))
    assert "❌" not in printed, f"{solution.stem}: a solution answer failed its check: " + printed.split("❌")[1][:200]
    assert printed.count("✅") >= calls, f"{solution.stem}: {calls} checks, {printed.count('✅')} confirmations"


@pytest.mark.notebook
@pytest.mark.smoke_job("rerun")
@pytest.mark.parametrize("notebook", [nb for nb in NOTEBOOKS if not nb.stem.startswith("00_")], ids=lambda p: p.stem)
def test_lab_reruns_in_the_same_workspace(notebook: Path, smoke_runs: SmokeLanes) -> None:
    """Second pass: caches, artifacts and results of the first run are present; the lab must pass again.

    Lab 00's second pass is the nbmake test below, in the same workspace.
    """
    _, record = finished_run(smoke_runs, f"rerun:{notebook.name[:2]}")
    assert record.get("passed") is True


@pytest.mark.notebook
@pytest.mark.smoke_job("alone", "06")
def test_capstone_runs_alone_in_a_fresh_workspace(smoke_runs: SmokeLanes) -> None:
    """No artifact from labs 01-05: the capstone rebuilds each through the same workshop_utils code and passes."""
    _, record = finished_run(smoke_runs, "alone:06")
    build = smoke_runs.jobs["alone:06"].build_dir
    assert record["passed"] is True and record["metrics"]["artifacts_rebuilt"] == 4
    assert {p.name for p in (build / "artifacts").iterdir()} >= {
        "nuclei_unet.pt", "nuclei_unet.onnx", "lab_notes_asr.nemo", "cell_clip.pt"}


@pytest.mark.notebook
@pytest.mark.smoke_job("nbmake", "00")
def test_nbmake_runs_a_lab_as_the_readme_says(smoke_runs: SmokeLanes) -> None:
    """``WORKSHOP_PROFILE=smoke pytest --nbmake notebooks/00_environment_check.ipynb`` passes, outputs untouched.

    It runs in the workspace of the smoke pass above, so it is also lab 00's rerun in the same workspace.
    """
    job = smoke_runs.result("nbmake:00")
    assert job.get("returncode") == 0, job.get("error") or job["stdout"][-3000:] + job["stderr"][-2000:]
    assert "1 passed" in job["stdout"]
    assert job.get("record", {}).get("passed") is True, "nbmake's run wrote no passing results file"
    notebook = smoke_runs.jobs["nbmake:00"].notebook
    cells = nbformat.read(notebook, as_version=4).cells
    assert not any(c.get("outputs") for c in cells if c.cell_type == "code"), (
        "nbmake must not write outputs into the committed notebook")
    assert paths.build_dir() == smoke_runs.jobs["nbmake:00"].build_dir
