"""A Ray cluster's address, checked before attaching to it (``--ray-address`` of sweep and extract).

``ray.init`` against an address where nothing answers, or where something other than Ray does,
retries for minutes; :func:`check_ray_address` fails in one line within a timeout instead. Ray's
head answers on its address with gRPC, so the check opens a TCP connection, sends the start of an
HTTP/2 connection and waits for the server's first frame (SETTINGS). Ray is not imported here.
"""

from __future__ import annotations

import socket
import time

from aqakit.errors import ConfigError, one_line_reason

#: Seconds to wait for a Ray cluster to answer at ``--ray-address`` before giving up.
DEFAULT_CONNECT_TIMEOUT = 10.0

#: The start of an HTTP/2 connection (the client preface, then an empty SETTINGS frame). Ray's
#: head answers on its address with gRPC, whose server's first frame is SETTINGS (type 4).
_HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_SETTINGS_FRAME = 4


def check_ray_address(address: str, timeout: float = DEFAULT_CONNECT_TIMEOUT) -> None:
    """ConfigError (one line) unless a Ray head answers at ``address`` (``HOST:PORT`` or
    ``ray://HOST:PORT``) within ``timeout`` seconds."""
    host, port = host_and_port(address)
    _check_answers(host, port, address, timeout)


def host_and_port(address: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``ray://HOST:PORT`` split; ConfigError naming ``address`` otherwise."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address {address!r}: expected HOST:PORT (the head's address that `ray start --head` "
                          "prints), ray://HOST:PORT or auto")
    return host.strip("[]"), int(port)


def _check_answers(host: str, port: int, address: str, timeout: float) -> None:
    """ConfigError unless a gRPC server (Ray's head) answers at ``host:port`` (given as ``address``)
    within ``timeout`` seconds. Ray's own attach retries for minutes when nobody answers."""
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(_HTTP2_HELLO)
            header = b""
            while len(header) < 9:
                connection.settimeout(max(deadline - time.monotonic(), 1e-3))
                chunk = connection.recv(9 - len(header))
                if not chunk:
                    break
                header += chunk
    except OSError as exc:  # refused, unreachable, unknown host, timed out
        raise ConfigError(f"no Ray cluster answered at {address} within {timeout:g} s ({one_line_reason(exc) or 'timed out'}); "
                          "start one with `ray start --head` and pass the address it prints") from None
    if len(header) < 9 or header[3] != _SETTINGS_FRAME:
        raise ConfigError(f"{address} answers, but not as a Ray cluster (no gRPC server there); pass the address "
                          "that `ray start --head` prints")
