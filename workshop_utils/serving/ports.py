"""Ports for a Triton server on 127.0.0.1: the defaults, whether one is free, who listens, a port argument check."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from workshop_utils.core.contract import open_file_targets
from workshop_utils.core.inputs import bad_input, describe, require_int

DEFAULT_PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}
TCP_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
TCP_LISTEN = "0A"  # the state column of /proc/net/tcp
SOCKET_LINK = "socket:["


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


def listening_sockets(ports: Iterable[int]) -> dict[int, int] | None:
    """The TCP sockets listening on any of ``ports``, as ``{socket inode: port}``; None without Linux's ``/proc/net``.

    A port says only that someone listens; the inode says which socket. Once a server has stopped, another
    server (a second lab, a test beside a lab) may take 8000 at once: that socket has a new inode and is not the
    stopped server's leftover.
    """
    wanted = {int(port) for port in ports}
    tables = [table for table in TCP_TABLES if table.exists()]
    if not tables:
        return None
    found: dict[int, int] = {}
    for table in tables:
        try:
            rows = table.read_text().splitlines()[1:]
        except OSError:
            return None
        for row in rows:
            fields = row.split()  # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
            if len(fields) < 10 or fields[3] != TCP_LISTEN:
                continue
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if port in wanted:
                found[int(fields[9])] = port
    return found


def socket_inodes(pids: Iterable[int]) -> set[int]:
    """The inodes of the sockets that processes ``pids`` hold open (gone or unreadable processes add nothing)."""
    return {int(target[len(SOCKET_LINK):-1]) for target in open_file_targets(pids) if target.startswith(SOCKET_LINK)}


def ports_still_held(ports: Iterable[int], own_listeners: dict[int, int], settle_s: float = 3.0) -> set[int]:
    """Those of ``ports`` that one of ``own_listeners`` (a stopped server's sockets) still holds after ``settle_s``.

    The kernel may take a moment to close a dead process's socket, hence the wait. Where ``/proc/net`` cannot say
    whose socket it is (not Linux), any listener counts.
    """
    ports = list(ports)
    deadline = time.monotonic() + settle_s
    while True:
        listeners = listening_sockets(ports)
        if listeners is None:
            held = {port for port in ports if not port_free(port)}
        else:
            held = {port for inode, port in listeners.items() if inode in own_listeners}
        if not held or time.monotonic() > deadline:
            return held
        time.sleep(0.1)
