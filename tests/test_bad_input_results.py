"""Bad input to timing, the results record, the runner, the report, the student copies and the slides."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.badinput import Case
from workshop_utils.core import labs, results, timing
from workshop_utils.core.errors import InputError, MissingFileError, ProfileError, WorkshopError
from workshop_utils.instructor import report, runner, slides, student

ROOT = Path(__file__).resolve().parents[1]
NB0 = ROOT / "notebooks" / "00_environment_check.ipynb"
DECK0 = ROOT / "slides" / "00_environment_check.md"
THIS = Path(__file__)  # an existing file that is neither a notebook nor a deck
MISSING = Path("/no/such/folder")


def noop() -> None:
    return None


class _Savable:
    """Stands in for a matplotlib Figure: the name check must fire before anything is written."""

    def savefig(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("savefig must not run for a bad name")


def recorder() -> results.LabRecorder:
    """A recorder that is never finished, so nothing is written."""
    return results.LabRecorder(lab="99_demo", profile="smoke")


def a_run() -> runner.NotebookRun:
    return runner.NotebookRun("00_environment_check", "smoke", False, 3.0, "x.ipynb", "ValueError: bad", 7)


CASES = [
    # timing
    Case("core.timing.percentile", lambda: timing.percentile([], 50), "at least one sample", label="empty"),
    Case("core.timing.percentile", lambda: timing.percentile([1.0, 2.0], 150), r"q at least 0 and at most 100", label="q-high"),
    Case("core.timing.percentile", lambda: timing.percentile([1.0, 2.0], -1), r"q at least 0 and at most 100", label="q-negative"),
    Case("core.timing.percentile", lambda: timing.percentile([1.0, float("nan")], 50), "finite values in samples", label="nan"),
    Case("core.timing.percentile", lambda: timing.percentile([[1.0, 2.0]], 50), "samples 1-D", label="2d"),
    Case("core.timing.percentile", lambda: timing.percentile(["1", "2"], 50), "numeric dtype", label="strings"),
    Case("core.timing.benchmark", lambda: timing.benchmark(3.0), r"callable.*lambda", label="not-callable"),
    Case("core.timing.benchmark", lambda: timing.benchmark(noop, iters=0), "iters at least 1", label="iters-zero"),
    Case("core.timing.benchmark", lambda: timing.benchmark(noop, iters=2.5), "iters as a whole number", label="iters-float"),
    Case("core.timing.benchmark", lambda: timing.benchmark(noop, warmup=-1), "warmup at least 0", label="warmup-negative"),
    Case("core.timing.benchmark", lambda: timing.benchmark(noop, items_per_call=0), "items_per_call at least 1", label="items"),
    Case("core.timing.benchmark", lambda: timing.benchmark(noop, name=3), "name as a string", label="name"),
    Case("core.timing.benchmark", lambda: timing.benchmark(noop, min_time_s=-1.0), "min_time_s", label="min-time"),
    Case("core.timing.compare", lambda: timing.compare({}), "non-empty dict", label="empty"),
    Case("core.timing.compare", lambda: timing.compare([noop, noop]), r"dict of name -> callable", label="list"),
    Case("core.timing.compare", lambda: timing.compare({1: noop}), "candidate name as a non-blank string", label="name-int"),
    Case("core.timing.compare", lambda: timing.compare({"torch": 3.0}), r"candidates\['torch'\] as a callable", label="value"),
    Case("core.timing.compare", lambda: timing.compare({"torch": noop}, rounds=0), "rounds at least 1", label="rounds"),
    Case("core.timing.compare", lambda: timing.compare({"torch": noop}, warmup=-2), "warmup at least 0", label="warmup"),
    Case("core.timing.speedup_phrase", lambda: timing.speedup_phrase(0.0, "ORT", "torch"), "speedup above 0.0", label="zero"),
    Case("core.timing.speedup_phrase", lambda: timing.speedup_phrase(float("nan"), "ORT", "torch"), "finite number", label="nan"),
    Case("core.timing.speedup_phrase", lambda: timing.speedup_phrase(1.2, "", "torch"), "subject as a non-blank name", label="subject"),
    Case("core.timing.speedup_phrase", lambda: timing.speedup_phrase(1.2, "ORT", 3), "baseline as a non-blank name", label="baseline"),
    Case("core.timing.speedup_phrase", lambda: timing.speedup_phrase(1.2, "ORT", "torch", tolerance=2), "tolerance", label="tolerance"),
    # the lab registry
    Case("core.labs.smoke_budget_s", lambda: labs.smoke_budget_s(None), "lab notebook's name", label="none"),
    Case("core.labs.is_over_budget", lambda: labs.is_over_budget(None, 90.0), "wall_s as a finite number", label="wall"),
    Case("core.labs.is_runaway", lambda: labs.is_runaway("90", 90.0), "wall_s as a finite number", label="wall"),
    Case("core.labs.is_runaway", lambda: labs.is_runaway(90.0, 0), "budget_s above 0.0", label="budget"),
    # results
    Case("core.results.LabRecorder.expect_speed_sane", lambda: recorder().expect_speed_sane("", 1.2), "comparison as a non-blank", label="blank"),
    Case("core.results.LabRecorder.expect_speed_sane", lambda: recorder().expect_speed_sane("ORT vs torch", "1.2"), "finite number", label="text"),
    Case("core.results.LabRecorder.expect_speed_sane", lambda: recorder().expect_speed_sane("ORT vs torch", float("inf")), "finite number", label="inf"),
    Case("core.results.start_lab", lambda: results.start_lab("lab01", "smoke"), r"known labs: 00_environment_check", label="not-a-stem"),
    Case("core.results.start_lab", lambda: results.start_lab("01_monai_nuclei_segmentation.ipynb", "smoke"), r"without folder or \.ipynb", label="suffix"),
    Case("core.results.start_lab", lambda: results.start_lab("notebooks/01_monai_nuclei_segmentation", "smoke"), "notebook stem", label="path"),
    Case("core.results.start_lab", lambda: results.start_lab(1, "smoke"), "notebook stem", label="int"),
    Case("core.results.start_lab", lambda: results.start_lab("99_demo", "auto"), r"one of 'smoke', 'cpu', 'gpu'; got str 'auto'.*choose_profile", ProfileError, label="auto"),
    Case("core.results.start_lab", lambda: results.start_lab("99_demo", "laptop"), "one of 'smoke', 'cpu', 'gpu'; got str 'laptop'", ProfileError, label="unknown"),
    Case("core.results.LabRecorder.record", lambda: recorder().record(latencies=[1.0, 2.0]), "one named figure per metric", label="list"),
    Case("core.results.LabRecorder.record", lambda: recorder().record(summary={"a": 1}), r"number, bool, string or None", label="dict"),
    Case("core.results.LabRecorder.record", lambda: recorder().record(artifact=Path("x.onnx")), r"str\(\) an object", label="object"),
    Case("core.results.LabRecorder.record", lambda: recorder().record(latency=np.array([1.0, 2.0])), "one named figure", label="array"),
    Case("core.results.LabRecorder.record", lambda: recorder().record(**{"": 1.0}), "metric name as a non-blank string", label="empty-name"),
    Case("core.results.LabRecorder.record", lambda: recorder().record(**{"dice real": 1.0}), "without spaces", label="spaced-name"),
    Case("core.results.LabRecorder.figure", lambda: recorder().figure("not a figure", "loss"), "matplotlib Figure",
         label="not-a-figure"),
    Case("core.results.LabRecorder.figure", lambda: recorder().figure(_Savable(), "../escape"), "file name",
         label="path-name"),
    Case("core.results.LabRecorder.expect", lambda: recorder().expect("", True), "non-blank sentence", label="empty-name"),
    Case("core.results.LabRecorder.expect", lambda: recorder().expect("dice", None), r"True/False.*got NoneType", label="none"),
    Case("core.results.LabRecorder.expect", lambda: recorder().expect("dice", "0.9 >= 0.8"), "True/False", label="string"),
    Case("core.results.LabRecorder.expect", lambda: recorder().expect("dice", np.array([True, False])), "True/False", label="array"),
    Case("core.results.LabRecorder.expect", lambda: recorder().expect("dice", True, 0.75), "detail as a string", label="detail"),
    Case("core.results.require_results_folder", lambda: results.require_results_folder(MISSING, "instructor.report.collect"), r"report\.collect: expected directory to be an existing folder", label="missing"),
    Case("core.results.load_results", lambda: results.load_results(MISSING), r"existing folder; got /no/such/folder \(missing\)", label="missing"),
    Case("core.results.load_results", lambda: results.load_results(THIS), r"\(a file\)", label="file"),
    Case("core.results.load_results", lambda: results.load_results(3), "directory as a path", label="int"),
    # report
    Case("instructor.report.declared_minutes", lambda: report.declared_minutes(MISSING / "01.ipynb"), r"missing\)", label="missing"),
    Case("instructor.report.declared_minutes", lambda: report.declared_minutes(THIS), "Jupyter notebook", label="not-json"),
    Case("instructor.report.declared_minutes", lambda: report.declared_minutes(None), "as a path", label="none"),
    Case("instructor.report.collect", lambda: report.collect(MISSING), r"results_dir to be an existing folder", label="missing"),
    Case("instructor.report.write_report", lambda: report.write_report(target=THIS.parent), "target as a file path", label="folder"),
    Case("instructor.report.write_report", lambda: report.write_report(target=MISSING / "instructor.report.html"), "existing folder", label="no-parent"),
    Case("instructor.report.write_report", lambda: report.write_report(results_dir=MISSING), "results_dir", label="results-missing"),
    # runner
    Case("instructor.runner.lab_notebooks", lambda: runner.lab_notebooks(["42"]), r"known labs: 00_environment_check, 01_", label="unknown"),
    Case("instructor.runner.lab_notebooks", lambda: runner.lab_notebooks("01"), r"Wrap it in a list", label="string"),
    Case("instructor.runner.lab_notebooks", lambda: runner.lab_notebooks([1]), "known labs", label="int"),
    Case("instructor.runner.run_notebook", lambda: runner.run_notebook(MISSING / "01.ipynb", "smoke"), r"missing\)", label="missing"),
    Case("instructor.runner.run_notebook", lambda: runner.run_notebook(THIS, "smoke"), r"\.ipynb file", label="not-notebook"),
    Case("instructor.runner.run_notebook", lambda: runner.run_notebook(NB0, "fast"), r"one of 'smoke', 'cpu', 'gpu', 'auto'", ProfileError, label="profile"),
    Case("instructor.runner.run_notebook", lambda: runner.run_notebook(NB0, "smoke", cell_timeout_s=0), "cell_timeout_s at least 1", label="timeout"),
    Case("instructor.runner.run_notebook", lambda: runner.run_notebook(NB0, "smoke", parameters={"max steps": 2}), "variable name", label="params"),
    Case("instructor.runner.run_labs", lambda: runner.run_labs("fast"), "one of 'smoke'", ProfileError, label="profile"),
    Case("instructor.runner.run_labs", lambda: runner.run_labs("smoke", cell_timeout_s=-5), "cell_timeout_s at least 1", label="timeout"),
    Case("instructor.runner.run_labs", lambda: runner.run_labs("smoke", ["42"]), "known labs", label="unknown-lab"),
    Case("instructor.runner.describe_failure", lambda: runner.describe_failure("it failed"), "NotebookRun", label="string"),
    Case("instructor.runner.write_summary", lambda: runner.write_summary([]), "non-empty list of NotebookRun", label="empty"),
    Case("instructor.runner.write_summary", lambda: runner.write_summary(a_run()), "list of NotebookRun", label="single"),
    Case("instructor.runner.write_summary", lambda: runner.write_summary(["00_environment_check"]), "NotebookRun", label="strings"),
    # student
    Case("instructor.student.strip_solutions", lambda: student.strip_solutions(["x = 1\n", "y = 2"]), r"''\.join", label="lines"),
    Case("instructor.student.strip_solutions", lambda: student.strip_solutions("### BEGIN SOLUTION\n### BEGIN SOLUTION\n"), "nested", label="nested"),
    Case("instructor.student.strip_solutions", lambda: student.strip_solutions("a = 1\n### END SOLUTION"), "without a matching", label="stray"),
    Case("instructor.student.strip_solutions", lambda: student.strip_solutions("### BEGIN SOLUTION\na = 1"), "never closed", label="unclosed"),
    Case("instructor.student.student_notebook", lambda: student.student_notebook(MISSING / "01.ipynb", MISSING / "s.ipynb"), r"missing\)", label="missing"),
    Case("instructor.student.student_notebook", lambda: student.student_notebook(NB0, NB0), "outside .*tested solutions", label="overwrite"),
    Case("instructor.student.make_student_notebooks", lambda: student.make_student_notebooks(ROOT / "notebooks"), "tested solutions", label="solutions"),
    Case("instructor.student.make_student_notebooks", lambda: student.make_student_notebooks(3), "out_dir as a path", label="int"),
    # slides
    Case("instructor.slides.build_deck", lambda: slides.build_deck(MISSING / "01.md", ROOT), r"missing\)", label="missing"),
    Case("instructor.slides.build_deck", lambda: slides.build_deck(THIS, ROOT), r"Markdown \(\.md\)", label="not-markdown"),
    Case("instructor.slides.build_deck", lambda: slides.build_deck(DECK0, MISSING), "out_dir to be an existing folder", label="no-out-dir"),
    Case("instructor.slides.build_slides", lambda: slides.build_slides(THIS), "out_dir as a folder path", label="file"),
    Case("instructor.slides.build_slides", lambda: slides.build_slides(3), "out_dir as a path", label="int"),
]
EXEMPT = {
    "core.timing.cuda_sync": "takes no arguments",
    "core.timing.Stopwatch.__init__": "takes no arguments",
    "core.timing.Comparison.stable": "a property of a finished comparison",
    "core.timing.Comparison.verdict": "no arguments: words for the spread compare() measured",
    "core.timing.Timing.as_dict": "reads a finished result; its samples come from benchmark/compare, which are checked",
    "core.timing.Timing.mean_ms": "property of a finished result",
    "core.timing.Timing.p50_ms": "property of a finished result (an empty one fails in percentile, tested above)",
    "core.timing.Timing.p90_ms": "property of a finished result",
    "core.timing.Timing.p99_ms": "property of a finished result",
    "core.timing.Timing.throughput_per_s": "property of a finished result",
    "core.results.peak_rss_mib": "takes no arguments",
    "core.results.LabRecorder.as_dict": "takes no arguments; reads what record/expect already checked",
    "core.results.LabRecorder.finish": "takes no arguments; writes what record/expect already checked",
    "core.results.LabRecorder.passed": "property of the recorder",
    "core.results.LabRecorder.path": "property of the recorder (its lab name is checked by start_lab)",
    "instructor.report.LabHealth.within_budget": "property of a row that collect builds",
    "instructor.runner.kernel_environment": "takes no arguments",
    "instructor.slides.revealjs_dir": "takes no arguments",
}



def test_bad_run_notebook_arguments_never_reach_papermill(monkeypatch: pytest.MonkeyPatch) -> None:
    papermill = pytest.importorskip("papermill")
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: pytest.fail("papermill started"))
    for case in CASES:
        if case.target in ("instructor.runner.run_notebook", "instructor.runner.run_labs"):
            with pytest.raises(WorkshopError):
                case.call()


def test_errors_are_also_the_builtin_exceptions_attendees_catch() -> None:
    with pytest.raises(ValueError):
        timing.benchmark(noop, iters=0)
    with pytest.raises(ValueError, match="empty"):
        timing.percentile([], 50)
    with pytest.raises(ValueError):
        recorder().record(latencies=[1.0])
    with pytest.raises(ValueError, match="not 'auto'"):
        results.start_lab("99_demo", "auto")
    assert issubclass(InputError, ValueError) and issubclass(MissingFileError, FileNotFoundError)


def test_timing_accepts_what_the_labs_pass() -> None:
    assert timing.percentile((1, 2, 3, 4), 50) == pytest.approx(2.5)
    assert timing.percentile(np.array([1.0, 2.0, 3.0], np.float32), np.int64(100)) == pytest.approx(3.0)
    assert isinstance(timing.percentile([1.0, 2.0], 50), float)
    result = timing.benchmark(noop, name="noop", warmup=np.int64(0), iters=np.int64(3), items_per_call=8)
    assert len(result.samples_ms) == 3 and result.as_dict()["iterations"] == 3.0
    timings = timing.compare({"batch 1": noop, "batch 8": lambda: None}, warmup=0, rounds=2, items_per_call=1)
    assert set(timings) == {"batch 1", "batch 8"}


def test_recorder_accepts_what_the_labs_record(isolated_dirs: Path) -> None:
    lab = results.start_lab("99_demo", "smoke")
    lab.record(dice=np.float32(0.75), count=np.int64(118), ok=np.bool_(True), device="cpu", peak=None,
               missing=float("nan"), ratio=float("inf"), latency_ms_b8=1.5, **{"recall_at_5_i2t": 0.9})
    lab.expect("numpy comparison", np.float64(0.9) >= 0.8, "0.900")
    lab.expect("python bool", True)
    torch = pytest.importorskip("torch")
    lab.record(loss=torch.tensor(0.5), steps=torch.tensor(3))
    lab.expect("torch comparison", torch.tensor(2.0) > 1.0)
    record = json.loads(lab.finish().read_text())
    assert record["metrics"]["missing"] is None and record["metrics"]["ratio"] is None
    assert record["metrics"]["ok"] is True and record["metrics"]["count"] == 118 and record["metrics"]["steps"] == 3
    assert [e["ok"] for e in record["expectations"]] == [True, True, True]


def test_every_notebook_stem_is_a_valid_lab_name(isolated_dirs: Path) -> None:
    for notebook in runner.lab_notebooks():
        assert results.start_lab(notebook.stem, "cpu").lab == notebook.stem
    assert results.load_results(str(isolated_dirs)) == []


def test_runner_selection_and_failures_as_the_cli_passes_them() -> None:
    everything = runner.lab_notebooks()
    assert runner.lab_notebooks(None) == everything == runner.lab_notebooks([])
    chosen = runner.lab_notebooks(["00", "01_monai"])
    assert [nb.stem[:2] for nb in chosen] == ["00", "01"]
    assert runner.lab_notebooks(("02",))[0].stem.startswith("02")
    assert "cell [7]" in runner.describe_failure(a_run())


def test_report_student_and_slides_accept_valid_paths(tmp_path: Path) -> None:
    assert report.declared_minutes(str(NB0))[0] > 0
    assert student.strip_solutions("x = 1\n    ### BEGIN SOLUTION\n    y = 2\n    ### END SOLUTION") == (
        "x = 1\n    # YOUR CODE HERE\n    raise NotImplementedError()")
    assert student.strip_solutions("") == ""
    assert student.student_notebook(NB0, tmp_path / "copy.ipynb") >= 1
    deck = slides.build_deck(DECK0, tmp_path)
    assert deck == tmp_path / "00_environment_check.html" and deck.is_file()
