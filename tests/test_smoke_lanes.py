"""The background lanes that run the notebooks: each lane's runs stay on that lane's own cores."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests import smoke_lanes

SHOW_CORES = "import os; print('CORES', sorted(os.sched_getaffinity(0)))"


def test_lanes_split_the_usable_cores_between_them() -> None:
    usable = sorted(os.sched_getaffinity(0))
    assert smoke_lanes.lane_cores(1) == [None]
    if len(usable) < 2:
        pytest.skip("one usable core: there is nothing to split")
    shares = smoke_lanes.lane_cores(2)
    assert all(shares) and set().union(*shares) == set(usable) and not shares[0] & shares[1]  # type: ignore[operator]
    assert smoke_lanes.lane_cores(len(usable) + 1) == [None] * (len(usable) + 1)


def test_a_pinned_run_and_what_it_starts_see_only_the_lane_cores(tmp_path: Path) -> None:
    usable = sorted(os.sched_getaffinity(0))
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {SHOW_CORES!r}])"  # like a kernel
    job = smoke_lanes.Job("probe", tmp_path / "nb" / "00_probe.ipynb", tmp_path, tmp_path,
                          command=[sys.executable, "-c", child])
    (tmp_path / "nb").mkdir()
    job.run(frozenset(usable[:1]))
    assert job.result["returncode"] == 0, job.result
    assert f"CORES {usable[:1]}" in job.result["stdout"]
    job.run(None)
    assert f"CORES {usable}" in job.result["stdout"]


def test_lab_00_runs_first_so_its_later_runs_reuse_its_import_checks(tmp_path: Path) -> None:
    from workshop_utils.instructor import runner

    wanted = {"first:00", "nbmake:00", "first:04", "rerun:04", "alone:06", "first:06"}
    jobs = smoke_lanes.notebook_jobs(runner.lab_notebooks(), wanted, tmp_path)
    order = [job.name for job in jobs]
    firsts = [name for name in order if name.startswith("first:")]
    assert firsts[0] == "first:00", order
    assert order.index("first:00") < order.index("nbmake:00")
    assert order[0] == "alone:06", "the longest run still starts first"
