"""The warm worker: a daemon that keeps TensorFlow, TFDV, TFMA and Beam imported for tasks.

Every kubetfx task still runs the container's command (``sh -ec '... python3 -m
kubetfx.task "$@"' ...``). When the warm worker is on, the local runner puts a small
``python3`` shim first on the task's ``PATH``. For ``python3 -m kubetfx.task ...`` the
shim runs the client in this file (``-I -S``: no site-packages, so it starts in
milliseconds), which hands the task to the worker; anything else goes straight to the
real interpreter.

The worker (``python -m kubetfx.local.warm serve``) imports the heavy libraries once,
then forks one child per task. The child takes over the client's stdin, stdout and
stderr (passed over the Unix socket with SCM_RIGHTS), its working folder, umask,
environment and arguments, and runs ``kubetfx.task`` exactly as ``python3 -m`` would
(``runpy``), so lineage, staging, the state file and the log are those of a plain
process. The worker sends the child's exit status back; the client exits with it (or
kills itself with the same signal), so the runner sees what it would have seen.

Isolation: a task that crashes or is killed takes only its forked child down. The
child dies with the worker (``PR_SET_PDEATHSIG``), with its client and with the runner
(pidfd watchers); the worker kills it when the client's connection closes.

Identity: a worker serves one interpreter, one installed code and one environment. Its
folder name hashes the kubetfx version, the interpreter's path and the state of
site-packages (installing or upgrading a package names a new worker); its socket name
hashes the environment minus the variables that differ per task, run or terminal
(``VOLATILE_ENV``), so a task never runs in a worker that imported its libraries under
other settings (``_KFP_RUNTIME``, ``TF_*``, ``CUDA_VISIBLE_DEVICES``, ``PYTHONPATH``...).
Stale code: before every task the worker checks the source files of the modules it
loaded from outside the standard library and site-packages (kubetfx and its components
in a checkout, any other editable install); if one changed, it hands the task back
(the client starts a fresh worker) and stops once its running tasks end. Editing a file
that no loaded module comes from (a CLI module, a test) restarts nothing; modules the
worker did not load are imported by the task itself, from the current files. A worker
that starts also stops workers of the same interpreter under another folder name.

Fallback: if no worker can be reached or started, or the request fails before the task
started, the client runs the task in a plain process (``exec`` of the real
interpreter), as without the worker. Correctness never depends on the worker.

This module imports only the standard library at module level: the client runs it
without site-packages.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import socket
import stat
import struct
import sys
import threading
import time

ENABLE_ENV = "KUBETFX_WARM"  # "0" turns the worker off
DIR_ENV = "KUBETFX_WARM_DIR"  # where workers live (default: per-user runtime folder)
IDLE_ENV = "KUBETFX_WARM_IDLE_SECONDS"
START_ENV = "KUBETFX_WARM_START_SECONDS"
DEFAULT_IDLE_SECONDS = 900.0
DEFAULT_START_SECONDS = 300.0
FAILED_RETRY_SECONDS = 300.0  # after a worker failed to start, use plain processes this long
CLIENT_MODULE = "kubetfx_warm"  # this file, copied into the worker's folder for the client
MAGIC = b"KTW1"
_MAX_SOCKET_PATH = 107

# Differ per task, run or terminal, and nothing reads them at import time: not part of a
# worker's identity. Everything else in the environment is.
VOLATILE_ENV = frozenset(
    {
        "PATH",
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
        "PYTHONUNBUFFERED",
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
        # What the runner and the task wrapper set per run or task (read when the task runs).
        "KUBETFX_METADATA",
        "KUBETFX_METADATA_PASSWORD",
        "KUBETFX_PIPELINE_ROOT",
        "KUBETFX_PIPELINE_NAME",
        "KUBETFX_RUN_ID",
        "KUBETFX_TASK_NAME",
        "KUBETFX_CACHE_KEY",
        "KUBETFX_TASK_STATE",
        "KUBETFX_DIE_WITH_RUNNER",
        "KUBETFX_RUNNER_PID",
        "KUBETFX_PUSH_ROOT",
        "KUBETFX_COMPONENT_VERSION",
        "KUBETFX_EXECUTION_ID",
        "KUBETFX_LOCAL_MOUNT_ROOT",  # object-store mode: the task's own folder
        "TMPDIR",
        ENABLE_ENV,
        DIR_ENV,
        IDLE_ENV,
        START_ENV,
    }
)
VOLATILE_PREFIXES = ("SSH_", "TMUX", "XDG_SESSION_")

# What the worker imports before it serves: the heavy libraries and every module a
# kubetfx task imports. A module missing here is imported by the task itself (slower,
# still correct). kubetfx.components.<name>.executor modules are added at start.
PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.csv",
    "pyarrow.compute",
    "pyarrow.parquet",
    "tensorflow",
    "keras",
    "apache_beam",
    "apache_beam.options.pipeline_options",
    "apache_beam.runners.direct.direct_runner",
    "apache_beam.runners.portability.fn_api_runner",
    "tfx_bsl.coders.example_coder",
    "tfx_bsl.public.tfxio",
    "tensorflow_metadata.proto.v0.schema_pb2",
    "tensorflow_metadata.proto.v0.statistics_pb2",
    "tensorflow_data_validation",
    "tensorflow_data_validation.statistics.stats_impl",
    "tensorflow_model_analysis",
    "google.protobuf.text_format",
    "ml_metadata",
    "ml_metadata.metadata_store.metadata_store",
    "kfp.dsl.executor",
    "kfp.dsl.utils",
    "kubetfx.task",
    "kubetfx.process",
    "kubetfx.lineage.record",
    "kubetfx.lineage.store",
    "kubetfx.lineage.baseline",
    "kubetfx.staging",
    "kubetfx.reports",
    "kubetfx.pushing",
    "kubetfx.tfrecord",
)


# ---------------------------------------------------------------------- naming


def enabled(flag: bool | None = None) -> bool:
    """Whether tasks go through the warm worker: ``flag`` if given, else ``KUBETFX_WARM`` (on)."""
    if flag is not None:
        return flag
    return os.environ.get(ENABLE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def runtime_dir() -> str:
    """The per-user folder workers live in (not created here)."""
    explicit = os.environ.get(DIR_ENV)
    if explicit:
        return os.path.abspath(explicit)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg) and os.stat(xdg).st_uid == os.getuid():
        return os.path.join(xdg, "kubetfx-warm")
    return os.path.join(os.path.expanduser("~"), ".cache", "kubetfx", "warm")


def _private_dir(path: str) -> bool:
    """Create ``path`` (mode 0700) if needed; True if it is ours and private."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return False
    if info.st_mode & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError:
            return False
    return True


