"""Lesson cells become package modules (``make export``): the notebook is the one source of the code it teaches.

A lab writes the library calls it teaches in its own cells. Where a later lab must rebuild that lab's artifact
without running it, the package needs the same code, so the cells that define it start with nbdev's directive:

``#| export`` copies the cell into ``workshop_utils/lessons/labNN.py`` (NN from the notebook's name);
``#| export <name>`` copies it into ``workshop_utils/lessons/<name>.py`` (lab 02's ONNX Runtime cells go to a
module without torch, for the Triton worker).

Cells are copied in notebook order, with the directive and the exercise markers (``### BEGIN SOLUTION``) taken
out, under a header saying where they came from. An exported cell holds only imports, definitions and constants,
so importing the module runs no lesson. ``tests/test_lessons.py`` fails when a module differs from its notebook;
``python -m workshop_utils.instructor.export`` rewrites them, ``--check`` lists the stale ones.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from workshop_utils.core import paths
from workshop_utils.core.errors import InputError
from workshop_utils.instructor.student import BEGIN, END

DIRECTIVE = "#| export"
LESSONS = "lessons"
# Statements a lesson module may hold at its top level: importing it must run nothing but definitions.
ALLOWED_STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)


@dataclass
class LessonModule:
    """One generated module: its name under ``workshop_utils/lessons/``, the notebook and the cells it copies."""

    name: str
    notebook: Path
    cells: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return paths.repo_root() / "workshop_utils" / LESSONS / f"{self.name}.py"

    def render(self) -> str:
        """The module's text: a header naming the notebook, then each cell's code, two blank lines apart."""
        notebook = self.notebook.relative_to(paths.repo_root()).as_posix()
        header = (f'"""Lab {self.notebook.name[:2]}\'s lesson code, copied by ``make export`` from {notebook}.\n\n'
                  "Do not edit: change the notebook's ``#| export`` cells and run ``make export``; "
                  "tests/test_lessons.py\nfails while this file and the notebook differ.\n\"\"\"\n"
                  "# ruff: noqa: E402, I001  (each cell brings its own imports, where the notebook shows them)\n\n"
                  "from __future__ import annotations\n")
        return header + "".join(f"\n\n{code}\n" for code in self.cells)


def exported_code(source: str) -> str | None:
    """A cell's code for its module, or None when the cell is not exported; the directive line is dropped."""
    first, _, rest = source.partition("\n")
    if not first.startswith(DIRECTIVE):
        return None
    lines = [line for line in rest.splitlines() if line.strip() not in (BEGIN, END)]
    return "\n".join(lines).strip("\n")


def target_of(source: str, notebook: Path) -> str:
    """The module name an exported cell goes to: the directive's argument, or ``labNN``."""
    argument = source.partition("\n")[0][len(DIRECTIVE):].strip()
    name = argument or f"lab{notebook.name[:2]}"
    if not name.isidentifier():
        raise InputError(f"{notebook.name}: expected '{DIRECTIVE}' or '{DIRECTIVE} <module name>'; got "
                         f"{source.partition(chr(10))[0]!r}. Name the module with letters, digits and underscores.")
    return name


def check_statements(code: str, where: str) -> None:
    """Raise when exported code would run something on import (a call, a loop, a print)."""
    try:
        tree = ast.parse(code)
    except SyntaxError as error:
        raise InputError(f"{where}: an exported cell must be plain Python; line {error.lineno}: {error.msg}. "
                         "Move IPython magics and shell lines to a cell without the directive.") from error
    for node in tree.body:
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if not (isinstance(node, ALLOWED_STATEMENTS) or docstring):
            raise InputError(f"{where} line {node.lineno}: expected only imports, definitions and constants in an "
                             f"exported cell; got a {type(node).__name__} statement. Move it to the next cell.")


def lesson_modules(notebooks: Iterable[Path] | None = None) -> dict[str, LessonModule]:
    """Every module the notebooks export, by name, with its cells in notebook order."""
    modules: dict[str, LessonModule] = {}
    for notebook in sorted(notebooks if notebooks is not None else paths.notebooks_dir().glob("[0-9][0-9]_*.ipynb")):
        for index, cell in enumerate(nbformat.read(notebook, as_version=4).cells):
            code = exported_code(cell.source) if cell.cell_type == "code" else None
            if code is None:
                continue
            check_statements(code, f"{notebook.name} cell {index}")
            name = target_of(cell.source, notebook)
            module = modules.setdefault(name, LessonModule(name, notebook))
            if module.notebook != notebook:
                raise InputError(f"{notebook.name} cell {index}: module {name!r} is already exported by "
                                 f"{module.notebook.name}; expected one notebook per module. Pick another name.")
            module.cells.append(code)
    return modules


def stale_lessons() -> list[str]:
    """What differs between the notebooks and ``workshop_utils/lessons/``: one line per stale or orphan file."""
    modules = lesson_modules()
    stale = [f"{m.path.name} differs from {m.notebook.name}" for m in modules.values()
             if not m.path.is_file() or m.path.read_text(encoding="utf-8") != m.render()]
    folder = paths.repo_root() / "workshop_utils" / LESSONS
    stale += [f"{p.name} is exported by no notebook" for p in sorted(folder.glob("*.py"))
              if p.stem != "__init__" and p.stem not in modules]
    return stale


def write_lessons() -> list[Path]:
    """Rewrite every lesson module from its notebook; returns the files that changed."""
    changed = []
    for module in lesson_modules().values():
        text = module.render()
        if not module.path.is_file() or module.path.read_text(encoding="utf-8") != text:
            module.path.write_text(text, encoding="utf-8")
            changed.append(module.path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list stale modules and exit 1 instead of writing")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_lessons()
        print("\n".join(stale) or "lessons are in step with the notebooks")
        return 1 if stale else 0
    for path in write_lessons():
        print(f"wrote {path.relative_to(paths.repo_root())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
