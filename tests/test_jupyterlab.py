"""Attendees work in JupyterLab: start ``make lab`` (127.0.0.1 + token), open lab 00 in headless Chromium, run all.

Driven through Playwright with Debian's chromium (``make setup`` installs it; nothing downloads a browser). The
notebook is a copy in a temporary folder, so JupyterLab's autosave never writes outputs into the committed one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.smoke_lanes import wait_for
from workshop_utils.core import paths

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# As the slides test: no first-run chatter, nothing that reaches for the network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
CELLS_STARTED = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
  .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"""
ALL_CELLS_RAN = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')];
  return prompts.length >= %d && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_http(url: str, timeout_s: float, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"make lab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer at {url} within {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


def open_kernel_session(base_url: str, token: str, notebook: str, kernel: str, timeout_s: float = 120.0) -> str:
    """Start the notebook's kernel through the REST API, as opening it would; returns the kernel's id.

    Left to the page, JupyterLab sometimes starts two kernels for one notebook on a loaded machine, shuts the first
    down and stays bound to it: the cells queue forever (seen once in CI: the live kernel never ran a line). With a
    session already there for the path, the page attaches to it and starts none.
    """
    headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
    body = json.dumps({"path": notebook, "name": notebook, "type": "notebook", "kernel": {"name": kernel}}).encode()
    request = urllib.request.Request(f"{base_url}/api/sessions", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout_s) as answer:
        return str(json.load(answer)["kernel"]["id"])


def wait_until_attached(page: Any, base_url: str, token: str, kernel_id: str, display_name: str,
                        timeout_s: float = 120.0) -> None:
    """Until the page holds a websocket to the session's kernel and its toolbar names that kernel.

    The execution indicator reads idle before the page has attached to any kernel. Run All clicked in that gap
    (seen in CI, on a loaded machine) finds no kernel and asks, once per cell, which kernel to start.
    """
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(f"{base_url}/api/kernels/{kernel_id}", headers={"Authorization": f"token {token}"})
    while True:
        with urllib.request.urlopen(request, timeout=30) as answer:
            kernel = json.load(answer)
        if kernel.get("connections", 0) >= 1:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"the page opened no connection to kernel {kernel_id} in {timeout_s:.0f} s: {kernel}")
        time.sleep(0.5)
    page.wait_for_function("(name) => [...document.querySelectorAll('.jp-Toolbar-kernelName')]"
                           ".some(label => label.textContent.trim() === name)", arg=display_name,
                           timeout=max(1.0, deadline - time.monotonic()) * 1000, polling=500)


def dialog_texts(page: Any) -> list[str]:
    """What each modal dialog open in the page says, on one line each."""
    dialogs = page.locator(".jp-Dialog")
    return [" ".join(dialogs.nth(i).inner_text(timeout=5_000).split()) for i in range(dialogs.count())]


def answer_dialogs(page: Any, seen: list[str]) -> None:
    """Note what each modal dialog in the page says, then answer it with its default button (or Escape).

    A dialog blocks every click behind it. An attendee reads it and clicks; the test does the same and keeps the
    text for its report, except for a kernel choice: answering that would start a second kernel.
    """
    for _ in range(5):
        texts = dialog_texts(page)
        if not texts:
            return
        seen.append(texts[0])
        if texts[0].startswith("Select Kernel"):
            raise AssertionError(f"the page asks for a kernel although its session has one: {texts[0]}")
        dialog = page.locator(".jp-Dialog").first
        accept = dialog.locator(".jp-Dialog-button.jp-mod-accept")
        if accept.count():
            accept.first.click(timeout=5_000)
        else:
            page.keyboard.press("Escape")
        page.wait_for_timeout(500)