def code_key(*, version: str, interpreter: str, site_state: str) -> str:
    """The name of a worker's folder: one per kubetfx version, interpreter and installed packages.

    ``site_state`` names the state of site-packages (its folders' modification times, which
    change when a package is installed, upgraded or removed). Edits to sources outside
    site-packages (a checkout) are caught by the worker itself: see ``changed_sources``.
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


def _site_state() -> str:
    import sysconfig

    parts = []
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths()[key]
        try:
            parts.append(f"{path}:{os.stat(path).st_mtime_ns}")
        except OSError:
            parts.append(path)
    return ";".join(sorted(set(parts)))


def current_code_key(interpreter: str) -> str:
    """The code key of the installed kubetfx, as seen from this process."""
    from kubetfx import __version__

    return code_key(version=__version__, interpreter=interpreter, site_state=_site_state())


def source_snapshot() -> dict[str, tuple[int, int] | None]:
    """(mtime, size) of the source files of loaded modules outside the standard library and
    site-packages, and of the site-packages folders: what a worker must not keep running
    once edited or reinstalled (see ``changed_sources``)."""
    import sysconfig

    installed = tuple(
        os.path.join(os.path.realpath(p), "")
        for p in {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    )
    # site-packages folders themselves: installing, upgrading or removing a package
    # changes them (the files inside are not watched one by one: thousands of them).
    snapshot: dict[str, tuple[int, int] | None] = {
        path.rstrip(os.sep): _file_state(path) for path in installed if "-packages" in path
    }
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or os.path.realpath(path).startswith(installed):
            continue
        snapshot[path] = _file_state(path)
    return snapshot


def changed_sources(snapshot: dict[str, tuple[int, int] | None]) -> list[str]:
    """The files of ``snapshot`` that changed (or appeared, or went) since it was taken."""
    return [path for path, state in snapshot.items() if _file_state(path) != state]


def _file_state(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)


_shims: dict[tuple[str, str], str | None] = {}
_shims_lock = threading.Lock()


def shim_dir(task_path: str) -> str | None:
    """The folder with the ``python3`` shim for tasks run with ``PATH=task_path``.

    Writes the shim and the client on first use. Returns None (plain processes) when the
    worker cannot be used here: no private runtime folder, socket path too long, or the
    ``python3`` the task would run is not this process's interpreter.
    """
    key = (task_path, _site_state())  # a package installed since: another worker
    with _shims_lock:
        if key not in _shims:
            try:
                _shims[key] = _make_shim(task_path)
            except OSError:
                _shims[key] = None
        return _shims[key]


def _make_shim(task_path: str) -> str | None:
    import shutil

    if sys.platform != "linux" or not hasattr(os, "pidfd_open"):
        return None  # the worker relies on pidfds, SCM_RIGHTS and PR_SET_PDEATHSIG
    real = shutil.which("python3", path=task_path)
    if real is None or os.path.dirname(real) != os.path.dirname(sys.executable):
        return None  # the worker imports with this interpreter's packages only
    base = runtime_dir()
    if not _private_dir(base):
        return None
    worker_dir = os.path.join(base, current_code_key(real))
    bin_dir = os.path.join(worker_dir, "bin")
    if len(os.path.join(worker_dir, "0" * 12 + ".sock.tmp-9999999")) > _MAX_SOCKET_PATH:
        return None
    if (
        any(c in p for p in (real, worker_dir) for c in "'\"\\\n")
        or not _private_dir(worker_dir)
        or not _private_dir(bin_dir)
    ):
        return None
    with open(__file__, "rb") as f:
        client = f.read()
    _write_if_changed(os.path.join(worker_dir, CLIENT_MODULE + ".py"), client, 0o600)
    where = json.dumps(worker_dir)
    launch = f"import sys; sys.path.insert(0, {where}); import {CLIENT_MODULE}; {CLIENT_MODULE}.client()"
    shim = (
        "#!/bin/sh\n"
        "# python3 for tasks of the kubetfx local runner (generated by kubetfx.local.warm):\n"
        "# `python3 -m kubetfx.task ...` goes to the warm worker, anything else to the real python3.\n"
        f"PATH=${{PATH#'{bin_dir}:'}}\n"
        'if [ "$1" = -m ] && [ "$2" = kubetfx.task ]; then\n'
        f"  exec '{real}' -I -S -c '{launch}' \"$@\"\n"
        "fi\n"
        f"exec '{real}' \"$@\"\n"
    )
    _write_if_changed(os.path.join(bin_dir, "python3"), shim.encode(), 0o700)
    return bin_dir


def _write_if_changed(path: str, content: bytes, mode: int) -> None:
    try:
        with open(path, "rb") as f:
            if f.read() == content:
                return
    except OSError:
        pass
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(content)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# ---------------------------------------------------------------------- wire format


def _send(sock: socket.socket, message: dict, fds: list[int] | None = None) -> None:
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


def _recv_request(sock: socket.socket) -> tuple[dict, list[int]]:
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


def _request(path: str, message: dict, timeout: float = 10.0) -> dict:
    """One request/answer exchange with the worker at ``path`` (ping, stop)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        _send(sock, message)
        line = sock.makefile("rb").readline()
    if not line:
        raise ConnectionError("no answer")
    return json.loads(line)


