"""What ``make slides`` fills into a deck from the room's own runs: measured numbers, the lab's figures, hardware.

A deck (``slides/NN_*.md``) writes placeholders that :func:`fill` replaces from ``build/results/<lab>.json``:

- ``{{metric:dice_real}}`` or ``{{metric:dice_real:.2f}}``: a metric the lab recorded, formatted;
- ``{{figure:overlay}}``: the PNG the lab saved with ``lab.figure(fig, "overlay")``, copied beside the deck;
- ``{{hardware}}``, ``{{profile}}``, ``{{wall_min}}``: where and how the lab ran, and how long it took.

A lab that has not run yet leaves a visible placeholder ("appears after lab 01 runs") rather than a broken image
or a made-up number, so a deck built the night before is complete once the labs have run.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

PLACEHOLDER = re.compile(r"\{\{(metric|figure|hardware|profile|wall_min)(?::([A-Za-z0-9_-]+))?(?::([^}]+))?\}\}")


def lab_results(lab: str, results_dir: Path) -> dict[str, Any] | None:
    """The results JSON of ``lab`` (a notebook stem), or None when the lab has not run or the file is unreadable."""
    path = results_dir / f"{lab}.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def hardware_line(record: dict[str, Any]) -> str:
    """"1x NVIDIA H200" or "2 CPU cores (Intel Xeon), no GPU", from a results record's hardware summary."""
    hardware = record.get("hardware") or {}
    gpus = hardware.get("gpus") or []
    if gpus:
        names = sorted({str(gpu.get("name", "GPU")) for gpu in gpus})
        return f"{len(gpus)}x {', '.join(names)}"
    cpu = hardware.get("cpu") or {}
    model = str(cpu.get("model") or "CPU").replace("(R)", "").replace(" Processor", "")
    return f"{cpu.get('cores', '?')} CPU cores ({model}), no GPU"


def _pending(lab: str, what: str) -> str:
    number = lab[:2]
    return f'<span class="pending">{what} appears after lab {number} runs (make run, or the notebook)</span>'


def _metric(record: dict[str, Any] | None, lab: str, key: str, spec: str | None) -> str:
    value = (record or {}).get("metrics", {}).get(key)
    if record is None or value is None:
        return _pending(lab, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    try:
        return format(value, spec) if spec else f"{value:.3g}"
    except ValueError:
        return f"{value:.3g}"


def _figure(record: dict[str, Any] | None, lab: str, name: str, build_dir: Path, out_dir: Path) -> str:
    relative = (record or {}).get("figures", {}).get(name)
    source = build_dir / relative if isinstance(relative, str) else None
    if source is None or not source.is_file():
        return _pending(lab, f"The figure “{name}”")
    target = out_dir / "figures" / lab / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    return f'<img class="lab-figure" src="figures/{lab}/{source.name}" alt="{name}, measured in this room">'


def fill(markdown: str, lab: str, results_dir: Path, build_dir: Path, out_dir: Path) -> str:
    """``markdown`` with every placeholder replaced from ``lab``'s results (see the module docstring)."""
    record = lab_results(lab, results_dir)

    def replace(match: re.Match[str]) -> str:
        kind, key, spec = match.group(1), match.group(2), match.group(3)
        if kind == "metric" and key:
            return _metric(record, lab, key, spec)
        if kind == "figure" and key:
            return _figure(record, lab, key, build_dir, out_dir)
        if record is None:
            return _pending(lab, kind.replace("_", " "))
        if kind == "hardware":
            return hardware_line(record)
        if kind == "profile":
            return str(record.get("profile", "?"))
        return f"{float(record.get('wall_s', 0.0)) / 60:.1f}"  # wall_min

    return PLACEHOLDER.sub(replace, markdown)


def placeholders(markdown: str) -> list[tuple[str, str]]:
    """(kind, key) of every placeholder in a deck, e.g. ("metric", "dice_real"), ("figure", "overlay")."""
    return [(m.group(1), m.group(2) or "") for m in PLACEHOLDER.finditer(markdown)]
