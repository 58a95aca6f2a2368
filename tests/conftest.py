"""Shared fixtures: an isolated build/cache folder per test and a loopback HTTP server with scripted faults."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.smoke_lanes import SmokeLanes


@pytest.fixture
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point build outputs and the data cache at a temporary folder."""
    monkeypatch.setenv("WORKSHOP_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.setenv("WORKSHOP_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("WORKSHOP_PROFILE", raising=False)
    monkeypatch.delenv("WORKSHOP_OFFLINE", raising=False)
    return tmp_path


@dataclass
class Route:
    """What the server answers on one path: a body, and faults for the first ``faulty`` requests."""

    body: bytes
    fault: str | None = None  # "404", "500", "truncate", "drop", "slow", "wrong"
    faulty: int = 10**9  # how many requests get the fault (then it is "gone")
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)  # extra headers on every answer (a stand-in hub's)


@dataclass
class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 that serves scripted routes and counts requests per path."""

    routes: dict[str, Route] = field(default_factory=dict)
    hits: Counter = field(default_factory=Counter)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, body: bytes, **kwargs: object) -> str:
        self.routes[path] = Route(body, **kwargs)  # type: ignore[arg-type]
        return self.url(path)


def _handler(server_state: LoopbackServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _end_headers(self, route: Route | None, length: int) -> None:
            for name, value in (route.headers if route else {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(length))
            self.send_header("Connection", "close")
            self.end_headers()

        def _fail(self, status: int, route: Route | None) -> None:
            self.send_response(status)
            self._end_headers(route, 0)

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
            route = server_state.routes.get(self.path)
            server_state.hits[self.path] += 1
            if route is None or (route.fault in ("404", "500") and server_state.hits[self.path] <= route.faulty):
                self._fail(500 if route and route.fault == "500" else 404, route)
                return
            self.send_response(200)
            self._end_headers(route, len(route.body))

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            route = server_state.routes.get(self.path)
            server_state.hits[self.path] += 1
            if route is None:
                self._fail(404, None)
                return
            faulty = server_state.hits[self.path] <= route.faulty
            fault = route.fault if faulty else None
            if route.delay_s:
                time.sleep(route.delay_s)
            if fault in ("404", "500"):
                self._fail(int(fault), route)
                return
            if fault == "slow":
                time.sleep(3.0)
            body = route.body
            if fault == "wrong":
                body = b"X" * len(body)
            start = 0
            range_header = self.headers.get("Range")
            if range_header and fault is None:
                start = int(range_header.split("=")[1].split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            payload = body[start:]
            self._end_headers(route, len(payload))
            if fault in ("truncate", "drop"):
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def loopback_server() -> Iterator[LoopbackServer]:
    """Serve scripted routes on 127.0.0.1 (never another address) for the duration of a test."""
    state = LoopbackServer()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = httpd.server_address[1]
    # shutdown() waits for the loop's next poll: 0.5 s by default, paid by every test that uses the server
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "smoke_job(kind, prefix=None): the background notebook run a test reads")
    config.addinivalue_line("markers", "quiet: timing-sensitive; runs last, after the background notebook runs")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Unit tests first (the notebooks run in the background meanwhile), then notebook tests, then quiet ones."""
    def group(item: pytest.Item) -> int:
        return 2 if item.get_closest_marker("quiet") else 1 if item.get_closest_marker("smoke_job") else 0

    items.sort(key=group)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the smoke runs the selected tests read, in the background (tests/smoke_lanes.py)."""
    import tempfile

    from tests import smoke_lanes
    from workshop_utils.instructor import runner

    wanted = set()
    for item in session.items:
        marker = item.get_closest_marker("smoke_job")
        if marker is None:
            continue
        notebook = getattr(item, "callspec", None) and item.callspec.params.get("notebook")
        prefix = notebook.name[:2] if notebook else marker.args[1]
        wanted.add(f"{marker.args[0]}:{prefix}")
    if not wanted or session.config.option.collectonly:
        return
    alone = Path(tempfile.mkdtemp(prefix="capstone-alone-"))
    jobs = smoke_lanes.notebook_jobs(runner.lab_notebooks(), wanted, alone)
    session.config.stash[smoke_lanes.LANES_KEY] = smoke_lanes.SmokeLanes(jobs, smoke_lanes.lane_count()).start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests.smoke_lanes import lanes_of

    lanes = lanes_of(session.config)
    if lanes is not None:
        lanes.stop()


@pytest.fixture
def smoke_runs(request: pytest.FixtureRequest) -> SmokeLanes:
    """The background smoke runs (started at collection); ``smoke_runs.result("first:01")`` waits for one."""
    from tests.smoke_lanes import lanes_of

    lanes = lanes_of(request.config)
    if lanes is None:
        pytest.fail("no background smoke runs: mark the test with @pytest.mark.smoke_job(kind)", pytrace=False)
    return lanes


@pytest.fixture(autouse=True)
def _quiet_machine(request: pytest.FixtureRequest) -> None:
    """A timing-sensitive test waits for the background notebook runs to end first."""
    from tests.smoke_lanes import lanes_of

    lanes = lanes_of(request.config)
    if lanes is not None and request.node.get_closest_marker("quiet"):
        lanes.wait_all()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """After ``make test``: each lab's smoke wall times against its budget (over budget is flagged, not failed)."""
    import sys

    from tests.smoke_lanes import lanes_of

    notebooks = sys.modules.get("tests.test_notebooks")
    timings = getattr(notebooks, "SMOKE_WALL_S", {})
    lanes = lanes_of(terminalreporter.config)
    if not timings or lanes is None:
        return
    from workshop_utils.core import labs

    def wall(name: str) -> str:
        job = lanes.jobs.get(name)
        run = job.result.get("run") if job else None
        return f"{run.wall_s:.0f}" if run else (f"{job.result['wall_s']:.0f}" if job and "wall_s" in job.result else "-")

    terminalreporter.section("lab smoke timings")
    terminalreporter.write_line(f"{lanes.lanes} run(s) at a time beside the unit tests, so a wall time includes sharing "
                                "the cores;\na budget is for a lab run alone on 2 quiet cores.")
    terminalreporter.write_line(f"{'lab':<32} {'first s':>8} {'rerun s':>8} {'budget s':>9}")
    for stem, wall_s in timings.items():
        budget = labs.smoke_budget_s(stem)
        flag = "  over budget" if labs.is_over_budget(wall_s, budget) else ""
        prefix = stem[:2]
        rerun = wall("nbmake:00" if prefix == "00" else f"rerun:{prefix}")
        terminalreporter.write_line(f"{stem:<32} {wall_s:>8.0f} {rerun:>8} {budget or 0:>9.0f}{flag}")
    if "alone:06" in lanes.jobs:
        terminalreporter.write_line(f"{'capstone alone (fresh workspace)':<32} {wall('alone:06'):>8}")