# ---------------------------------------------------------------------- client


class _Fallback(Exception):
    """The task has not started: run it in a plain process."""


def client() -> None:
    """The shim's entry: hand ``python3 -m kubetfx.task ARGS`` to the worker, or run it plainly."""
    args = sys.argv[1:]  # ["-m", "kubetfx.task", ...]
    worker_dir = os.path.dirname(os.path.abspath(__file__))
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
            _send(sock, request, [0, 1, 2])
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
        while True:
            sock = _connect(path)
            if sock:
                return sock
            exited = bool(os.waitpid(pid, os.WNOHANG)[0]) if own else not _alive(pid)
            if exited:
                with open(failed, "w") as f:
                    f.write(f"worker {pid} exited before serving; see {log}\n")
                raise _Fallback(f"the worker exited before serving, see {log}")
            if time.monotonic() > deadline:
                raise _Fallback(f"the worker did not start in time, see {log}")
            time.sleep(0.05)
    finally:
        os.close(lock)  # releases the lock


def _starting_worker(stem: str, path: str) -> int | None:
    """The pid of a worker for ``path`` that is still importing, if any."""
    try:
        with open(stem + ".starting") as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid and _alive(pid) and _is_worker(pid, path) else None


def _spawn_worker(path: str, env: dict[str, str], log: str) -> int:
    """Start ``python -m kubetfx.local.warm serve`` in its own session; its pid."""
    worker_env = {k: v for k, v in env.items() if k in ("PATH", "PYTHONUNBUFFERED") or k not in VOLATILE_ENV}
    idle = os.environ.get(IDLE_ENV) or str(DEFAULT_IDLE_SECONDS)
    argv = [sys.executable, "-m", "kubetfx.local.warm", "serve", "--socket", path, "--idle", idle]
    # No Python runs between fork and exec (posix_spawn); the worker detaches (setsid) and
    # does not inherit the task's stdout: it logs to its own file.
    return os.posix_spawn(
        sys.executable,
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
            _send(sock, {"op": "signal", "signal": signum})
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


# ---------------------------------------------------------------------- worker


def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] {message}", flush=True)


