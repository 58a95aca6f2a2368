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

import pytest


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

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            route = server_state.routes.get(self.path)
            server_state.hits[self.path] += 1
            if route is None:
                self.send_error(404)
                return
            faulty = server_state.hits[self.path] <= route.faulty
            fault = route.fault if faulty else None
            if route.delay_s:
                time.sleep(route.delay_s)
            if fault == "404":
                self.send_error(404)
                return
            if fault == "500":
                self.send_error(500)
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
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
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
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """After ``make test``: each lab's smoke wall time against its budget (over budget is flagged, not failed)."""
    import sys

    notebooks = sys.modules.get("tests.test_notebooks")
    timings = getattr(notebooks, "SMOKE_WALL_S", {})
    if not timings:
        return
    from workshop_utils.core import labs

    terminalreporter.section("lab smoke timings")
    terminalreporter.write_line(f"{'lab':<32} {'wall s':>7} {'budget s':>9}")
    for stem, wall_s in timings.items():
        budget = labs.smoke_budget_s(stem)
        flag = "  over budget" if labs.is_over_budget(wall_s, budget) else ""
        terminalreporter.write_line(f"{stem:<32} {wall_s:>7.0f} {budget or 0:>9.0f}{flag}")
