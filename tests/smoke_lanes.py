"""The notebooks' smoke runs, started in the background when the session starts, two at a time.

A notebook run spends much of its time on one core (a kernel starting, imports, a server coming up, a test
waiting for it). Running two at once, while the unit tests run in the foreground, keeps both cores busy, so
``make test`` finishes sooner without dropping a run. Each run is its own process, as in ``make run``.

The order keeps every guarantee of a sequential pass:
- a lab's first run comes before its rerun in the same workspace;
- lab 02 starts after lab 01 saved its model and lab 03 after lab 02 exported it, so nothing is rebuilt twice;
- the capstone's run in the shared workspace waits for labs 01-05, and every rerun waits for it;
- the capstone alone runs in a fresh workspace of its own, from the start;
- two runs that start a Triton server never overlap.
Lanes follow the cores free at the start (``fair_cpu_threads``): on a machine with one core busy, one lane
(``WORKSHOP_TEST_LANES`` sets the number). With two lanes or more, each lane's runs are pinned to their own share
of the cores (CPU affinity, which the labs' ``fair_cpu_threads`` reads): a lab that sampled the load at a quiet
instant would otherwise start two threads and wait on the other lane's core for the rest of its run (a 600-step
training once took over 600 s that way instead of 126 s).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from workshop_utils.core import cpus, paths
from workshop_utils.instructor import runner

RUN_ONE = (
    "import json, sys\nfrom dataclasses import asdict\nfrom pathlib import Path\n"
    "from workshop_utils.instructor import runner\n"
    "run = runner.run_notebook(Path(sys.argv[1]), 'smoke', out_dir=Path(sys.argv[2]), cell_timeout_s=int(sys.argv[3]))\n"
    "print('RUN ' + json.dumps(asdict(run)))\n"
)
PIN_TO_CORES = "import os, sys; os.sched_setaffinity(0, {int(c) for c in sys.argv[1].split(',')}); os.execv(sys.argv[2], sys.argv[2:])"
SERVER_LABS = ("03_", "06_")  # labs that start a Triton server
LANES_KEY = pytest.StashKey["SmokeLanes"]()  # where conftest keeps the session's lanes


@dataclass
class Job:
    """One notebook run: what to execute, what must finish first, and what it left behind when it ended."""

    name: str
    notebook: Path
    out_dir: Path
    build_dir: Path
    after: tuple[str, ...] = ()
    timeout_s: int = 600
    command: list[str] | None = None  # None: one papermill run through the runner
    before_start: Callable[[], None] | None = None
    result: dict[str, Any] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen[str] | None = None
    # The environment when the session started: a foreground test's monkeypatched variables must not leak in.
    base_env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def uses_server(self) -> bool:
        return self.notebook.name.startswith(SERVER_LABS)

    def run(self, cores: frozenset[int] | None = None) -> None:
        """Run to the end (``cores``: the CPUs the run and every process it starts may use; None: all)."""
        env = dict(self.base_env, WORKSHOP_BUILD_DIR=str(self.build_dir), WORKSHOP_PROFILE="smoke")
        command = self.command or [sys.executable, "-c", RUN_ONE, str(self.notebook), str(self.out_dir),
                                   str(self.timeout_s)]
        if cores:
            command = [sys.executable, "-c", PIN_TO_CORES, ",".join(map(str, sorted(cores))), *command]
        started = time.perf_counter()
        try:
            if self.before_start:
                self.before_start()
            # its own session, so stop() can end the run and the kernel it started together
            self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            text=True, cwd=self.notebook.parents[1], start_new_session=True)
            try:
                stdout, stderr = self.process.communicate(timeout=self.timeout_s * 3)
            except subprocess.TimeoutExpired:
                stop_group(self.process)
                stdout, stderr = self.process.communicate()
            self.result = {"returncode": self.process.returncode, "stdout": stdout, "stderr": stderr,
                           "wall_s": time.perf_counter() - started}
            line = next((line for line in stdout.splitlines() if line.startswith("RUN ")), None)
            if line:
                self.result["run"] = runner.NotebookRun(**json.loads(line[4:]))
            results_file = self.build_dir / "results" / f"{self.notebook.stem}.json"
            if results_file.is_file():  # read now: the rerun will overwrite it
                self.result["record"] = json.loads(results_file.read_text())
        except Exception as error:  # a timeout or a broken command: the test reports it
            self.result = {"error": f"{type(error).__name__}: {error}", "wall_s": time.perf_counter() - started}
        finally:
            self.done.set()


def lane_cores(lanes: int) -> list[frozenset[int] | None]:
    """Each lane's own share of the usable CPUs (round robin); None for every lane when there is one lane."""
    usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if lanes < 2 or len(usable) < lanes:
        return [None] * lanes
    return [frozenset(usable[i::lanes]) for i in range(lanes)]