def _rss_mb(pid: int | str = "self") -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _native_threads() -> list[str]:
    names = []
    for tid in sorted(os.listdir("/proc/self/task")):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return names


class _Task:
    def __init__(self, pid: int, pidfd: int, conn: socket.socket, name: str) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.conn = conn
        self.name = name
        self.started = time.monotonic()


class Worker:
    """The daemon: imports once, then forks a child per task (see the module docstring)."""

    def __init__(self, path: str, idle_seconds: float) -> None:
        self.path = path
        self.stem = path[: -len(".sock")]
        self.idle_seconds = idle_seconds
        self.tasks: dict[int, _Task] = {}  # by pidfd
        self.by_conn: dict[int, _Task] = {}  # by connection fd
        self.served = 0
        self.draining = False
        self.started = time.time()
        self.ready_seconds = 0.0
        self.last_activity = time.monotonic()
        self.env_before: dict[str, str] = {}
        self.env_after: dict[str, str] = {}
        self.preloaded = 0
        self.sources: dict[str, tuple[int, int] | None] = {}

    # ---------------------------------------------------------------- start

    def preload(self) -> None:
        """Import the libraries tasks use; execute no TensorFlow op, open no channel."""
        import importlib
        import pkgutil

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # as kubetfx.task does before it imports
        self.env_before = dict(os.environ)
        began = time.monotonic()
        names = list(PRELOAD)
        try:
            import kubetfx.components as components

            names += [
                f"kubetfx.components.{m.name}.executor"
                for m in pkgutil.iter_modules(components.__path__)
                if m.ispkg
                and any(os.path.exists(os.path.join(p, m.name, "executor.py")) for p in components.__path__)
            ]
        except Exception as err:  # noqa: BLE001 - a missing module is imported by the task itself
            _log(f"preload: kubetfx.components: {type(err).__name__}: {err}")
        for name in names:
            try:
                importlib.import_module(name)
                self.preloaded += 1
            except Exception as err:  # noqa: BLE001 - the task will import (and report) it
                _log(f"preload: {name}: {type(err).__name__}: {err}")
        self.env_after = dict(os.environ)
        self.ready_seconds = time.monotonic() - began
        import logging
        import threading

        # Imports that logged before anyone configured logging left a handler on the root
        # logger; a fresh task process configures it itself (kubetfx.task.main).
        logging.root.handlers.clear()
        logging.root.setLevel(logging.WARNING)
        python_threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        _log(
            f"imported {self.preloaded} of {len(names)} modules in {self.ready_seconds:.1f}s; "
            f"RSS {_rss_mb():.0f} MB; threads {_native_threads()}; Python threads {python_threads}"
        )
        if "tensorflow" in sys.modules:
            try:
                from tensorflow.python.eager import context

                if context.context_safe() is not None and context.context()._context_handle is not None:
                    _log("warning: TensorFlow's runtime was initialised before fork")
            except Exception:  # noqa: BLE001, S110 - a diagnostic only
                pass
        self.sources = source_snapshot()
        _log(f"watching {len(self.sources)} source files from outside site-packages for edits")
        import gc

        gc.collect()
        gc.freeze()  # children do not touch (and copy) the worker's objects when they collect

    def serve(self) -> int:
        """Import, listen, serve until idle or stopped; returns the exit status."""
        import selectors

        _log(f"kubetfx warm worker starting: {sys.executable}, socket {self.path}")
        # Import in an empty folder (``python -m`` put the starting task's folder first on
        # sys.path); the child puts its task's folder there, as ``python3 -m`` would.
        run_dir = os.path.join(os.path.dirname(self.path), "run")
        os.makedirs(run_dir, mode=0o700, exist_ok=True)
        os.chdir(run_dir)
        if sys.path and not sys.path[0].endswith("site-packages"):
            sys.path[0] = run_dir
        self.path0 = sys.path[0] if sys.path else ""
        expected = os.path.basename(os.path.dirname(self.path))
        actual = current_code_key(sys.executable)
        if expected != actual:
            # The installed code changed since the runner named this worker: serving would
            # mix versions. Exit; the task runs in a plain process.
            _log(f"installed code is {actual}, not {expected}: not serving")
            return 3
        self.preload()
        import threading

        threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        if threads:
            # A thread could hold a lock at fork time and leave children hung: serve nothing;
            # tasks fall back to plain processes.
            _log(f"a preloaded module started Python threads {threads}: not serving (fork would be unsafe)")
            return 4
        tmp = f"{self.path}.tmp-{os.getpid()}"
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        self.listener.bind(tmp)
        self.listener.listen(64)
        os.replace(tmp, self.path)  # clients see a socket only once it accepts
        self.inode = os.stat(self.path).st_ino
        self.listener.setblocking(False)
        for leftover in (".failed", ".starting"):
            try:
                os.unlink(self.stem + leftover)
            except FileNotFoundError:
                pass
        self._write_info()
        _log(f"serving (idle timeout {self.idle_seconds:.0f}s)")
        self._stop_stale_workers()

        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, lambda *_: None)  # handled through the wakeup pipe
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "signal")
        while True:
            if not self.tasks:
                if self.draining:
                    break
                if time.monotonic() - self.last_activity > self.idle_seconds:
                    _log("idle timeout")
                    break
            idle_left = self.idle_seconds - (time.monotonic() - self.last_activity)
            timeout = None if self.tasks else max(0.1, idle_left)
            for key, _mask in self.selector.select(timeout):
                kind = key.data
                if kind == "accept":
                    self._accept()
                elif kind == "signal":
                    self._on_signal()
                elif kind == "exit":
                    self._reap(key.fileobj)
                else:
                    self._on_client(kind)
        self._close_listener()
        _log(f"exiting after {self.served} tasks")
        return 0

    def _write_info(self) -> None:
        info = {
            "pid": os.getpid(),
            "socket": self.path,
            "interpreter": sys.executable,
            "code_key": os.path.basename(os.path.dirname(self.path)),
            "started": self.started,
            "import_seconds": round(self.ready_seconds, 2),
            "idle_seconds": self.idle_seconds,
            "log": self.stem + ".log",
        }
        tmp = f"{self.stem}.json.tmp"
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.replace(tmp, self.stem + ".json")

    def _stop_stale_workers(self) -> None:
        """Ask workers of this interpreter that run older code to stop once their tasks end."""
        mine = os.path.dirname(self.path)
        base = os.path.dirname(mine)
        for info in list_workers(base):
            if os.path.dirname(info["socket"]) != mine and info.get("interpreter") == sys.executable:
                try:
                    _request(info["socket"], {"op": "stop"}, timeout=5)
                    _log(f"asked stale worker {info['pid']} ({info['socket']}) to stop")
                except OSError:
                    pass

    def _close_listener(self) -> None:
        """Stop accepting: remove the socket (if it is still ours), refuse what is queued."""
        if getattr(self, "listener", None) is None:
            return
        try:
            if os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)
        except OSError:
            pass
        try:
            os.unlink(self.stem + ".json")
        except OSError:
            pass
        while True:  # connections queued before the unlink: tell them to go elsewhere
            try:
                conn, _ = self.listener.accept()
            except OSError:
                break
            try:
                conn.settimeout(1)
                conn.sendall(b'{"error": "the worker is stopping"}\n')
            except OSError:
                pass
            conn.close()
        try:
            self.selector.unregister(self.listener)
        except (KeyError, ValueError, AttributeError):
            pass
        self.listener.close()
        self.listener = None

    # ---------------------------------------------------------------- events

    def _on_signal(self) -> None:
        try:
            received = os.read(self.wake_r, 64)
        except BlockingIOError:
            return
        if not received:
            return
        if self.draining:  # a second request to stop: do not wait for the tasks
            for task in self.tasks.values():
                _kill(task.pid, signal.SIGKILL)
        self._drain("signal")

    def _drain(self, why: str) -> None:
        if not self.draining:
            _log(f"stopping ({why}); waiting for {len(self.tasks)} running task(s)")
        self.draining = True
        self._close_listener()

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, AttributeError, OSError):
            return
        conn.setblocking(True)
        conn.settimeout(10)
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        client_pid, uid, _gid = struct.unpack("3i", creds)
        fds: list[int] = []
        try:
            if uid != os.getuid():
                raise ConnectionError(f"refused a connection from uid {uid}")
            request, fds = _recv_request(conn)
            op = request.get("op")
            if op == "ping":
                self._answer(conn, self._status())
            elif op == "stop":
                self._answer(conn, {"stopping": True, "running": len(self.tasks)})
                self._drain("asked to")
            elif op == "run" and len(fds) == 3 and not self.draining and _is_task(request["argv"]):
                changed = changed_sources(self.sources)
                if changed:
                    # Never run a task on code older than its files: hand it back (the
                    # client starts a fresh worker) and go once the running tasks end.
                    self._drain(f"code changed: {changed[0]}")
                    self._answer(conn, {"error": f"the worker's code changed ({changed[0]})"})
                else:
                    self._fork(conn, request, fds, client_pid)
                    conn = None  # kept open until the task ends
            else:
                self._answer(conn, {"error": f"cannot {op!r} now"})
        except (OSError, ValueError) as err:
            _log(f"bad request from pid {client_pid}: {err}")
        finally:
            for fd in fds:
                os.close(fd)
            if conn is not None:
                conn.close()

    @staticmethod
    def _answer(conn: socket.socket, message: dict) -> None:
        try:
            conn.sendall(json.dumps(message).encode() + b"\n")
        except OSError:
            pass

    def _status(self) -> dict:
        return {
            "pid": os.getpid(),
            "uptime": round(time.time() - self.started, 1),
            "import_seconds": round(self.ready_seconds, 2),
            "served": self.served,
            "running": [{"pid": t.pid, "task": t.name} for t in self.tasks.values()],
            "idle_for": round(time.monotonic() - self.last_activity, 1),
            "idle_seconds": self.idle_seconds,
            "rss_mb": round(_rss_mb(), 1),
            "import_env": sorted(
                k
                for k in set(self.env_before) | set(self.env_after)
                if self.env_before.get(k) != self.env_after.get(k)
            ),
            "interpreter": sys.executable,
            "socket": self.path,
        }

    def _fork(self, conn: socket.socket, request: dict, fds: list[int], client_pid: int) -> None:
        import selectors

        sys.stdout.flush()
        sys.stderr.flush()
        name = request.get("env", {}).get("KUBETFX_TASK_NAME", "?")
        pid = os.fork()
        if pid == 0:  # the task's process
            code = 70
            try:
                code = self._child(conn, request, fds, client_pid)
            finally:
                os._exit(code)
        self.served += 1
        self.last_activity = time.monotonic()
        pidfd = os.pidfd_open(pid)
        task = _Task(pid, pidfd, conn, name)
        self.tasks[pidfd] = task
        self.by_conn[conn.fileno()] = task
        self.selector.register(pidfd, selectors.EVENT_READ, "exit")
        self.selector.register(conn, selectors.EVENT_READ, conn.fileno())
        _log(f"task {name}: process {pid} for client {client_pid}")
        self._answer(conn, {"started": pid, "worker": os.getpid()})

    def _on_client(self, conn_fd: int) -> None:
        """A message from a waiting client (a signal to forward), or its end."""
        task = self.by_conn.get(conn_fd)
        if task is None:
            return
        try:
            task.conn.settimeout(5)
            message, fds = _recv_request(task.conn)
            for fd in fds:
                os.close(fd)
        except (OSError, ValueError):
            # The client is gone (killed, or its runner was): the task must not outlive it.
            _log(f"task {task.name}: client gone, killing process {task.pid}")
            _kill(task.pid, signal.SIGKILL)
            self.selector.unregister(task.conn)
            return
        if message.get("op") == "signal":
            _kill(task.pid, int(message["signal"]))

    def _reap(self, pidfd: int) -> None:
        task = self.tasks.pop(pidfd)
        self.by_conn.pop(task.conn.fileno(), None)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        _pid, status, usage = os.wait4(task.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - task.started
        cpu = usage.ru_utime + usage.ru_stime
        result = {"exit": code} if code >= 0 else {"signal": -code}
        _log(f"task {task.name}: process {task.pid} ended ({result}) after {seconds:.2f}s, cpu {cpu:.2f}s")
        try:
            self.selector.unregister(task.conn)
        except (KeyError, ValueError):
            pass
        self._answer(task.conn, result)
        task.conn.close()
        self.last_activity = time.monotonic()

    # ---------------------------------------------------------------- the child

    def _child(self, conn: socket.socket, request: dict, fds: list[int], client_pid: int) -> int:
        """Become the task's process and run ``python3 -m kubetfx.task``; returns its exit code."""
        # Leave the worker: its sockets, pipes and signal handling are not the task's.
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        owned = [self.listener.fileno() if self.listener else -1, self.wake_r, self.wake_w]
        owned += [t.pidfd for t in self.tasks.values()] + [t.conn.fileno() for t in self.tasks.values()]
        try:
            owned.append(self.selector.fileno())
        except (AttributeError, ValueError):
            pass
        for fd in owned:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        conn.close()
        from kubetfx.process import die_with, die_with_parent

        die_with_parent()  # never outlive the worker: nobody would report how the task ended
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.umask(int(request.get("umask", 0o022)))
        env = dict(request["env"])
        for key in set(self.env_before) | set(self.env_after):
            # What the preloaded modules did to os.environ when imported, a fresh process
            # does when it imports them: do it here where the environment agrees.
            before, after = self.env_before.get(key), self.env_after.get(key)
            if before != after and env.get(key) == before:
                if key in self.env_after:
                    env[key] = self.env_after[key]
                else:
                    env.pop(key, None)
        os.environ.clear()
        os.environ.update(env)
        if sys.path and sys.path[0] == self.path0:
            sys.path[0] = request["cwd"]
        else:
            sys.path.insert(0, request["cwd"])
        die_with(client_pid)
        try:
            import numpy

            numpy.random.seed()  # a fresh process seeds from the OS (Python's random reseeds itself)
        except Exception:  # noqa: BLE001, S110 - no numpy: nothing to reseed
            pass
        print(
            f"kubetfx: warm worker {os.getppid()} runs this task in process {os.getpid()}",
            file=sys.stderr,
            flush=True,
        )
        return _run_module(request["argv"])


def _run_module(argv: list[str]) -> int:
    """``python3 ARGV`` for ``ARGV = ["-m", MODULE, *ARGS]`` in this process, and its exit."""
    import atexit
    import runpy
    import threading
    import traceback

    code = 0
    interrupted = False
    sys.argv = ["-m", *argv[2:]]
    # ``python3 -m M`` runs M as __main__ and a later ``import M`` makes a second module:
    # the preloaded M must not stand in for either.
    sys.modules.pop(argv[1], None)
    try:
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        if exit_.code is None:
            code = 0
        elif isinstance(exit_.code, int):
            code = exit_.code
        else:
            print(exit_.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        interrupted = True
    except BaseException:  # noqa: BLE001 - as the interpreter does: print it, exit 1
        traceback.print_exc()
        code = 1
    # What interpreter shutdown does: wait for non-daemon threads, run atexit functions.
    try:
        threading._shutdown()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001, S110 - never let shutdown hide the exit status
        pass
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if interrupted:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return code & 0xFF


def _is_task(argv: list[str]) -> bool:
    return argv[:2] == ["-m", "kubetfx.task"]


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------------- management


def same_environment(interpreter: str, mine: str | None = None) -> bool:
    """Whether a worker started by ``interpreter`` belongs to the environment of ``mine``
    (default: this process's interpreter): the same ``bin`` folder, i.e. the same virtual
    environment, whatever the checkout it was installed from."""
    mine = mine or sys.executable
    return bool(interpreter) and os.path.dirname(os.path.abspath(interpreter)) == os.path.dirname(
        os.path.abspath(mine)
    )


def list_workers(base: str | None = None, *, interpreter: str | None = None) -> list[dict]:
    """Workers that announced themselves under ``base`` (default: the runtime folder); only
    those of ``interpreter``'s environment if given (see :func:`same_environment`)."""
    if interpreter:
        return [w for w in list_workers(base) if same_environment(str(w.get("interpreter", "")), interpreter)]
    base = base or runtime_dir()
    found = []
    try:
        folders = sorted(os.listdir(base))
    except OSError:
        return []
    for folder in folders:
        path = os.path.join(base, folder)
        try:
            names = sorted(os.listdir(path))
        except OSError:
            continue
        for name in names:
            if not name.endswith(".json"):
                continue
            try:
                with open(os.path.join(path, name)) as f:
                    info = json.load(f)
            except (OSError, ValueError):
                continue
            if isinstance(info, dict) and "socket" in info:
                found.append(info)
    return found


def status(base: str | None = None, *, interpreter: str | None = None) -> list[dict]:
    """What each live worker reports (pid, tasks served, running tasks, RSS, ...); only
    ``interpreter``'s environment's workers if given."""
    answers = []
    for info in list_workers(base, interpreter=interpreter):
        try:
            answers.append({**info, **_request(info["socket"], {"op": "ping"}, timeout=5), "alive": True})
        except (OSError, ValueError):
            answers.append({**info, "alive": False})
    return answers


def stop(
    base: str | None = None, *, wait: float = 30.0, now: bool = False, interpreter: str | None = None
) -> list[int]:
    """Ask workers to stop (after their running tasks, or at once with ``now``); their pids.

    Every worker under ``base``, or only those of ``interpreter``'s environment (another
    checkout's or virtual environment's workers are left alone).
    """
    stopped = []
    for info in list_workers(base, interpreter=interpreter):
        pid = int(info.get("pid", 0))
        try:
            _request(info["socket"], {"op": "stop"}, timeout=5)
        except (OSError, ValueError):
            if pid and _alive(pid) and _is_worker(pid):
                os.kill(pid, signal.SIGTERM)
            else:  # a worker that died without cleaning up
                for leftover in (info["socket"], info["socket"][: -len(".sock")] + ".json"):
                    try:
                        os.unlink(leftover)
                    except OSError:
                        pass
                continue
        if now and pid:
            _kill(pid, signal.SIGTERM)  # a second stop: running tasks are killed
        stopped.append(pid)
    base = base or runtime_dir()
    for folder in os.listdir(base) if os.path.isdir(base) else []:
        for name in _listdir(os.path.join(base, folder)):
            if name.endswith(".starting"):  # still importing: no socket to ask yet
                try:
                    with open(os.path.join(base, folder, name)) as f:
                        pid = int(f.read().strip() or 0)
                except (OSError, ValueError):
                    continue
                if pid and _alive(pid) and _is_worker(pid) and _started_by(pid, interpreter):
                    os.kill(pid, signal.SIGTERM)
                    stopped.append(pid)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(_alive(p) for p in stopped):
        time.sleep(0.1)
    for folder in os.listdir(base) if os.path.isdir(base) else []:  # start afresh after a stop
        for name in _listdir(os.path.join(base, folder)):
            if name.endswith(".failed"):
                try:
                    os.unlink(os.path.join(base, folder, name))
                except OSError:
                    pass
    return stopped


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _started_by(pid: int, interpreter: str | None) -> bool:
    """Whether process ``pid`` runs ``interpreter``'s environment (any, if None)."""
    if not interpreter:
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv0 = f.read().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return False
    return same_environment(argv0, interpreter)


def _is_worker(pid: int, path: str = "") -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    return b"kubetfx.local.warm\0serve\0" in cmdline and (not path or f"\0{path}\0".encode() in cmdline)


def main(argv: list[str] | None = None) -> int:
    """``python -m kubetfx.local.warm serve|status|stop``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m kubetfx.local.warm")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a worker (started on demand by tasks)")
    serve.add_argument("--socket", required=True)
    serve.add_argument("--idle", type=float, default=DEFAULT_IDLE_SECONDS)
    sub.add_parser("status", help="list workers")
    stop_cmd = sub.add_parser("stop", help="stop workers")
    stop_cmd.add_argument("--now", action="store_true", help="kill running tasks too")
    stop_cmd.add_argument(
        "--all", action="store_true", help="every environment's workers, not only this one's"
    )
    args = parser.parse_args(argv)
    if args.command == "serve":
        return Worker(args.socket, args.idle).serve()
    if args.command == "status":
        print(json.dumps(status(), indent=2))
        return 0
    print(json.dumps(stop(now=args.now, interpreter=None if args.all else sys.executable)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
