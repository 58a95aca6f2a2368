"""The results record each lab writes to ``build/results/<notebook-stem>.json``.

Shape (later labs, the summary and the health report read it)::

    {"lab": "01_monai_nuclei_segmentation", "profile": "smoke", "wall_s": 71.2, "budget_s": 90, "over_budget": false,
     "peak_rss_mib": 1830.5,
     "metrics": {"dice_real": 0.71, ...}, "expectations": [{"name": ..., "ok": true, "detail": ...}],
     "data_source": ["stardist_dsb2018_nucleus", "synthetic"],
     "hardware": {...}, "versions": {...}, "passed": true, "finished_at": "2026-11-28T17:02:11+00:00"}

``data_source`` says what the figures were measured on: manifest entries from ``data_manifests/`` (downloaded,
or packaged inside a wheel) and ``"synthetic"`` for data the lab generates; empty when a lab uses no data.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import re
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workshop_utils.core import hardware, paths
from workshop_utils.core.errors import InputError, LabCheckFailed
from workshop_utils.core.files import atomic_write
from workshop_utils.core.inputs import bad_input, describe, require_number, require_path
from workshop_utils.core.labs import is_over_budget, smoke_budget_s
from workshop_utils.core.profiles import require_profile

Scalar = float | int | bool | str | None
_LAB_STEM = re.compile(r"\d\d_[\w-]+")
SYNTHETIC = "synthetic"  # the data_source of data a lab generates itself


def peak_rss_mib() -> float:
    """Peak resident memory of this process since it started, in MiB.

    Linux's ``VmHWM`` is the process's own high-water mark. ``ru_maxrss`` is only the fallback: across fork and
    exec it keeps the parent's peak, so a kernel started by a big test runner would report the runner's memory.
    """
    try:
        with open("/proc/self/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _scalar(name: str, value: Any) -> Scalar:
    """Turn numpy/torch scalars into plain JSON values (NaN/inf become None); refuse containers so ``metrics`` stays flat."""
    if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
        raise bad_input("LabRecorder.record", "each metric name as a non-blank string without spaces", describe(name),
                        "Name figures like Python variables: lab.record(dice_real=0.71, count_real=118).")
    if value is None or isinstance(value, (bool, str)):
        return value
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    raise InputError(
        f"LabRecorder.record: expected metric {name!r} as a number, bool, string or None; got {describe(value)}. "
        "Record one named figure per metric (e.g. latency_ms_b1=..., latency_ms_b8=...), or str() an object."
    )


def _is_verdict(ok: Any) -> bool:
    """True for Python/numpy bools and one-element torch/numpy bool values (what a comparison returns)."""
    if isinstance(ok, (bool, np.bool_)):
        return True
    return getattr(ok, "ndim", None) == 0 and "bool" in str(getattr(ok, "dtype", ""))


@dataclass
class Expectation:
    """One asserted outcome of a lab."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class LabRecorder:
    """Collects a lab's metrics and expectations, then writes its results JSON."""

    lab: str
    profile: str
    metrics: dict[str, Scalar] = field(default_factory=dict)
    expectations: list[Expectation] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)
    data_sources: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def record(self, **metrics: Any) -> None:
        """Add named figures: ``lab.record(dice_real=0.71, count_real=118)``."""
        for name, value in metrics.items():
            self.metrics[name] = _scalar(name, value)

    def uses_data(self, source: str) -> str:
        """Note what the lab's figures are measured on; the results list every source once, in order of use.

        Args:
            source: a data set's name in ``data_manifests/`` (e.g. ``"stardist_dsb2018_nucleus"``), or
                ``"synthetic"`` for data the lab generates itself.

        Returns:
            ``source``, so a data cell can print it.

        Example:
            >>> lab.uses_data("synthetic")
        """
        from workshop_utils.core import manifests

        known = sorted(manifests.load_all())
        if not isinstance(source, str) or source not in {SYNTHETIC, *known}:
            raise bad_input("LabRecorder.uses_data", f"source as {SYNTHETIC!r} or a manifest name ({', '.join(known)})",
                            describe(source), 'Name what the lab measured on, e.g. lab.uses_data("synthetic").')
        if source not in self.data_sources:
            self.data_sources.append(source)
        return source

    def figure(self, fig: Any, name: str) -> Path:
        """Save a matplotlib figure for the slides as ``build/figures/<lab>/<name>.png`` and list it in the results.

        ``make slides`` puts it on the lab's deck where the deck says ``{{figure:<name>}}``, so the room sees
        the plot it just made.

        Args:
            fig: the matplotlib Figure (``fig, ax = plt.subplots()``).
            name: a short file-safe name, e.g. ``"overlay"``; the deck refers to it by this name.

        Returns:
            The PNG's path.

        Example:
            >>> lab.figure(fig, "loss_curve")  # before plt.show()
        """
        if not callable(getattr(fig, "savefig", None)):
            raise bad_input("LabRecorder.figure", "fig as a matplotlib Figure", describe(fig),
                            "Pass the figure you drew on: fig, ax = plt.subplots(); ...; lab.figure(fig, 'loss').")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
            raise bad_input("LabRecorder.figure", "name as a short lower-case file name (letters, digits, _ -)",
                            describe(name), "Pass e.g. 'overlay' or 'loss_curve'.")
        folder = paths.figures_dir() / self.lab
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}.png"
        with atomic_write(target) as temporary:
            fig.savefig(temporary, format="png", dpi=110, bbox_inches="tight")
        self.figures[name] = str(target.relative_to(paths.build_dir()))
        return target

    def expect(self, name: str, ok: bool, detail: str = "") -> bool:
        """Note an asserted outcome; ``finish()`` fails the lab if any is false. Prints a one-line verdict."""
        if not isinstance(name, str) or not name.strip():
            raise bad_input("LabRecorder.expect", "name as a non-blank sentence", describe(name),
                            'Say what must hold: lab.expect("training loss falls", losses[-1] < losses[0]).')
        if not _is_verdict(ok):
            raise bad_input("LabRecorder.expect", "ok as True/False (the result of a comparison)", describe(ok),
                            "Compare first, e.g. lab.expect(name, dice >= 0.8, f'{dice:.3f}'); wrap others in bool().")
        if not isinstance(detail, str):
            raise bad_input("LabRecorder.expect", "detail as a string", describe(detail),
                            "Format the figure first, e.g. f'{dice:.3f}'.")
        verdict = bool(ok)
        self.expectations.append(Expectation(name, verdict, detail))
        print(f"{'PASS' if verdict else 'FAIL'} {name}" + (f" — {detail}" if detail else ""))
        return verdict

    def expect_speed_sane(self, comparison: str, speedup: float) -> bool:
        """Fail the lab on a runaway only: ``speedup`` (baseline time / subject time) below 1/SANITY_SLOWDOWN.

        Speed ratios are measured and explained, not required: a busy neighbour must not fail a lab.

        Args:
            comparison: what was compared, e.g. ``"ONNX Runtime vs eager PyTorch at batch 1"``.
            speedup: the measured ratio; above 1 means the subject was faster.

        Returns:
            True when the ratio is within the sanity bound.
        """
        from workshop_utils.core.timing import SANITY_SLOWDOWN

        if not isinstance(comparison, str) or not comparison.strip():
            raise bad_input("LabRecorder.expect_speed_sane", "comparison as a non-blank description", describe(comparison),
                            'Say what was compared: lab.expect_speed_sane("ONNX Runtime vs eager at batch 1", 1.2).')
        ratio = require_number(speedup, "LabRecorder.expect_speed_sane", "speedup")
        return self.expect(f"{comparison}: not {SANITY_SLOWDOWN:g}x slower (sanity bound; speed is reported, not required)",
                           ratio > 1 / SANITY_SLOWDOWN, f"{ratio:.2f}x")

    @property
    def passed(self) -> bool:
        return all(item.ok for item in self.expectations)

    @property
    def path(self) -> Path:
        return paths.results_dir() / f"{self.lab}.json"

    def as_dict(self) -> dict[str, Any]:
        wall_s = round(time.perf_counter() - self.started, 3)
        budget_s = smoke_budget_s(self.lab) if self.profile == "smoke" else None
        return {
            "lab": self.lab,
            "profile": self.profile,
            "wall_s": wall_s,
            "budget_s": budget_s,  # smoke only: flagged when over, never a failure (see labs.RUNAWAY_FACTOR)
            "over_budget": is_over_budget(wall_s, budget_s),
            "peak_rss_mib": round(peak_rss_mib(), 1),
            "metrics": dict(self.metrics),
            "expectations": [vars(item) for item in self.expectations],
            "figures": dict(self.figures),  # name -> path under build/, for make slides
            "data_source": list(self.data_sources),
            "hardware": hardware.summary(),
            "versions": hardware.library_versions(),
            "passed": self.passed,
            "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }

    def finish(self) -> Path:
        """Write the results JSON (also when an expectation failed), then raise if any did."""
        record = self.as_dict()
        target = self.path
        with atomic_write(target) as temporary:
            temporary.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        print(f"Results written to {target} · wall {record['wall_s']:.1f} s · peak RSS {record['peak_rss_mib']:.0f} MiB")
        failed = [item for item in self.expectations if not item.ok]
        if failed:
            lines = "; ".join(f"{item.name} ({item.detail})" if item.detail else item.name for item in failed)
            raise LabCheckFailed(f"{self.lab}: {len(failed)} expectation(s) failed: {lines}")
        return target


def start_lab(lab: str, profile: str) -> LabRecorder:
    """Begin recording a lab run; call this in the setup cell so ``wall_s`` covers the whole lab.

    Args:
        lab: the notebook's file stem, ``NN_name``, e.g. ``"01_monai_nuclei_segmentation"``.
        profile: ``"smoke"``, ``"cpu"`` or ``"gpu"``, the notebook's chosen ``PROFILE``.

    Returns:
        A :class:`LabRecorder`: ``lab.record(**figures)``, ``lab.expect(name, ok, detail)``, then ``lab.finish()``
        writes ``build/results/<lab>.json`` and raises if an expectation failed.

    Example:
        >>> lab = wu.start_lab("01_monai_nuclei_segmentation", PROFILE)
    """
    if not isinstance(lab, str) or not _LAB_STEM.fullmatch(lab):
        known = ", ".join(nb.stem for nb in sorted(paths.notebooks_dir().glob("[0-9][0-9]_*.ipynb"))) or "none found"
        raise bad_input("start_lab", f"lab as a notebook stem NN_name (known labs: {known})", describe(lab),
                        'Pass the notebook\'s file name without folder or .ipynb: wu.start_lab("01_monai_nuclei_segmentation", PROFILE).')
    return LabRecorder(lab=lab, profile=require_profile(profile, "start_lab"))


def require_results_folder(directory: Any, where: str, name: str = "directory") -> Path:
    """``directory`` as an existing folder of results JSON files (the report checks its argument with this too)."""
    folder = require_path(directory, where, name, "Pass the folder holding the <lab>.json files, or leave it out.")
    if not folder.is_dir():
        state = "a file" if folder.exists() else "missing"
        raise bad_input(where, f"{name} to be an existing folder", f"{folder} ({state})",
                        "Run a lab first (make run) or pass the folder holding the <lab>.json files.")
    return folder


def load_results(directory: Path | None = None) -> list[dict[str, Any]]:
    """Every results JSON under ``build/results`` (or ``directory``), sorted by lab name.

    Args:
        directory: a folder of ``<lab>.json`` files; None reads ``build/results``.

    Returns:
        One dict per file, as :meth:`LabRecorder.finish` wrote it (``lab``, ``metrics``, ...); an unreadable file
        gives ``{"lab": ..., "passed": False, "error": ...}``. No folder yet: an empty list.

    Example:
        >>> lab01 = next((r["metrics"] for r in wu.load_results() if r["lab"] == "01_monai_nuclei_segmentation"), {})
    """
    folder = paths.results_dir() if directory is None else require_results_folder(directory, "load_results")
    records = []
    for file in sorted(folder.glob("*.json")):
        try:
            records.append(json.loads(file.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            records.append({"lab": file.stem, "passed": False, "error": f"unreadable results file: {exc}"})
    return records
