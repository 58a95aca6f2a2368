"""The notebooks are the one source of the code they teach: ``workshop_utils/lessons/`` is copied from them.

The package's rebuild paths run the lesson modules, so these tests make sure the copy is exact, importable
without running a lesson, and used by the package instead of a second copy that could drift.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import nbformat
import pytest

from workshop_utils.core import paths
from workshop_utils.instructor import export, student

NOTEBOOKS = sorted(paths.notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
# Each lesson definition and the package modules that run it instead of keeping a copy of their own.
LESSON_USERS: dict[str, set[str]] = {
    "lab01.prepare_transforms": {"workshop_utils.nuclei.training"},
    "lab01.augment_transforms": {"workshop_utils.nuclei.training"},
    "lab01.build_unet": {"workshop_utils.nuclei.model"},
    "lab01.train_epoch": {"workshop_utils.nuclei.training"},
    "lab01.sliding_window_logits": {"workshop_utils.nuclei.pipeline"},
    "lab01.split_nuclei": {"workshop_utils.nuclei.pipeline"},
    "lab01.train_steps": {"workshop_utils.nuclei.training"},
    "lab02.export_onnx": {"workshop_utils.acceleration.onnx_export"},
    "lab02.TileCalibrationReader": {"workshop_utils.acceleration.onnx_runtime"},
    "lab02.quantize_int8": {"workshop_utils.acceleration.onnx_runtime"},
    "lab02_runtime.ort_session": {"workshop_utils.acceleration.onnx_runtime"},
    "lab02.build_trt_engine": {"workshop_utils.acceleration.tensorrt_engine"},
    "lab04.build_config": {"workshop_utils.asr.model"},
    "lab04.build_ctc_model": {"workshop_utils.asr.model"},
    "lab04.save_nemo": {"workshop_utils.asr.model"},
    "lab04.restore_nemo": {"workshop_utils.asr.model"},
    "lab04.LossHistory": {"workshop_utils.asr.training"},
    "lab04.build_trainer": {"workshop_utils.asr.training"},
    "lab04.fit_model": {"workshop_utils.asr.training"},
    "lab04.fine_tune_model": {"workshop_utils.asr.training"},
    "lab04.transcribe_files": {"workshop_utils.asr.inference"},
    "lab04.error_rates": {"workshop_utils.asr.inference"},
    "lab04.normalize_text": {"workshop_utils.asr.inference"},
    "lab05.clip_loss": {"workshop_utils.multimodal.clip"},
    "lab05.warmup_cosine": {"workshop_utils.multimodal.clip"},
    "lab05.same_caption_targets": {"workshop_utils.multimodal.clip"},
    "lab05.train_contrastive": {"workshop_utils.multimodal.clip"},
    "lab05.option_logprobs": {"workshop_utils.assistant.llm_intent"},
}


def lesson_names_used_by(module: str) -> set[str]:
    """``labNN.name`` for each lesson name ``module`` imports (``from ...lessons.labNN import name``) or reads
    through an imported lesson module (``from workshop_utils.lessons import lab01 as lesson``; ``lesson.name``)."""
    tree = ast.parse((paths.repo_root() / Path(*module.split("."))).with_suffix(".py").read_text(encoding="utf-8"))
    used, aliases = set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("workshop_utils.lessons"):
            lesson = node.module.rpartition(".")[2]
            for alias in node.names:
                if node.module == "workshop_utils.lessons":
                    aliases[alias.asname or alias.name] = alias.name
                else:
                    used.add(f"{lesson}.{alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            used.add(f"{aliases[node.value.id]}.{node.attr}")
    return used


def test_lesson_modules_are_exact_copies_of_the_notebooks() -> None:
    assert export.stale_lessons() == [], "run `make export` after editing a notebook's #| export cells"


def test_every_lab_with_a_rebuilt_artifact_exports_its_lesson() -> None:
    modules = export.lesson_modules()
    assert {"lab01", "lab02", "lab02_runtime", "lab04", "lab05"} <= set(modules)
    for module in modules.values():
        assert module.path.is_file() and module.cells


@pytest.mark.parametrize("lesson", sorted(LESSON_USERS))
def test_the_package_runs_the_lesson_code_itself(lesson: str) -> None:
    for module in LESSON_USERS[lesson]:
        assert lesson in lesson_names_used_by(module), f"{module} does not use lessons.{lesson}: is it a copy?"


def test_every_exported_definition_has_a_package_user() -> None:
    """An exported function nobody in the package runs needs no export; one missing here is untested."""
    defined = {f"{name}.{node.name}" for name, module in export.lesson_modules().items()
               for node in ast.parse(module.render()).body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    assert defined == set(LESSON_USERS)


def test_lesson_modules_import_without_running_anything() -> None:
    for name in export.lesson_modules():
        importlib.import_module(f"workshop_utils.lessons.{name}")


def test_a_change_in_the_notebook_makes_the_copy_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = tmp_path / "notebooks" / "01_x.ipynb"
    notebook.parent.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("#| export\ndef f() -> int:\n    return 1"),
                                         nbformat.v4.new_code_cell("print(f())")])
    nbformat.write(nb, notebook)
    (tmp_path / "workshop_utils" / "lessons").mkdir(parents=True)
    monkeypatch.setattr(paths, "repo_root", lambda: tmp_path)
    monkeypatch.setattr(paths, "notebooks_dir", lambda: tmp_path / "notebooks")
    assert export.stale_lessons() == ["lab01.py differs from 01_x.ipynb"]
    assert [p.name for p in export.write_lessons()] == ["lab01.py"]
    assert export.stale_lessons() == []
    text = (tmp_path / "workshop_utils" / "lessons" / "lab01.py").read_text()
    assert "def f() -> int:\n    return 1" in text and "print(f())" not in text and "\n#| export" not in text
    nb.cells[0].source = "#| export\ndef f() -> int:\n    return 2"
    nbformat.write(nb, notebook)
    assert export.stale_lessons() == ["lab01.py differs from 01_x.ipynb"]
    (tmp_path / "workshop_utils" / "lessons" / "old.py").write_text("")
    assert "old.py is exported by no notebook" in export.stale_lessons()


@pytest.mark.parametrize("source, fragment", [
    ("#| export\nprint('runs on import')", "Expr statement"),
    ("#| export\nfor i in range(3):\n    pass", "For statement"),
    ("#| export\n!pip install x", "plain Python"),
    ("#| export not-a-name\nx = 1", "module name"),
])
def test_exported_cells_hold_only_definitions(tmp_path: Path, source: str, fragment: str) -> None:
    notebook = tmp_path / "01_x.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), notebook)
    with pytest.raises(export.InputError, match=fragment):
        export.lesson_modules([notebook])


def test_solution_markers_stay_in_the_notebook_and_the_solution_in_the_module() -> None:
    code = export.exported_code("#| export\ndef f() -> int:\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION")
    assert code == "def f() -> int:\n    return 1"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_copies_are_valid_python_and_stub_at_statement_level(notebook: Path, tmp_path: Path) -> None:
    """Each stub is a statement (a raise inside a list or call would be a SyntaxError, not the exercise)."""
    copy = tmp_path / notebook.name
    student.student_notebook(notebook, copy)
    for index, cell in enumerate(nbformat.read(copy, as_version=4).cells):
        if cell.cell_type != "code":
            continue
        code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("!", "%")))
        try:
            ast.parse(code)
        except SyntaxError as error:
            pytest.fail(f"{notebook.name} cell {index}: the student copy does not parse ({error.msg}, line {error.lineno})")
