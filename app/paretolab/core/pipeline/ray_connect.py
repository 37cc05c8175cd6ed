"""Joining a Ray cluster without Ray's noise: the address checked, the port asked whether it speaks
gRPC, Ray's own output sent to the log file, and each failure (a token the cluster wants, a port
that is not Ray's) said in one line.

Ray's C++ client prints a warning on the terminal every second while it retries (20 lines of
"InvalidAuthToken" against a cluster started with token authentication), and it waits for ever on
a port that accepts connections but never answers: both are caught here before or while Ray tries.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from urllib.parse import urlparse

from paretolab.core.errors import ParetoLabError, first_line

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0  # a gRPC server answers the HTTP/2 preface at once; a silent port gets this long
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # + an empty SETTINGS frame
_SETTINGS = 0x4


class ClusterError(ParetoLabError):
    """The cluster cannot run the sweep: unreachable, another Ray version, a missing resource or runtime."""


def address_host_port(address: str) -> tuple[str, int]:
    """The host and port Ray will dial for `address` (HOST:PORT, or ray://HOST[:PORT] for Ray
    Client, 10001 by default); a malformed address is one line saying what to give."""
    client = address.startswith("ray://")
    if "://" in address and not client:
        raise ClusterError(f"--ray {address}: give HOST:PORT (the head's port, 6379 unless `ray start --head --port` "
                           "chose another), ray://HOST:10001 for Ray Client, or auto")
    try:
        parsed = urlparse(address if client else f"ray://{address}")
        host, port = parsed.hostname, parsed.port
    except ValueError as exc:  # "Port out of range 0-65535", "Port could not be cast to integer value as 'abc'"
        raise ClusterError(f"--ray {address}: {first_line(exc).split(' as ')[0].lower()}; give HOST:PORT with a port "
                           "from 1 to 65535, e.g. 127.0.0.1:6379") from None
    if not host:
        raise ClusterError(f"--ray {address}: no host; give HOST:PORT, e.g. 127.0.0.1:6379")
    if port is None and not client:
        raise ClusterError(f"--ray {address}: no port; give HOST:PORT, e.g. {host}:6379 (the port `ray start --head` printed)")
    if port == 0:
        raise ClusterError(f"--ray {address}: port 0 is not a port Ray listens on; give the head's port, e.g. {host}:6379")
    return host, port or 10001


def check_reachable(address: str | None) -> None:
    """A quick TCP connect and an HTTP/2 hello, so a wrong address fails in seconds, not after Ray's
    minute of retries (or never, on a port that accepts and stays silent)."""
    if address in (None, "auto", "local"):
        return
    host, port = address_host_port(address)
    try:
        with socket.create_connection((host, port), timeout=3) as conn:
            conn.settimeout(PROBE_TIMEOUT_S)
            conn.sendall(_HTTP2_PREFACE)
            reply = _read(conn, 9)
    except OSError as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}): start it with "
                           "`ray start --head`, or check the address and port") from None
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return  # a TLS cluster answers a plain HTTP/2 hello with nothing useful: Ray's own connect judges it
    if len(reply) < 9 or reply[3] != _SETTINGS:  # every gRPC server opens with a SETTINGS frame
        heard = "no answer" if not reply else "an answer that is not gRPC"
        raise ClusterError(f"{address} is not a Ray cluster ({heard} within {PROBE_TIMEOUT_S:.0f} s): give the head's "
                           "port (6379 unless `ray start --head --port` chose another), or ray://HOST:10001 for Ray Client")


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    with contextlib.suppress(TimeoutError, socket.timeout, ConnectionResetError):
        while len(data) < size and (chunk := conn.recv(size - len(data))):
            data += chunk
    return data


def connect_error(address: str | None, exc: BaseException, said: str = "") -> str:
    """One line for a failed ray.init: `said` is what Ray printed meanwhile (its C++ warnings)."""
    where = f"the Ray cluster at {address}" if address else "a local Ray instance"
    text = first_line(exc)
    if "InvalidAuthToken" in said or "Unauthenticated" in said or "authentication token" in text.lower():
        return f"cannot join {where}: {token_advice()}"
    if "version" in text.lower() and "mismatch" in text.lower():
        return f"cannot join {where}: its Ray or Python version differs from this machine's ({text}); install the same on both"
    return f"cannot start or join {where}: {text}"


def token_advice() -> str:
    """What to set for a cluster with token authentication, as Ray reads it: RAY_AUTH_MODE=token,
    and the token from RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH names, else ~/.ray/auth_token."""
    mode = os.environ.get("RAY_AUTH_MODE", "")
    if mode.lower() == "token":
        source = ("RAY_AUTH_TOKEN" if os.environ.get("RAY_AUTH_TOKEN")
                  else os.environ.get("RAY_AUTH_TOKEN_PATH") or "~/.ray/auth_token")
        return (f"it refused the token from {source} (RAY_AUTH_MODE=token is set); give the cluster's token "
                "(`ray get-auth-token` on the head prints it) in RAY_AUTH_TOKEN or in ~/.ray/auth_token")
    return ("it uses token authentication; set RAY_AUTH_MODE=token and the cluster's token (`ray get-auth-token` on the "
            "head prints it) in RAY_AUTH_TOKEN, or in a file named by RAY_AUTH_TOKEN_PATH (default ~/.ray/auth_token)"
            + (f" (RAY_AUTH_MODE is '{mode}' now)" if mode else ""))


@contextlib.contextmanager
def ray_output_to_log() -> Iterator[list[str]]:
    """While Ray starts or stops, its C++ and Python output goes to the log file, not the terminal;
    the list yielded holds that text afterwards, for connect_error to read."""
    from paretolab.logs import native_stderr_to_log

    ray_logger = logging.getLogger("ray")
    for handler in list(ray_logger.handlers):  # Ray's own stderr handler: its records join ours in the log file
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            ray_logger.removeHandler(handler)
    ray_logger.propagate = True
    with native_stderr_to_log("ray") as said:
        yield said
