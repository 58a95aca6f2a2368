"""Starting PyTriton on a loaded machine: the handshake race behind a refused model load, and the bounded retry."""

from __future__ import annotations

import pathlib
import socket
import tempfile

import pytest

from workshop_utils import triton_worker

REFUSED = "load failed for model 'fixed_cost': ConnectionRefusedError: [Errno 111] Connection refused"


class FlakyTriton:
    """Stands in for ``pytriton.triton.Triton``: each ``run()`` raises the next planned error, then succeeds."""

    def __init__(self, errors: list[BaseException]) -> None:
        self.errors = list(errors)
        self.runs = 0

    def run(self) -> None:
        self.runs += 1
        if self.errors:
            raise self.errors.pop(0)


def test_a_socket_that_exists_but_does_not_listen_yet_refuses_pytritons_handshake() -> None:
    """The cause: the first instance's socket file appears at bind(), before listen(); a second instance that
    connects in that gap is refused, which fails the whole model load."""
    from pytriton.proxy.communication import get_config_from_handshake_server

    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "fixed_cost-config.sock"
        half_open = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        half_open.bind(str(path))  # the file exists now; listen() has not run
        try:
            with pytest.raises(ConnectionRefusedError):
                get_config_from_handshake_server(path, timeout_s=1.0)
        finally:
            half_open.close()


def test_a_refused_model_load_is_retried_and_then_served() -> None:
    triton = FlakyTriton([RuntimeError(REFUSED), ConnectionRefusedError(111, "Connection refused")])
    assert triton_worker.run_with_retry(triton, attempts=3, pause_s=0) == 3
    assert triton.runs == 3


def test_retries_are_bounded() -> None:
    triton = FlakyTriton([RuntimeError(REFUSED)] * 5)
    with pytest.raises(RuntimeError, match="Connection refused"):
        triton_worker.run_with_retry(triton, attempts=2, pause_s=0)
    assert triton.runs == 2


def test_other_start_errors_are_not_retried() -> None:
    triton = FlakyTriton([ValueError("bad model config")])
    with pytest.raises(ValueError, match="bad model config"):
        triton_worker.run_with_retry(triton, attempts=3, pause_s=0)
    assert triton.runs == 1