def stop_group(process: subprocess.Popen[str]) -> None:
    """End a run's whole process group (the runner and its kernel)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


class SmokeLanes:
    """Runs jobs on ``lanes`` worker threads, each picking the first job in list order whose needs are met."""

    def __init__(self, jobs: list[Job], lanes: int) -> None:
        self.jobs = {job.name: job for job in jobs}
        self.order = [job.name for job in jobs]
        self.lanes = lanes
        self._lock = threading.Condition()
        self._started: set[str] = set()
        self._server_busy = False
        self.cores = lane_cores(lanes)
        self._threads = [threading.Thread(target=self._work, args=(self.cores[i],), daemon=True, name=f"smoke-lane-{i}")
                         for i in range(lanes)]

    def start(self) -> SmokeLanes:
        for thread in self._threads:
            thread.start()
        return self

    def _ready(self, job: Job) -> bool:
        needs_met = all(self.jobs[name].done.is_set() for name in job.after if name in self.jobs)
        return needs_met and not (job.uses_server and self._server_busy)

    def _work(self, cores: frozenset[int] | None) -> None:
        while True:
            with self._lock:
                while True:
                    waiting = [n for n in self.order if n not in self._started]
                    if not waiting:
                        return
                    job = next((self.jobs[n] for n in waiting if self._ready(self.jobs[n])), None)
                    if job is not None:
                        break
                    self._lock.wait(timeout=1.0)
                self._started.add(job.name)
                self._server_busy |= job.uses_server
            job.run(cores)
            with self._lock:
                if job.uses_server:
                    self._server_busy = False
                self._lock.notify_all()

    def result(self, name: str) -> dict[str, Any]:
        """Wait for job ``name`` and return what it left: ``run`` (a NotebookRun), ``record``, ``stdout``..."""
        job = self.jobs[name]
        job.done.wait()
        return job.result

    def wait_all(self) -> None:
        for job in self.jobs.values():
            job.done.wait()

    def stop(self) -> None:
        """At the session's end (or an interrupt): start nothing more and end the runs still going."""
        with self._lock:
            for name in self.order:
                if name not in self._started:
                    self.jobs[name].result = {"error": "stopped before it started"}
                    self.jobs[name].done.set()
            self._started.update(self.order)
            self._lock.notify_all()
        for job in self.jobs.values():
            if job.process is not None and job.process.poll() is None:
                stop_group(job.process)


def notebook_jobs(notebooks: list[Path], wanted: set[str], alone_dir: Path) -> list[Job]:
    """The jobs the selected tests need (``wanted`` names, plus what they wait for), highest priority first."""
    build = paths.build_dir()
    by_prefix = {nb.name[:2]: nb for nb in notebooks}
    jobs: dict[str, Job] = {}

    def add(job: Job) -> None:
        jobs[job.name] = job

    if "06" in by_prefix:
        add(Job("alone:06", by_prefix["06"], alone_dir / "build" / "executed", alone_dir / "build", timeout_s=900))
    # Lab 00 first: it records the import checks that its later runs (nbmake, JupyterLab, the student copy) reuse.
    # Then longest first, so the lanes end together; each lab's needs as described in the module docstring.
    for prefix, after in (("00", ()), ("04", ()), ("01", ()), ("05", ()), ("02", ("first:01",)),
                          ("03", ("first:02",))):
        if prefix in by_prefix:
            add(Job(f"first:{prefix}", by_prefix[prefix], build / "executed", build, after=after))
    if "06" in by_prefix:
        add(Job("first:06", by_prefix["06"], build / "executed", build,
                after=tuple(f"first:{p}" for p in ("01", "02", "03", "04", "05"))))
    for prefix in ("04", "05", "03", "01", "02", "06"):
        if prefix in by_prefix:
            add(Job(f"rerun:{prefix}", by_prefix[prefix], build / "executed-rerun", build,
                    after=(f"first:{prefix}", "first:06")))
    if "00" in by_prefix:
        notebook = by_prefix["00"]
        results_file = build / "results" / f"{notebook.stem}.json"
        add(Job("nbmake:00", notebook, build / "executed-rerun", build, after=("first:00",),
                command=[sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake",
                         "--nbmake-timeout=600", str(notebook)],
                before_start=lambda: results_file.unlink(missing_ok=True)))  # nbmake's run must write it anew

    needed: set[str] = set()
    stack = [name for name in wanted if name in jobs]
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(after for after in jobs[name].after if after in jobs)
    return [job for name, job in jobs.items() if name in needed]


def lanes_of(config: pytest.Config) -> SmokeLanes | None:
    """This session's background runs, or None when no selected test reads one."""
    return config.stash.get(LANES_KEY, None)


def wait_for(config: pytest.Config, name: str) -> None:
    """Block until background run ``name`` ended, when this session has it (to reuse what it builds)."""
    lanes = lanes_of(config)
    if lanes is not None and name in lanes.jobs:
        lanes.result(name)


def lane_count() -> int:
    """Two lanes on a machine with two free cores or more; one where a neighbour holds a core.

    ``make test`` counts the free cores before it starts ``make lint`` beside the tests and passes the answer in
    ``WORKSHOP_TEST_LANES`` (counted here, mypy would look like a neighbour); without it they are counted now.
    """
    given = os.environ.get("WORKSHOP_TEST_LANES", "").strip()
    if given:
        if not given.isdigit() or int(given) < 1:
            raise pytest.UsageError(f"WORKSHOP_TEST_LANES: expected a whole number >= 1; got {given!r}. "
                                    "Unset it to count the free cores, or pass e.g. WORKSHOP_TEST_LANES=1.")
        return int(given)
    return max(1, min(2, cpus.fair_cpu_threads(sample_s=0.5)))
