"""Remove outputs and execution counts from notebooks before a commit (``make strip``; cells tagged ``keep_output`` keep theirs).

``python -m workshop_utils.instructor.notebooks notebooks/*.ipynb``
"""

from __future__ import annotations

import sys

import nbformat


def strip(path: str) -> bool:
    """Strip one notebook in place; return True when it changed."""
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        if cell.cell_type != "code" or "keep_output" in cell.metadata.get("tags", []):
            continue
        if cell.outputs or cell.execution_count is not None:
            cell.outputs, cell.execution_count, changed = [], None, True
    if changed:
        nbformat.write(nb, path)
    return changed


if __name__ == "__main__":
    for notebook in sys.argv[1:]:
        if strip(notebook):
            print(f"stripped {notebook}")
