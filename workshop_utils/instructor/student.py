"""Attendee copies of the labs (``make student``): solution regions become ``# YOUR CODE HERE`` stubs.

The notebooks in ``notebooks/`` are the tested solutions. Exercise code sits between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` (nbgrader's markers); the student copy replaces each region, markers included, with
``# YOUR CODE HERE`` and ``raise NotImplementedError()`` at the marker's indentation, and clears all outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat

from workshop_utils.core import paths
from workshop_utils.core.errors import InputError
from workshop_utils.core.inputs import bad_input, describe, require_file, require_path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def _target_path(value: Any, where: str, name: str, fix: str) -> Path:
    """``value`` as a path that may be written, never one of the solution notebooks in ``notebooks/``."""
    path = require_path(value, where, name, fix)
    resolved, solutions = path.resolve(), paths.notebooks_dir().resolve()
    if resolved == solutions or (resolved.parent == solutions and resolved.suffix == ".ipynb"):
        raise bad_input(where, f"{name} outside {solutions} (the tested solutions)", str(path),
                        "Write student copies elsewhere, e.g. the default student/ folder.")
    return path


def strip_solutions(source: str, where: str = "cell") -> str:
    """Replace each marked solution region in ``source`` with a stub at the same indentation."""
    if not isinstance(source, str):
        raise bad_input("strip_solutions", "source as one string (a cell's source)", describe(source),
                        "Join a list of lines first: ''.join(cell['source']), or pass nbformat's cell.source.")
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.splitlines(), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise InputError(f"{where} line {number}: nested {BEGIN}; expected {END} to close the first region first. "
                                  f"Add the missing {END}.")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out += [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError()"]
        elif marker == END:
            if not inside:
                raise InputError(f"{where} line {number}: {END} without a matching {BEGIN}; expected {BEGIN} above it. "
                                  "Add the BEGIN marker or delete the stray END.")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise InputError(f"{where}: {BEGIN} is never closed; expected {END} after the solution. Add it at the end of the region.")
    return "\n".join(out)


def student_notebook(solution: Path, target: Path) -> int:
    """Write the attendee copy of one notebook; returns how many exercises it holds."""
    solution = require_file(solution, "student_notebook", "solution", "Pass a lab notebook, e.g. notebooks/01_*.ipynb.")
    target = _target_path(target, "student_notebook", "target", "Pass the copy's path, e.g. student/01_lab.ipynb.")
    nb = nbformat.read(solution, as_version=4)
    exercises = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if BEGIN in cell.source or END in cell.source:
            exercises += cell.source.count(BEGIN)
            cell.source = strip_solutions(cell.source, f"{solution.name} cell {index}")
        cell.outputs, cell.execution_count = [], None
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return exercises


def make_student_notebooks(out_dir: Path | None = None) -> dict[str, int]:
    """Attendee copies of every lab under ``student/`` (or ``out_dir``): notebook name -> exercise count."""
    target = paths.repo_root() / "student" if out_dir is None else _target_path(
        out_dir, "make_student_notebooks", "out_dir", "Pass a folder for the copies, or leave it out for student/.")
    counts = {}
    for notebook in sorted(paths.notebooks_dir().glob("[0-9][0-9]_*.ipynb")):
        counts[notebook.name] = student_notebook(notebook, target / notebook.name)
    return counts
