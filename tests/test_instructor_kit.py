"""Student copies from the tested solutions, and the health report."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from tests.smoke_lanes import wait_for
from workshop_utils.core import results
from workshop_utils.instructor import report, runner, student

NOTEBOOKS = runner.lab_notebooks()


def test_solution_regions_become_stubs_at_the_same_indentation() -> None:
    source = "x = 1\nif x:\n    ### BEGIN SOLUTION\n    y = 2 * x\n    ### END SOLUTION\n    print(y)"
    assert student.strip_solutions(source) == (
        "x = 1\nif x:\n    # YOUR CODE HERE\n    raise NotImplementedError()\n    print(y)"
    )


@pytest.mark.parametrize("source, fragment", [
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "nested"),
    ("a = 1\n### END SOLUTION", "without a matching"),
    ("### BEGIN SOLUTION\na = 1", "never closed"),
])
def test_bad_markers_are_reported(source: str, fragment: str) -> None:
    with pytest.raises(student.InputError, match=fragment):
        student.strip_solutions(source)


def test_student_copies_hold_no_solution_text_and_no_outputs(tmp_path: Path) -> None:
    counts = student.make_student_notebooks(tmp_path)
    assert set(counts) == {nb.name for nb in NOTEBOOKS}
    for notebook in NOTEBOOKS:
        solution = nbformat.read(notebook, as_version=4)
        copy = nbformat.read(tmp_path / notebook.name, as_version=4)
        assert len(copy.cells) == len(solution.cells)
        for original, stubbed in zip(solution.cells, copy.cells, strict=True):
            assert student.BEGIN not in stubbed.source and student.END not in stubbed.source
            if student.BEGIN in original.source:
                hidden = original.source.split(student.BEGIN)[1].split(student.END)[0].strip()
                for line in hidden.splitlines():
                    assert line.strip() not in stubbed.source, f"{notebook.name}: solution line {line!r} leaked"
                assert "raise NotImplementedError()" in stubbed.source
            if stubbed.cell_type == "code":
                assert not stubbed.outputs and stubbed.execution_count is None
    assert counts["00_environment_check.ipynb"] >= 1


@pytest.mark.notebook
@pytest.mark.parametrize("prefix", ["00_", "01_"], ids=["exercise-in-a-cell", "exercise-in-an-exported-function"])
def test_student_copy_stops_at_the_first_exercise(tmp_path: Path, prefix: str, request: pytest.FixtureRequest) -> None:
    """Lab 00's stub is in the cell that runs; lab 01's is inside an exported function, called by the next cell."""
    wait_for(request.config, "first:00")  # its import checks, recorded for this environment, spare this run its own
    solution = next(nb for nb in NOTEBOOKS if nb.name.startswith(prefix))
    copy = tmp_path / solution.name
    student.student_notebook(solution, copy)
    run = runner.run_notebook(copy, "smoke", out_dir=tmp_path / "executed")
    assert not run.ok and run.error and run.error.startswith("NotImplementedError")
    executed = nbformat.read(tmp_path / "executed" / copy.name, as_version=4)
    code = [c for c in executed.cells if c.cell_type == "code"]
    failing = [i for i, c in enumerate(code) if any(o.get("ename") == "NotImplementedError" for o in c.outputs)]
    assert len(failing) == 1
    stubbed = code[failing[0]] if "# YOUR CODE HERE" in code[failing[0]].source else code[failing[0] - 1]
    assert "# YOUR CODE HERE" in stubbed.source, "the stop is not at the exercise"


def test_declared_minutes_are_read_from_each_header() -> None:
    for notebook in NOTEBOOKS:
        minutes = report.declared_minutes(notebook)
        assert minutes and minutes[0] > 0, f"{notebook.name}: no 'Teaching: N min · Exercises: M min'"


def test_report_flags_failures_and_budget_overruns(isolated_dirs: Path) -> None:
    ok = results.start_lab("00_environment_check", "smoke")
    ok.record(matmul_gflops=10.0)
    ok.finish()
    slow = results.start_lab("99_slow", "smoke")
    slow.finish()
    record = json.loads(slow.path.read_text())
    record["wall_s"], record["passed"] = 5000.0, False
    slow.path.write_text(json.dumps(record))
    page = report.write_report().read_text()
    assert "00_environment_check" in page and "matmul_gflops = 10" in page
    assert "FAIL" in page and "data:image/png;base64," in page
    rows = {row.lab: row for row in report.collect()}
    assert rows["00_environment_check"].within_budget and not rows["99_slow"].passed


def test_troubleshooting_is_keyed_by_the_literal_errors_and_linked_from_the_doctor() -> None:
    from workshop_utils.instructor import doctor

    text = (Path(__file__).parents[1] / "docs" / "troubleshooting.md").read_text()
    for literal in ("CUDA out of memory", "CUDA driver version is insufficient", "Address already in use",
                    "Checksum mismatch", "_recursion_count", "LocalEntryNotFoundError", "pyarrow requires NumPy 2.0"):
        headings = [line for line in text.splitlines() if line.startswith("### ")]
        assert any(literal in heading for heading in headings), f"troubleshooting.md has no heading for {literal!r}"
    report = {"hardware": {"cpu": {"model": "x", "cores": 2, "memory_total_mib": 1024}, "gpus": [],
                           "torch_cuda": {"torch": "2", "built_with_cuda": None, "cuda_available": False}},
              "tritonserver_binary": None, "profile": {"profile": "cpu", "reason": "no GPU found"},
              "imports": [], "labs": {}, "data": []}
    assert "docs/troubleshooting.md" in doctor.render(report)


@pytest.mark.parametrize(("uid", "allow_root"), [(0, True), (1000, False)], ids=["root", "normal-user"])
def test_make_lab_passes_allow_root_only_as_root(tmp_path: Path, uid: int, allow_root: bool) -> None:
    """The recipe `make lab` runs, with `id -u` answering as root or as a normal user and a stand-in jupyter.

    The real server is started as root by tests/test_jupyterlab.py; a normal user cannot be tested for real here
    (the venv's interpreter lives under /root), so this runs the same recipe with the user's answer faked.
    """
    import os
    import subprocess

    root = Path(__file__).resolve().parents[1]
    venv, bin_dir = tmp_path / "venv", tmp_path / "bin"
    (venv / "bin").mkdir(parents=True)
    bin_dir.mkdir()
    jupyter = venv / "bin" / "jupyter"
    jupyter.write_text('#!/bin/sh\necho "jupyter $*"\n')
    fake_id = bin_dir / "id"
    fake_id.write_text(f'#!/bin/sh\n[ "$1" = "-u" ] && echo {uid} || exec /usr/bin/id "$@"\n')
    for script in (jupyter, fake_id):
        script.chmod(0o755)
    (venv / ".workshop-lock-sha256").touch()  # newer than the lock: make does not run setup
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", JUPYTER_TOKEN="t" * 32)
    proc = subprocess.run(["make", "--no-print-directory", "lab", f"VENV={venv}", "PORT=18888", f"LAB_ROOT={tmp_path}"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    launched = next(line for line in proc.stdout.splitlines() if line.startswith("jupyter "))
    assert ("--allow-root" in launched) is allow_root, launched
    assert ("running as root" in proc.stdout) is allow_root, proc.stdout
    assert "--ip=127.0.0.1" in launched and "--IdentityProvider.token=" + "t" * 32 in launched
    assert f"--ServerApp.root_dir={tmp_path}" in launched


def test_a_saved_figure_lands_in_the_results_for_the_slides(isolated_dirs: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lab = results.start_lab("01_monai_nuclei_segmentation", "smoke")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = lab.figure(fig, "loss_curve")
    plt.close(fig)
    assert path.is_file() and path.read_bytes()[:4] == b"\x89PNG"
    record = json.loads(lab.finish().read_text())
    assert record["figures"] == {"loss_curve": "figures/01_monai_nuclei_segmentation/loss_curve.png"}
