"""Attendee copies of the labs (``make student``): solution regions become ``# YOUR CODE HERE`` stubs.

The notebooks in ``notebooks/`` are the tested solutions. Exercise code sits between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` (nbgrader's markers); the student copy replaces each region, markers included, with
``# YOUR CODE HERE`` and ``raise NotImplementedError()`` at the marker's indentation, and clears all outputs.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from . import paths

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


class MarkerError(ValueError):
    """Solution markers that are unclosed, nested or stray."""


def strip_solutions(source: str, where: str = "cell") -> str:
    """Replace each marked solution region in ``source`` with a stub at the same indentation."""
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.splitlines(), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise MarkerError(f"{where} line {number}: nested {BEGIN}; close the first region with {END}.")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out += [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError()"]
        elif marker == END:
            if not inside:
                raise MarkerError(f"{where} line {number}: {END} without a matching {BEGIN}.")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise MarkerError(f"{where}: {BEGIN} is never closed with {END}.")
    return "\n".join(out)


def student_notebook(solution: Path, target: Path) -> int:
    """Write the attendee copy of one notebook; returns how many exercises it holds."""
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
    target = out_dir or paths.repo_root() / "student"
    counts = {}
    for notebook in sorted(paths.notebooks_dir().glob("[0-9][0-9]_*.ipynb")):
        counts[notebook.name] = student_notebook(notebook, target / notebook.name)
    return counts
