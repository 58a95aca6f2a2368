"""Ports for a Triton server on 127.0.0.1: the defaults, whether one is free, and a port argument check."""

from __future__ import annotations

import socket
from typing import Any

from workshop_utils.core.inputs import bad_input, describe, require_int

DEFAULT_PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port`` (a bind test, as the server will do)."""
    require_port(port, "port_free", "port")
    if not isinstance(host, str) or not host:
        raise bad_input("port_free", "host as an address string", describe(host),
                        "Leave host out (127.0.0.1, where the workshop's servers listen).")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_port(port: Any, where: str, name: str) -> int:
    """``port`` as a TCP port number (1-65535)."""
    return require_int(port, where, name, minimum=1, maximum=65535)
