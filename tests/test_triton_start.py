"""Starting PyTriton on a loaded machine: the handshake race behind a refused model load, and the bounded retry."""

from __future__ import annotations

import pathlib
import socket
import tempfile

import pytest

from workshop_utils.serving import worker as triton_worker

REFUSED = "load failed for model 'fixed_cost': ConnectionRefusedError: [Errno 111] Connection refused"


class FlakyTriton:
    """Builds stand-ins for ``pytriton.triton.Triton``: the n-th one's ``run()`` raises the n-th planned error."""

    def __init__(self, errors: list[BaseException]) -> None:
        self.errors = list(errors)
        self.built = 0
        self.stopped = 0

    def __call__(self) -> FlakyTriton.Server:
        self.built += 1
        return self.Server(self, self.errors.pop(0) if self.errors else None)

    class Server:
        def __init__(self, plan: FlakyTriton, error: BaseException | None) -> None:
            self.plan, self.error = plan, error

        def run(self) -> None:
            if self.error is not None:
                raise self.error

        def stop(self) -> None:
            self.plan.stopped += 1


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


def test_a_refused_model_load_starts_a_fresh_server() -> None:
    factory = FlakyTriton([RuntimeError(REFUSED), ConnectionRefusedError(111, "Connection refused")])
    server, attempts = triton_worker.run_with_retry(factory, attempts=3, pause_s=0)
    assert attempts == 3 and factory.built == 3
    assert factory.stopped == 2, "each refused server is stopped before the next one starts"
    assert server.error is None


def test_retries_are_bounded() -> None:
    factory = FlakyTriton([RuntimeError(REFUSED)] * 5)
    with pytest.raises(RuntimeError, match="Connection refused"):
        triton_worker.run_with_retry(factory, attempts=2, pause_s=0)
    assert factory.built == 2


def test_other_start_errors_are_not_retried() -> None:
    factory = FlakyTriton([ValueError("bad model config")])
    with pytest.raises(ValueError, match="bad model config"):
        triton_worker.run_with_retry(factory, attempts=3, pause_s=0)
    assert factory.built == 1
