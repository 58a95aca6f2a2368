"""Execute lab notebooks with papermill (``make run``, ``make test``) and summarise their results."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workshop_utils.core import paths
from workshop_utils.core.errors import MissingFileError
from workshop_utils.core.inputs import bad_input, describe, require_file, require_int, require_path
from workshop_utils.core.labs import LABS
from workshop_utils.core.profiles import require_profile
from workshop_utils.core.results import load_results


@dataclass
class NotebookRun:
    """The outcome of executing one notebook."""

    notebook: str
    profile: str
    ok: bool
    wall_s: float
    executed: str
    error: str | None = None
    failed_cell: int | None = None


def lab_notebooks(selection: list[str] | None = None) -> list[Path]:
    """Lab notebooks in number order, optionally only those whose stem starts with one of ``selection``."""
    found = sorted(paths.notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
    if selection is None:
        return found
    if isinstance(selection, (str, bytes)) or not isinstance(selection, (list, tuple)):
        raise bad_input("lab_notebooks", "selection as a list of lab prefixes", describe(selection),
                        "Wrap it in a list: lab_notebooks(['01']) (or pass None for every lab).")
    known = ", ".join(nb.stem for nb in found) or f"none in {paths.notebooks_dir()}"
    for item in selection:
        if not isinstance(item, str) or not item or not any(nb.stem.startswith(item) for nb in found):
            raise bad_input("lab_notebooks", f"lab numbers or names from the known labs: {known}", describe(item),
                            "Pass a prefix such as '01' or a full name such as '01_monai_nuclei_segmentation'.")
    return [nb for nb in found if any(nb.stem.startswith(s) for s in selection)] if selection else found


def kernel_environment() -> None:
    """Make the ``python3`` kernel this interpreter's, and keep progress bars out of executed notebooks."""
    venv_kernels = Path(sys.prefix) / "share" / "jupyter"
    if venv_kernels.is_dir():
        current = os.environ.get("JUPYTER_PATH", "")
        os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(venv_kernels), current) if p)
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


def run_notebook(
    notebook: Path,
    profile: str = "auto",
    *,
    out_dir: Path | None = None,
    cell_timeout_s: int = 900,
    parameters: dict[str, Any] | None = None,
) -> NotebookRun:
    """Execute ``notebook`` with ``PROFILE=profile``; a failing cell is reported in the result, not raised.

    Bad arguments (a missing notebook, an unknown profile, a non-positive timeout) raise before papermill starts.
    """
    fix = "Pass a lab notebook path, e.g. runner.lab_notebooks(['01'])[0]."
    notebook = require_file(notebook, "run_notebook", "notebook", fix)
    if notebook.suffix != ".ipynb":
        raise bad_input("run_notebook", "notebook as a .ipynb file", str(notebook), fix)
    require_profile(profile, "run_notebook", allow_auto=True)
    cell_timeout_s = require_int(cell_timeout_s, "run_notebook", "cell_timeout_s", minimum=1)
    if out_dir is not None:
        fix = "Pass a folder for the executed copies, e.g. out_dir=tmp_path / 'executed'."
        if require_path(out_dir, "run_notebook", "out_dir", fix).is_file():
            raise bad_input("run_notebook", "out_dir as a folder path (or None for build/executed)",
                            f"{out_dir} (a file)", fix)
    if parameters is not None and (not isinstance(parameters, Mapping)
                                   or not all(isinstance(k, str) and k.isidentifier() for k in parameters)):
        raise bad_input("run_notebook", "parameters as a dict of variable name -> value", describe(parameters),
                        "Name the notebook's parameters-cell variables, e.g. parameters={'MAX_STEPS': 20}.")
    import papermill
    from papermill.exceptions import PapermillExecutionError

    kernel_environment()
    target_dir = Path(out_dir) if out_dir is not None else paths.build_dir() / "executed"
    target_dir.mkdir(parents=True, exist_ok=True)
    executed = target_dir / notebook.name
    params = {"PROFILE": profile, **(parameters or {})}
    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters=params,
            kernel_name="python3",
            cwd=str(notebook.parent),
            execution_timeout=cell_timeout_s,
            progress_bar=False,
            log_output=False,
        )
    except PapermillExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue}".strip()
        return NotebookRun(notebook.stem, profile, False, time.perf_counter() - started, str(executed),
                           error, exc.exec_count)
    except Exception as exc:  # kernel died, timeout, bad notebook JSON: report, let the next lab run
        return NotebookRun(notebook.stem, profile, False, time.perf_counter() - started, str(executed),
                           f"{type(exc).__name__}: {exc}")
    return NotebookRun(notebook.stem, profile, True, time.perf_counter() - started, str(executed))


