"""The warm worker's client: what a task's ``python3 -m kubetfx.task ...`` becomes under the shim.

The runner's ``python3`` shim (:func:`kubetfx.local.warm.manage.shim_dir`) runs
:func:`client` with ``-I -S`` (no site-packages: it starts in milliseconds). It connects
to the worker that serves this environment, starting one if there is none (one process
starts it, the others wait on a lock), passes its stdin, stdout and stderr over the
socket, forwards the signals it receives to the task and exits as the task did. If the
task has not started (no worker, one that failed or is stopping), it runs the task in a
plain process (``exec`` of the real interpreter) instead.

The standard library and :mod:`kubetfx.local.warm.protocol` only.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import sys
import time

from kubetfx.local.warm.protocol import (
    DEFAULT_IDLE_SECONDS,
    DEFAULT_START_SECONDS,
    FAILED_RETRY_SECONDS,
    IDLE_ENV,
    SERVE_COMMAND,
    START_ENV,
    VOLATILE_ENV,
    alive,
    is_worker,
    request,
    send,
    socket_path,
)


class _Fallback(Exception):
    """The task has not started: run it in a plain process."""


def client(worker_dir: str) -> None:
    """The shim's entry: hand ``python3 -m kubetfx.task ARGS`` to the worker serving
    ``worker_dir`` (started if need be), or run it plainly; exits as the task did."""
    args = sys.argv[1:]  # ["-m", "kubetfx.task", ...]
    try:
        sock, reader = _hand_over(worker_dir, args)
    except Exception as why:  # noqa: BLE001 - the task has not started: run it plainly
        os.write(2, f"kubetfx: warm worker not used ({why}); this task runs in its own process\n".encode())
        os.execv(sys.executable, [sys.executable, *args])  # noqa: S606 - the task's own command
    _exit_like(_wait(sock, reader))


def _hand_over(worker_dir: str, args: list[str]) -> tuple[socket.socket, object]:
    """Send the task to the worker; returns once it runs (the connection and its reader)."""
    env = dict(os.environ)
    path = socket_path(worker_dir, env)
    umask = os.umask(0)
    os.umask(umask)
    request = {"op": "run", "argv": args, "cwd": os.getcwd(), "env": env, "umask": umask}
    for attempt in range(2):
        sock = _connect(path) or _start_worker(path, env)
        try:
            send(sock, request, [0, 1, 2])
            reader = sock.makefile("rb")
            first = reader.readline()
        except OSError:
            first = b""
        answer = json.loads(first) if first else {}
        if "started" in answer:
            return sock, reader
        sock.close()
        if attempt:  # the worker was stopping or died before it forked: give up on it
            raise _Fallback(answer.get("error") or "the worker closed the connection")
    raise AssertionError("unreachable")


def _connect(path: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def _start_worker(path: str, env: dict[str, str]) -> socket.socket:
    """Start the worker for ``path`` (one per socket: others wait on the lock) and connect."""
    deadline = time.monotonic() + float(os.environ.get(START_ENV) or DEFAULT_START_SECONDS)
    stem = path[: -len(".sock")]
    lock = os.open(stem + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while True:  # whoever holds the lock is starting the worker: wait for it or for the lock
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                sock = _connect(path)
                if sock:
                    return sock
                if time.monotonic() > deadline:
                    raise _Fallback("timed out waiting for another process to start the worker") from None
                time.sleep(0.1)
        sock = _connect(path)
        if sock:
            return sock
        failed, log = stem + ".failed", stem + ".log"
        pid = _starting_worker(stem, path)
        own = pid is None
        if own:
            try:
                if time.time() - os.stat(failed).st_mtime < FAILED_RETRY_SECONDS:
                    raise _Fallback(f"the worker failed to start recently, see {log}")
            except FileNotFoundError:
                pass
            pid = _spawn_worker(path, env, log)
            with open(stem + ".starting", "w") as f:
                f.write(str(pid))
        # else: a worker is importing for a client that stopped waiting: wait for it.
        assert pid is not None  # ours was just spawned, or another client's is starting
        while True:
            sock = _connect(path)
            if sock:
                return sock
            exited = bool(os.waitpid(pid, os.WNOHANG)[0]) if own else not alive(pid)
            if exited:
                with open(failed, "w") as f:
                    f.write(f"worker {pid} exited before serving; see {log}\n")
                raise _Fallback(f"the worker exited before serving, see {log}")
            if time.monotonic() > deadline:
                raise _Fallback(f"the worker did not start in time, see {log}")
            time.sleep(0.01)  # a connect attempt is a system call: the task starts once it serves
    finally:
        os.close(lock)  # releases the lock


def _starting_worker(stem: str, path: str) -> int | None:
    """The pid of a worker for ``path`` that is still importing, if any."""
    try:
        with open(stem + ".starting") as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid and alive(pid) and is_worker(pid, path) else None


def start_early(worker_dir: str, env: dict[str, str], interpreter: str) -> int | None:
    """Start the worker that will serve tasks run with environment ``env``, without waiting
    for its imports: the runner calls this when a run begins, so the imports overlap with
    its own start and with tasks that need no heavy library. Returns the new worker's pid,
    or None when one serves or is starting already, another process is starting one, or
    one failed to start recently. A task's client that finds the worker still importing
    waits for it (:func:`_start_worker`).

    ``interpreter``: the ``python3`` the task's shim runs (the worker's folder is named
    after it). The caller reaps the process if it exits while the caller runs.
    """
    path = socket_path(worker_dir, env)
    stem = path[: -len(".sock")]
    if _answers(path):
        return None
    lock = os.open(stem + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # a client is starting it
        if _answers(path):
            return None
        if _starting_worker(stem, path) is not None:
            return None
        try:
            if time.time() - os.stat(stem + ".failed").st_mtime < FAILED_RETRY_SECONDS:
                return None
        except FileNotFoundError:
            pass
        pid = _spawn_worker(path, env, stem + ".log", interpreter)
        with open(stem + ".starting", "w") as f:
            f.write(str(pid))
        return pid
    finally:
        os.close(lock)


def _answers(path: str) -> bool:
    """Whether a worker serves ``path`` (a ping, not a bare connection: a worker reads a
    request from every connection it accepts)."""
    if not os.path.exists(path):
        return False
    try:
        request(path, {"op": "ping"}, timeout=5)
    except (OSError, ValueError):
        return False
    return True


def _spawn_worker(path: str, env: dict[str, str], log: str, interpreter: str | None = None) -> int:
    """Start ``python -m kubetfx.local.warm serve`` in its own session; its pid."""
    interpreter = interpreter or sys.executable
    worker_env = {k: v for k, v in env.items() if k in ("PATH", "PYTHONUNBUFFERED") or k not in VOLATILE_ENV}
    idle = env.get(IDLE_ENV) or str(DEFAULT_IDLE_SECONDS)
    argv = [interpreter, *SERVE_COMMAND, "--socket", path, "--idle", idle]
    # No Python runs between fork and exec (posix_spawn); the worker detaches (setsid) and
    # does not inherit the task's stdout: it logs to its own file.
    return os.posix_spawn(
        interpreter,
        argv,
        worker_env,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )


def _wait(sock: socket.socket, reader: object) -> dict:
    """Forward signals to the task until the worker reports how it ended."""

    def forward(signum: int, _frame: object) -> None:
        try:
            send(sock, {"op": "signal", "signal": signum})
        except OSError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1):
        signal.signal(signum, forward)
    signal.signal(signal.SIGUSR2, forward)
    try:
        return json.loads(reader.readline())  # type: ignore[attr-defined]
    except (OSError, ValueError):
        return {"error": "the warm worker ended while the task ran (the task ended with it)"}


def _exit_like(status: dict) -> None:
    """Exit as the task did: same code, or killed by the same signal."""
    if "signal" in status:
        signum = int(status["signal"])
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the task dumped core already, if at all
        except (ImportError, OSError, ValueError):
            pass
        if signum not in (signal.SIGKILL, signal.SIGSTOP):  # those cannot be handled anyway
            signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
        os.kill(os.getpid(), signum)
        os._exit(128 + signum)  # a signal whose default is to ignore it
    if "error" in status:
        os.write(2, f"kubetfx: {status['error']}\n".encode())
        os._exit(1)
    os._exit(int(status.get("exit", 1)))
