"""The command line: doctor, verify, prefetch and the run summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from workshop_utils import __main__ as cli
from workshop_utils.instructor import runner


def test_doctor_json_reports_hardware_profile_and_data(capsys) -> None:
    assert cli.main(["doctor", "--json", "--quick"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"hardware", "versions", "profile", "labs", "data"} <= set(report)
    assert report["profile"]["profile"] in {"smoke", "cpu", "gpu"}


def test_doctor_imports_are_checked_in_subprocesses() -> None:
    from workshop_utils.instructor import doctor

    ok = doctor._try_import("json", "import json", 30)
    bad = doctor._try_import("nope", "import no_such_module_xyz", 30)
    assert ok.ok and not bad.ok and "no_such_module_xyz" in bad.detail


def test_verify_passes_on_the_shipped_manifests(capsys) -> None:
    assert cli.main(["verify"]) == 0
    assert "pass the schema check" in capsys.readouterr().out


def test_prefetch_unknown_lab_is_a_clear_error(capsys) -> None:
    assert cli.main(["prefetch", "--lab", "42"]) == 2
    assert "No data set" in capsys.readouterr().err


def test_module_entry_point_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "workshop_utils", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "doctor" in proc.stdout


def test_summary_lists_each_lab_with_metrics(isolated_dirs: Path) -> None:
    from workshop_utils.core import results

    lab = results.start_lab("00_environment_check", "smoke")
    lab.record(matmul_gflops=12.5)
    lab.finish()
    run = runner.NotebookRun("00_environment_check", "smoke", True, 3.0, "x.ipynb")
    failed = runner.NotebookRun("01_monai_nuclei_segmentation", "smoke", False, 5.0, "y.ipynb", "ValueError: bad", 7)
    summary = runner.write_summary([run, failed]).read_text()
    assert "matmul_gflops=12.5" in summary and "| pass |" in summary
    assert "FAIL in cell [7]: ValueError: bad ([log](y.ipynb))" in summary
    assert "cell [7]" in runner.describe_failure(failed)


def test_a_failed_lab_gets_one_line_in_the_summary(isolated_dirs: Path) -> None:
    traceback = "ConnectionRefusedError: [Errno 111] Connection refused\n  File a.py | line 1\n" + "frame\n" * 200
    failed = runner.NotebookRun("03_triton_serving", "cpu", False, 9.0, "build/executed/03.ipynb", traceback, 13)
    rows = [line for line in runner.write_summary([failed]).read_text().splitlines() if line.startswith("| 03_")]
    assert len(rows) == 1 and "frame" not in rows[0] and rows[0].count("|") == 6
    assert "FAIL in cell [13]: ConnectionRefusedError: [Errno 111] Connection refused" in rows[0]
    assert "[log](build/executed/03.ipynb)" in rows[0]