def describe_failure(run: NotebookRun) -> str:
    """One paragraph naming the notebook, the failing cell and where to read the full traceback."""
    if not isinstance(run, NotebookRun):
        raise bad_input("describe_failure", "a NotebookRun (what run_notebook returns)", describe(run),
                        "Pass the result of runner.run_notebook(...).")
    cell = f"cell [{run.failed_cell}]" if run.failed_cell is not None else "a cell (or the kernel)"
    return (
        f"{run.notebook} failed in {cell} after {run.wall_s:.0f} s (profile {run.profile}): {run.error}\n"
        f"Full traceback: {run.executed} (open it in JupyterLab, search for 'Traceback')."
    )


def write_summary(runs: list[NotebookRun]) -> Path:
    """Write ``build/summary.md`` and ``build/summary.json`` from the runs and the labs' results files."""
    if not isinstance(runs, (list, tuple)) or not runs or not all(isinstance(run, NotebookRun) for run in runs):
        raise bad_input("write_summary", "a non-empty list of NotebookRun (what run_notebook returns)", describe(runs),
                        "Pass the list run_labs builds: [runner.run_notebook(nb, profile) for nb in notebooks].")
    results = {record.get("lab"): record for record in load_results()}
    rows = []
    for run in runs:
        record = results.get(run.notebook, {})
        metrics = record.get("metrics", {})
        keys = LABS[run.notebook].key_metrics if run.notebook in LABS else list(metrics)[:4]
        shown = {key: metrics[key] for key in keys if key in metrics}
        passed = run.ok and bool(record.get("passed", False))
        rows.append({**asdict(run), "passed": passed, "metrics": shown,
                     "profile_used": record.get("profile", run.profile), "lab_wall_s": record.get("wall_s")})
    build = paths.build_dir()
    (build / "summary.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    lines = ["# Workshop run summary", "", "| lab | profile | wall s | key metrics | result |", "|---|---|---|---|---|"]
    for row in rows:
        figures = ", ".join(f"{k}={_fmt(v)}" for k, v in row["metrics"].items()) or "—"
        verdict = "pass" if row["passed"] else _failure_cell(row)
        lines.append(f"| {row['notebook']} | {row['profile_used']} | {row['wall_s']:.0f} | {figures} | {verdict} |")
    summary = build / "summary.md"
    summary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return summary


def _failure_cell(row: Mapping[str, Any]) -> str:
    """One line for a failed lab in the summary table: the error's first line, the failing cell, a link to its log."""
    first_line = (row.get("error") or "expectations failed").strip().splitlines()[0][:160].replace("|", "\\|")
    cell = f" in cell [{row['failed_cell']}]" if row.get("failed_cell") is not None else ""
    return f"FAIL{cell}: {first_line} ([log]({Path(row['executed']).as_posix()}))"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def run_labs(profile: str = "auto", selection: list[str] | None = None, cell_timeout_s: int = 1800) -> list[NotebookRun]:
    """Execute the labs in order, printing progress, and write the summary; keeps going past a failed lab."""
    require_profile(profile, "run_labs", allow_auto=True)
    cell_timeout_s = require_int(cell_timeout_s, "run_labs", "cell_timeout_s", minimum=1)
    runs = []
    notebooks = lab_notebooks(selection)
    if not notebooks:
        raise MissingFileError(f"run_labs: expected lab notebooks NN_*.ipynb in {paths.notebooks_dir()}; got none. "
                               "Run from the repository checkout or set WORKSHOP_ROOT to it.")
    for notebook in notebooks:
        print(f"▶ {notebook.stem} (profile {profile}) …", flush=True)
        run = run_notebook(notebook, profile, cell_timeout_s=cell_timeout_s)
        print(f"  {'✓ passed' if run.ok else '✗ ' + describe_failure(run)} in {run.wall_s:.0f} s", flush=True)
        runs.append(run)
    summary = write_summary(runs)
    print(f"\nSummary: {summary}\n" + summary.read_text(encoding="utf-8"))
    return runs