def run_all_cells(page: Any, dialogs_seen: list[str]) -> None:
    """Run > Run All Cells, as an attendee does, until a cell is queued or runs.

    On a loaded machine the first click can land before the menu is live and start nothing: click again.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(3):
        answer_dialogs(page, dialogs_seen)
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(CELLS_STARTED, timeout=30_000, polling=500)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")  # close a menu left open
    pytest.fail("Run > Run All Cells started no cell in three tries", pytrace=False)


@pytest.mark.notebook
@pytest.mark.skipif(CHROMIUM is None and os.environ.get("CI") != "true",
                    reason="Debian's chromium is not installed (make setup installs it as root); CI always runs this")
def test_lab_00_runs_all_cells_in_jupyterlab(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import sync_playwright

    wait_for(request.config, "first:00")  # its import checks, recorded for this environment, spare this run its own

    notebook = ROOT / "notebooks" / "00_environment_check.ipynb"
    committed = notebook.read_bytes()
    source = nbformat.read(notebook, as_version=4)
    code_cells = sum(cell.cell_type == "code" for cell in source.cells)
    checks = sum(cell.source.count("wu.check(") for cell in source.cells if cell.cell_type == "code")
    served = tmp_path / "lab"
    served.mkdir()
    shutil.copy(notebook, served / notebook.name)
    port, token, log = free_port(), os.urandom(16).hex(), tmp_path / "lab.log"
    env = dict(os.environ, JUPYTER_TOKEN=token, WORKSHOP_PROFILE="smoke", WORKSHOP_BUILD_DIR=str(tmp_path / "build"))
    with log.open("wb") as out:
        server = subprocess.Popen(["make", "--no-print-directory", "lab", f"PORT={port}", f"LAB_ROOT={served}"],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    screenshot = paths.build_dir() / "jupyterlab-lab00.png"
    dialogs_seen: list[str] = []
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/status?token={token}", 120, server, log)
        assert "--allow-root" in log.read_text() or os.geteuid() != 0, "as root, make lab must pass --allow-root"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/kernelspecs?token={token}", timeout=60) as answer:
            specs = json.load(answer)
        default = specs["kernelspecs"][specs["default"]]["spec"]
        assert default["display_name"] == "Python 3 (workshop)", f"the workshop kernel is not the default: {default}"
        assert Path(default["argv"][0]).resolve() == (ROOT / ".venv" / "bin" / "python").resolve(), default["argv"]
        kernel_id = open_kernel_session(f"http://127.0.0.1:{port}", token, notebook.name, specs["default"])
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            try:
                page.goto(f"http://127.0.0.1:{port}/lab/tree/{notebook.name}?token={token}")
                wait_until_attached(page, f"http://127.0.0.1:{port}", token, kernel_id, default["display_name"])
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
                run_all_cells(page, dialogs_seen)
                page.wait_for_function(ALL_CELLS_RAN % code_cells, timeout=600_000, polling=1000)
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
                answer_dialogs(page, dialogs_seen)
            except Exception as error:
                page.screenshot(path=str(screenshot.with_stem(screenshot.stem + "-failed")), full_page=True)
                dialogs_seen += dialog_texts(page)
                raise AssertionError(f"{type(error).__name__}: {str(error).splitlines()[0]}\n"
                                     f"dialogs the page showed: {dialogs_seen or 'none'}\n"
                                     f"JupyterLab's log ends:\n{log.read_text()[-3000:]}") from error
            page.screenshot(path=str(screenshot), full_page=True)
            text = page.locator(".jp-Notebook").inner_text()
            news_prompts = page.get_by_text("get notified about official Jupyter news").count()
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # make and the Jupyter server it started, with their kernels
        server.wait(timeout=30)
    assert log.read_text().count("Kernel started") == 1 and kernel_id in log.read_text(), (
        "the page started a kernel of its own instead of the session's:\n" + log.read_text()[-3000:])
    assert news_prompts == 0, "make setup turns JupyterLab's news prompt off: a room of 30 does not need it"
    print(f"dialogs the page showed: {dialogs_seen or 'none'}")
    assert "Traceback (most recent call last)" not in text, "a cell shows an error:\n" + text[-3000:]
    assert "LabCheckFailed" not in text
    assert text.count("✅") >= checks, f"{checks} answer check(s), {text.count('✅')} confirmation(s) in the page"
    assert (tmp_path / "build" / "results" / "00_environment_check.json").exists()
    assert notebook.read_bytes() == committed, "the committed notebook must not change (only the copy is served)"


NOBODY = 65534


def jupyter_lab_processes(root_pid: int, timeout_s: float = 20.0) -> list[tuple[list[str], int]]:
    """(command line, effective uid) of the jupyter-lab processes under ``root_pid``, once there is one.

    On a busy machine ``make``'s shell children come and go while they are listed, so a process that vanished
    between listing and reading is skipped, and the listing is retried until the server process shows up.
    """
    import psutil

    deadline = time.monotonic() + timeout_s
    while True:
        found = []
        for process in psutil.Process(root_pid).children(recursive=True):
            try:
                cmdline, uid = process.cmdline(), process.uids().effective
            except psutil.Error:
                continue
            if "jupyter-lab" in " ".join(cmdline):
                found.append((cmdline, uid))
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="not root: the browser test above is already a normal user's `make lab`")
def test_make_lab_starts_for_a_normal_user(tmp_path: Path) -> None:
    """As root, the test drops to uid 65534 (nobody) and starts the real `make lab`: no --allow-root, still served.

    The process keeps only CAP_DAC_READ_SEARCH, so it can read the checkout and the venv's interpreter (which may
    live under /root) but writes nothing outside its own home, as an attendee's account would.
    """
    home = tmp_path / "home"
    served = tmp_path / "lab"
    for folder in (home, served):
        folder.mkdir()
        os.chown(folder, NOBODY, NOBODY)
    port, token, log = free_port(), os.urandom(16).hex(), tmp_path / "lab.log"
    env = dict(os.environ, HOME=str(home), JUPYTER_TOKEN=token, XDG_RUNTIME_DIR=str(home / "run"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"))
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                 "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    with log.open("wb") as out:
        os.chown(log, NOBODY, NOBODY)
        server = subprocess.Popen([*as_nobody, "make", "--no-print-directory", "lab", f"PORT={port}",
                                   f"LAB_ROOT={served}"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/status?token={token}", 120, server, log)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/kernelspecs?token={token}", timeout=60) as answer:
            assert json.load(answer)["default"] == "python3"
        lab = jupyter_lab_processes(server.pid)
        assert lab and all(uid == NOBODY for _, uid in lab), lab
        assert not any("--allow-root" in cmdline for cmdline, _ in lab), lab
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert "running as root" not in log.read_text(), log.read_text()[-2000:]
