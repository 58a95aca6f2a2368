"""The health report (``make report``): build/results/*.json as one self-contained HTML page.

Per lab: profile, hardware, wall time against the lab's declared time box and (smoke) its CI budget, peak
memory, key metrics and pass/fail, with a small chart. No network: the chart is an inline PNG.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workshop_utils.core import paths
from workshop_utils.core.inputs import bad_input, require_file, require_path
from workshop_utils.core.labs import LABS, smoke_budget_s
from workshop_utils.core.results import load_results, require_results_folder

_TIMEBOX = re.compile(r"Teaching: (\d+) min · Exercises: (\d+) min")


def declared_minutes(notebook: Path) -> tuple[int, int] | None:
    """(teaching, exercise) minutes from a lab's header cell, or None when it declares none."""
    notebook = require_file(notebook, "declared_minutes", "notebook", "Pass a lab notebook, e.g. notebooks/01_*.ipynb.")
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise bad_input("declared_minutes", "a Jupyter notebook (JSON with a 'cells' list)",
                        f"{notebook} ({type(exc).__name__}: {exc})", "Pass the .ipynb file, not a script or export.") from None
    header = "".join(cells[0]["source"]) if cells else ""
    match = _TIMEBOX.search(header)
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass
class LabHealth:
    """One row of the report."""

    lab: str
    profile: str
    hardware: str
    wall_s: float
    timebox_s: float | None
    budget_s: float | None
    peak_rss_mib: float
    metrics: dict[str, Any]
    passed: bool

    @property
    def within_budget(self) -> bool:
        """Smoke runs must meet their CI budget; every run must fit the lab's declared time box."""
        fits_box = self.timebox_s is None or self.wall_s <= self.timebox_s
        fits_budget = self.profile != "smoke" or self.budget_s is None or self.wall_s <= self.budget_s
        return fits_box and fits_budget


def _hardware(record: dict[str, Any]) -> str:
    hw = record.get("hardware", {})
    gpus = hw.get("gpus") or []
    if gpus:
        return ", ".join(g.get("name", "GPU") for g in gpus)
    cpu = hw.get("cpu", {})
    return f"{cpu.get('model') or 'CPU'} ({cpu.get('cores', '?')} cores)"


def collect(results_dir: Path | None = None) -> list[LabHealth]:
    """One :class:`LabHealth` per results file."""
    if results_dir is not None:
        require_results_folder(results_dir, "collect", "results_dir")
    rows = []
    for record in load_results(results_dir):
        lab = record.get("lab", "?")
        notebook = paths.notebooks_dir() / f"{lab}.ipynb"
        minutes = declared_minutes(notebook) if notebook.exists() else None
        metrics = record.get("metrics", {})
        keys = LABS[lab].key_metrics if lab in LABS else list(metrics)[:4]
        rows.append(LabHealth(
            lab=lab, profile=record.get("profile", "?"), hardware=_hardware(record),
            wall_s=float(record.get("wall_s") or 0.0), timebox_s=sum(minutes) * 60.0 if minutes else None,
            budget_s=smoke_budget_s(lab) if isinstance(lab, str) and lab else None, peak_rss_mib=float(record.get("peak_rss_mib") or 0.0),
            metrics={k: metrics[k] for k in keys if k in metrics}, passed=bool(record.get("passed")),
        ))
    return rows


def _chart(rows: list[LabHealth]) -> str:
    """Wall time per lab against its limit, as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    names = [r.lab for r in rows]
    ax.barh(names, [r.wall_s for r in rows], color=["tab:green" if r.passed and r.within_budget else "tab:red" for r in rows])
    limits = [(r.budget_s if r.profile == "smoke" else r.timebox_s) or 0 for r in rows]
    ax.scatter(limits, names, marker="|", s=300, color="black", label="budget / time box")
    ax.set_xlabel("wall time (s)")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_report(target: Path | None = None, results_dir: Path | None = None) -> Path:
    """Write ``build/report.html`` and return its path."""
    if target is not None:
        fix = "Pass e.g. target=Path('build/report.html'), or leave it out."
        target = require_path(target, "write_report", "target", fix)
        if target.is_dir() or not target.parent.is_dir():
            raise bad_input("write_report", "target as a file path in an existing folder (or None)", str(target), fix)
    if results_dir is not None:
        require_results_folder(results_dir, "write_report", "results_dir")
    rows = collect(results_dir)
    out = Path(target) if target is not None else paths.build_dir() / "html"
    body = []
    for r in rows:
        limit = r.budget_s if r.profile == "smoke" else r.timebox_s
        verdict = "pass" if r.passed and r.within_budget else ("over budget" if r.passed else "FAIL")
        figures = "<br>".join(f"{html.escape(k)} = {html.escape(_fmt(v))}" for k, v in r.metrics.items()) or "—"
        body.append(
            f"<tr class='{'ok' if verdict == 'pass' else 'bad'}'><td>{html.escape(r.lab)}</td><td>{r.profile}</td>"
            f"<td>{html.escape(r.hardware)}</td><td>{r.wall_s:.0f} s</td><td>{f'{limit:.0f} s' if limit else '—'}</td>"
            f"<td>{r.peak_rss_mib:.0f} MiB</td><td>{figures}</td><td>{verdict}</td></tr>"
        )
    chart = f"<img alt='wall time per lab' src='data:image/png;base64,{_chart(rows)}'>" if rows else "<p>No results yet: run <code>make run</code>.</p>"
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Workshop health report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}
tr.ok td:last-child{{color:#080}}tr.bad td:last-child{{color:#b00;font-weight:bold}}</style></head><body>
<h1>Workshop health report</h1>
<p>Limit: the CI budget for smoke runs, otherwise the lab's declared time box (teaching + exercises).</p>
<table><tr><th>lab</th><th>profile</th><th>hardware</th><th>wall</th><th>limit</th><th>peak memory</th><th>key metrics</th><th>result</th></tr>
{''.join(body)}</table>
{chart}
</body></html>
"""
    out.write_text(page, encoding="utf-8")
    return out
