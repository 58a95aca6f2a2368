"""Each lab's deck is one an instructor can teach from: 10-15 slides, a diagram, the lab's own figures, the
numbers the room measured, speaker notes on every slide, and timings that add up to the lab's time box."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from workshop_utils.instructor import deck_data

ROOT = Path(__file__).resolve().parents[1]
DECKS = sorted((ROOT / "slides").glob("[0-9][0-9]_*.md"))
TIME = re.compile(r"^Time:\s*(\d+)\s*min", re.M)
TIME_BOX = re.compile(r"Teaching: (\d+) min · Exercises: (\d+) min")


def slides_of(deck: Path) -> list[str]:
    return [s for s in re.split(r"^\n?---\n", deck.read_text(encoding="utf-8"), flags=re.M) if s.strip()]


def notebook_source(deck: Path) -> tuple[str, str]:
    """(code, markdown) of the lab notebook the deck belongs to."""
    cells = json.loads((ROOT / "notebooks" / f"{deck.stem}.ipynb").read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return code, text


def library_keys(lab: str) -> set[str]:
    """Metric keys a lab records with ``lab.record(**result)`` from a workshop_utils call, asked of that call."""
    if lab.startswith("05_"):  # lab.record(**recall), recall = wu.multimodal.retrieval_recall(..., ks=(1, 5))
        import numpy as np
        import torch

        from workshop_utils.multimodal import retrieval_recall

        embeddings = torch.nn.functional.normalize(torch.randn(8, 8), dim=1)
        return set(retrieval_recall(embeddings, embeddings, np.arange(8), ks=(1, 5)))
    return set()


def recorded_metric_patterns(code: str) -> tuple[list[re.Pattern[str]], bool]:
    """Names lab.record(...) sets: keywords, and the keys of ``**{...}`` dict literals or comprehensions (an
    f-string key's {fields} match any word), plus whether some ``**name`` could not be resolved."""
    tree = compile(code, "<lab>", "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)

    def pattern(key: ast.expr) -> str | None:
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return re.escape(key.value)
        if isinstance(key, ast.JoinedStr):
            return "".join(re.escape(v.value) if isinstance(v, ast.Constant) else r"\w+" for v in key.values)
        return None

    patterns, unresolved = [], False
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "record"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "lab"):
            continue
        for keyword in node.keywords:
            if keyword.arg:
                patterns.append(re.escape(keyword.arg))
            elif isinstance(keyword.value, ast.Dict):
                patterns += [p for p in map(pattern, keyword.value.keys) if p]
            elif isinstance(keyword.value, ast.DictComp):
                patterns += [p for p in [pattern(keyword.value.key)] if p]
            else:
                unresolved = True  # e.g. lab.record(**recall): keys built by a library call
    return [re.compile(p) for p in patterns], unresolved


@pytest.mark.parametrize("deck", DECKS, ids=lambda p: p.stem)
def test_deck_has_the_shape_of_a_lesson(deck: Path) -> None:
    slides = slides_of(deck)
    assert 10 <= len(slides) <= 16, f"{deck.name}: {len(slides)} slides (a lab's deck has about 10-15)"
    without_notes = [s.strip().splitlines()[0] for s in slides if "\nNote:" not in s]
    assert not without_notes, f"{deck.name}: slides without speaker notes: {without_notes}"
    assert 'class="flow"' in deck.read_text(), f"{deck.name}: no diagram (<div class=\"flow\">) of what the lab builds"


@pytest.mark.parametrize("deck", DECKS, ids=lambda p: p.stem)
def test_timings_add_up_to_the_time_box(deck: Path) -> None:
    _, text = notebook_source(deck)
    teaching, exercises = map(int, TIME_BOX.search(text).groups())
    minutes = [int(m) for m in TIME.findall(deck.read_text())]
    assert sum(minutes) == teaching + exercises, (
        f"{deck.name}: the Time: lines add up to {sum(minutes)} min; the notebook's time box is "
        f"{teaching} + {exercises} = {teaching + exercises} min")


@pytest.mark.parametrize("deck", DECKS, ids=lambda p: p.stem)
def test_figures_and_numbers_come_from_the_lab(deck: Path) -> None:
    code, _ = notebook_source(deck)
    wanted = deck_data.placeholders(deck.read_text())
    figures = [key for kind, key in wanted if kind == "figure"]
    metrics = [key for kind, key in wanted if kind == "metric"]
    assert figures, f"{deck.name}: no {{{{figure:...}}}} from the lab"
    assert metrics, f"{deck.name}: no measured number ({{{{metric:...}}}})"
    saved = set(re.findall(r'lab\.figure\(\w+, "([\w-]+)"\)', code))
    assert set(figures) <= saved, f"{deck.name}: figures the lab never saves: {sorted(set(figures) - saved)}"
    patterns, unresolved = recorded_metric_patterns(code)
    known = library_keys(deck.stem) if unresolved else set()
    unknown = sorted(k for k in set(metrics) if not any(p.fullmatch(k) for p in patterns) and k not in known)
    assert not unknown, f"{deck.name}: metrics the lab does not record: {unknown}"


def test_fill_uses_the_results_and_says_when_a_lab_has_not_run(tmp_path: Path) -> None:
    build, out = tmp_path / "build", tmp_path / "out"
    (build / "results").mkdir(parents=True)
    (build / "figures" / "01_x").mkdir(parents=True)
    (build / "figures" / "01_x" / "overlay.png").write_bytes(b"\x89PNG fake")
    (build / "results" / "01_x.json").write_text(json.dumps({
        "profile": "smoke", "wall_s": 90.0, "metrics": {"dice_real": 0.8629, "device": "cpu"},
        "figures": {"overlay": "figures/01_x/overlay.png"},
        "hardware": {"gpus": [], "cpu": {"model": "Intel(R) Xeon(R) Processor", "cores": 2}}}))
    markdown = ("Dice {{metric:dice_real:.2f}} on {{metric:device}} · {{figure:overlay}} · {{figure:missing}} · "
                "{{hardware}} · {{profile}} · {{wall_min}} min · {{metric:absent}}")
    filled = deck_data.fill(markdown, "01_x", build / "results", build, out)
    assert "Dice 0.86 on cpu" in filled
    assert 'src="figures/01_x/overlay.png"' in filled and (out / "figures" / "01_x" / "overlay.png").is_file()
    assert "2 CPU cores (Intel Xeon), no GPU" in filled and "smoke" in filled and "1.5 min" in filled
    assert filled.count("appears after lab 01 runs") == 2  # the missing figure and the absent metric
    nothing = deck_data.fill(markdown, "02_y", build / "results", build, out)
    assert "{{" not in nothing and nothing.count("appears after lab 02 runs") == 8


@pytest.mark.parametrize("deck", DECKS, ids=lambda p: p.stem)
def test_every_wu_name_on_a_slide_exists(deck: Path) -> None:
    import workshop_utils as wu

    missing = []
    for first, second in re.findall(r"(?<![\w.])wu\.(\w+)(?:\.(\w+))?", deck.read_text()):
        target = getattr(wu, first, None)
        if target is None or (second and not hasattr(target, second)):
            missing.append(f"wu.{first}" + (f".{second}" if second else ""))
    assert not missing, f"{deck.name} names what wu does not have: {missing}"
