"""What the warm worker's client, the worker and its management share: names and wire format.

The variables that configure workers, how a worker is named (its folder by installed
code, its socket by the environment it imported under), the framing of requests over
the Unix socket, and how to tell a worker process from another.

The standard library and :mod:`kubetfx.envvars` only: the client imports this module
without site-packages.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct

from kubetfx.envvars import PER_TASK

ENABLE_ENV = "KUBETFX_WARM"  # "0" turns the worker off
DIR_ENV = "KUBETFX_WARM_DIR"  # where workers live (default: per-user runtime folder)
IDLE_ENV = "KUBETFX_WARM_IDLE_SECONDS"
START_ENV = "KUBETFX_WARM_START_SECONDS"
DEFAULT_IDLE_SECONDS = 900.0
DEFAULT_START_SECONDS = 300.0
FAILED_RETRY_SECONDS = 300.0  # after a worker failed to start, use plain processes this long
MAGIC = b"KTW1"
MAX_SOCKET_PATH = 107
SERVE_COMMAND = ("-m", "kubetfx.local.warm", "serve")  # a worker's command line, after python
TASK_COMMAND = ("-m", "kubetfx.task")  # what a worker runs (and nothing else)

# Differ per task, run or terminal, and nothing reads them at import time: not part of a
# worker's identity. Everything else in the environment is.
VOLATILE_ENV = frozenset(
    {
        "PATH",
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
        "PYTEST_CURRENT_TEST",
        "TERM",
        "TERM_PROGRAM",
        "TERM_PROGRAM_VERSION",
        "TERM_SESSION_ID",
        "COLORTERM",
        "COLUMNS",
        "LINES",
        "WINDOWID",
        "DISPLAY",
        "STY",
        "WINDOW",
        "LS_COLORS",
        "MAIL",
        "PS1",
        "MAKEFLAGS",
        "MAKELEVEL",
        "MFLAGS",
        ENABLE_ENV,
        DIR_ENV,
        IDLE_ENV,
        START_ENV,
    }
    # What the runner and the task wrapper set per run or task (read when the task runs).
    | PER_TASK
)
VOLATILE_PREFIXES = ("SSH_", "TMUX", "XDG_SESSION_")


# ---------------------------------------------------------------------- naming


def code_key(*, version: str, interpreter: str, site_state: str) -> str:
    """The name of a worker's folder: one per kubetfx version, interpreter and installed packages.

    ``site_state`` names the state of site-packages (its folders' modification times, which
    change when a package is installed, upgraded or removed). Edits to sources outside
    site-packages (a checkout) are caught by the worker itself: see
    :func:`kubetfx.local.warm.worker.changed_sources`.
    """
    blob = json.dumps([version, interpreter, site_state]).encode()
    return f"{version}-{hashlib.sha256(blob).hexdigest()[:16]}"


def env_digest(env: dict[str, str]) -> str:
    """A hash of the environment a worker imports its libraries under (volatile names left out)."""
    kept = sorted(
        (k, v) for k, v in env.items() if k not in VOLATILE_ENV and not k.startswith(VOLATILE_PREFIXES)
    )
    return hashlib.sha256(json.dumps(kept).encode()).hexdigest()[:12]


def socket_path(worker_dir: str, env: dict[str, str]) -> str:
    """The socket of the worker that serves tasks with environment ``env``."""
    return os.path.join(worker_dir, env_digest(env) + ".sock")


# ---------------------------------------------------------------------- wire format


def send(sock: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    """One framed message (``MAGIC``, length, JSON), with file descriptors if given."""
    body = json.dumps(message).encode()
    header = MAGIC + struct.pack("!I", len(body))
    if fds:
        socket.send_fds(sock, [header], fds)
    else:
        sock.sendall(header)
    sock.sendall(body)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise ConnectionError("connection closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def recv_request(sock: socket.socket) -> tuple[dict, list[int]]:
    """One framed message :func:`send` sent, and the file descriptors that came with it."""
    header, fds, _flags, _addr = socket.recv_fds(sock, 8, 3)
    if not header:
        raise ConnectionError("connection closed")
    if len(header) < 8:
        header += _recv_exact(sock, 8 - len(header))
    if header[:4] != MAGIC:
        for fd in fds:
            os.close(fd)
        raise ConnectionError("not a kubetfx warm-worker request")
    (size,) = struct.unpack("!I", header[4:])
    return json.loads(_recv_exact(sock, size)), list(fds)


def request(path: str, message: dict, timeout: float = 10.0) -> dict:
    """One request/answer exchange with the worker at ``path`` (ping, stop)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        send(sock, message)
        line = sock.makefile("rb").readline()
    if not line:
        raise ConnectionError("no answer")
    return json.loads(line)


# ---------------------------------------------------------------------- processes


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def is_worker(pid: int, path: str = "") -> bool:
    """Whether process ``pid`` is a warm worker (serving the socket ``path``, if given)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    command = "\0".join(SERVE_COMMAND[1:]).encode() + b"\0"
    return command in cmdline and (not path or f"\0{path}\0".encode() in cmdline)


def kill(pid: int, signum: int) -> None:
    """Send ``signum`` to ``pid`` unless it is gone already."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
