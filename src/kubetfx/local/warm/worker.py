"""The warm worker: a daemon that imports the heavy libraries once and forks a process per task.

``python -m kubetfx.local.warm serve`` imports what tasks use (:data:`PRELOAD`, and every
component's executor), then serves its socket, importing what only a run's later tasks
use (:data:`LATER`: TFMA, Beam's runners) one module at a time in quiet moments. For
each request it forks a child that takes over the client's stdin, stdout and stderr
(passed with SCM_RIGHTS), its working folder, umask, environment and arguments, and runs
``kubetfx.task`` exactly as ``python3 -m`` would (``runpy``), so lineage, staging, the
state file and the log are those of a plain process. It sends the child's exit status back to the client.

The exit status goes back as soon as the child has finished its work, not when the kernel
has finished taking the process down: the child writes the code it is about to exit with
to a pipe once its threads, exit functions and output streams are done, and exits. Tearing
down a forked copy of the worker's memory took 20-30 ms on the 2-core machine, which every
task of a run waited for. A child killed before it reports (a signal, a crash) is answered
when it ends, with how it ended, as before; the code it reported is checked against how it
ended, and a difference is logged.

Isolation: a task that crashes or is killed takes only its forked child down. The child
dies with the worker (``PR_SET_PDEATHSIG``), with its client and with the runner (pidfd
watchers); the worker kills it when the client's connection closes.

Stale code: before every task the worker checks the source files of the modules it
loaded from outside the standard library and site-packages (:func:`source_snapshot`); if
one changed, it hands the task back (the client starts a fresh worker) and stops once
its running tasks end. A worker that starts also stops workers of the same interpreter
under another folder name.

What the forked child does to become the task is :mod:`.child`. Why the rest is one
piece (a little over 500 lines): the worker is one event loop (accept, fork, forward
signals, reap) whose states (serving, draining, stopped) every handler reads; split
over modules it would only pass ``self`` around. It imports only the standard library
at module level; the heavy imports happen in :meth:`Worker.preload`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import time

from kubetfx import taskenv
from kubetfx.faults import failpoint
from kubetfx.local.warm import protocol
from kubetfx.local.warm.child import become_task
from kubetfx.local.warm.manage import current_code_key, list_workers
from kubetfx.local.warm.protocol import TASK_COMMAND, kill, recv_request
from kubetfx.taskenv import TaskEnv

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
    "tfx_bsl.coders.example_coder",
    "tfx_bsl.public.tfxio",
    "tensorflow_metadata.proto.v0.schema_pb2",
    "tensorflow_metadata.proto.v0.statistics_pb2",
    "tensorflow_data_validation",
    "tensorflow_data_validation.statistics.stats_impl",
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

# Imported once the worker serves, one module at a time in quiet moments (see serve): what
# only the later tasks of a run use, in the order a run needs them: the Evaluator's TFMA,
# the charts of the reports and the model card, then Beam's runners (for data above the
# in-memory size, where a task's own 0.4 s import is small beside its work). The first
# tasks that need the worker do not wait for them; a task that needs one before it is
# imported imports it itself (slower, still correct). While one is imported the worker
# neither forks nor reports a task's end, so each should be short beside the task it
# overlaps (the trainer's, in a run).
LATER = (
    "tensorflow_model_analysis",
    "matplotlib.pyplot",  # the plots of the reports and the model card's chart (0.3 s)
    "kubetfx.modelcard",
    "kubetfx.modelcard.formats",  # jsonschema, for the model card's check (0.3 s)
    "apache_beam.runners.direct.direct_runner",
    "apache_beam.runners.portability.fn_api_runner",
)
LATER_QUIET_SECONDS = 0.5  # with a task running
LATER_IDLE_SECONDS = 5.0  # with none


def source_snapshot() -> dict[str, tuple[int, int] | None]:
    """(mtime, size) of the source files of loaded modules outside the standard library and
    site-packages, and of the site-packages folders: what a worker must not keep running
    once edited or reinstalled (see ``changed_sources``)."""
    import sysconfig

    folders = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    installed = tuple(os.path.join(os.path.realpath(p), "") for p in folders)
    # The same folders as spelled: most modules' paths start with one of them, and are
    # known installed without resolving links (realpath of thousands of modules: 0.2 s).
    spelled = installed + tuple(os.path.join(os.path.abspath(p), "") for p in folders)
    # site-packages folders themselves: installing, upgrading or removing a package
    # changes them (the files inside are not watched one by one: thousands of them).
    snapshot: dict[str, tuple[int, int] | None] = {
        path.rstrip(os.sep): _file_state(path) for path in installed if "-packages" in path
    }
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or path.startswith(spelled):
            continue
        if os.path.realpath(path).startswith(installed):
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


def _reset_logging() -> None:
    """Imports that logged before anyone configured logging left a handler on the root
    logger; a fresh task process configures it itself (kubetfx.task.main)."""
    import logging

    logging.root.handlers.clear()
    logging.root.setLevel(logging.WARNING)


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
    def __init__(self, pid: int, pidfd: int, conn: socket.socket, name: str, done_r: int) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.conn = conn
        self.name = name
        self.started = time.monotonic()
        self.done_r = done_r  # the child writes its exit code here when its work is done; -1: read
        self.reported: int | None = None  # that code, once the client has been answered with it


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
        self.listener: socket.socket | None = None  # accepting clients; None once closed
        self.started = time.time()
        self.ready_seconds = 0.0
        self.last_activity = time.monotonic()
        self.env_before: dict[str, str] = {}
        self.env_after: dict[str, str] = {}
        self.preloaded = 0
        self.sources: dict[str, tuple[int, int] | None] = {}
        self.later = list(LATER)  # still to import, once serving
        self.last_task_event = time.monotonic()  # a task started or ended

    # ---------------------------------------------------------------- start

    def preload(self) -> None:
        """Import the libraries tasks use; execute no TensorFlow op, open no channel."""
        import importlib
        import pkgutil

        failpoint("warm.preload")  # a test hook: a worker that is still importing
        taskenv.quiet_tensorflow()  # as kubetfx.task does before it imports
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
        import threading

        _reset_logging()
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

        # Children do not touch (and copy) the worker's objects when they collect. No
        # gc.collect() first: after the imports it finds about a hundred unreachable
        # objects among half a million, and takes 0.3 s that the first task waits for.
        gc.freeze()

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
        listener = self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        listener.bind(tmp)
        listener.listen(64)
        os.replace(tmp, self.path)  # clients see a socket only once it accepts
        self.inode = os.stat(self.path).st_ino
        listener.setblocking(False)
        for leftover in (".failed", ".starting"):
            try:
                os.unlink(self.stem + leftover)
            except FileNotFoundError:
                pass
        self._write_info()
        _log(f"serving (idle timeout {self.idle_seconds:.0f}s)")
        self.last_task_event = time.monotonic()
        self._stop_stale_workers()

        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, lambda *_: None)  # handled through the wakeup pipe
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "signal")
        imported = False  # a later import just ran: look at the events before the next
        while True:
            if not self.tasks:
                if self.draining:
                    break
                if time.monotonic() - self.last_activity > self.idle_seconds:
                    _log("idle timeout")
                    break
            idle_left = self.idle_seconds - (time.monotonic() - self.last_activity)
            timeout = None if self.tasks else max(0.1, idle_left)
            if self.later and not self.draining:
                # The later imports wait for a quiet moment: a task running for half a second
                # with no other task starting or ending (a long task such as the trainer),
                # or a few seconds with no task at all (after a run). Tasks that follow each
                # other quickly are not held up by an import blocking this loop.
                wanted = LATER_QUIET_SECONDS if self.tasks else LATER_IDLE_SECONDS
                quiet = wanted - (time.monotonic() - self.last_task_event)
                if quiet <= 0 and not imported:
                    if not self._import_later():
                        self._drain("a module imported after the start started threads")
                    imported = True  # what happened meanwhile (a task ended, one asked) first
                    continue
                timeout = quiet if timeout is None else min(timeout, quiet)
            events = self.selector.select(0 if imported else timeout)
            imported = False
            for key, _mask in events:
                kind = key.data
                if kind == "accept":
                    self._accept()
                elif kind == "signal":
                    self._on_signal()
                elif kind == "exit":
                    self._reap(key.fd)
                elif isinstance(kind, _Task):
                    self._on_done(kind)
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
                    protocol.request(info["socket"], {"op": "stop"}, timeout=5)
                    _log(f"asked stale worker {info['pid']} ({info['socket']}) to stop")
                except OSError:
                    pass

    def _close_listener(self) -> None:
        """Stop accepting: remove the socket (if it is still ours), refuse what is queued."""
        listener = self.listener
        if listener is None:
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
                conn, _ = listener.accept()
            except OSError:
                break
            try:
                conn.settimeout(1)
                conn.sendall(b'{"error": "the worker is stopping"}\n')
            except OSError:
                pass
            conn.close()
        try:
            self.selector.unregister(listener)
        except (KeyError, ValueError, AttributeError):
            pass
        listener.close()
        self.listener = None

    def _import_later(self) -> bool:
        """Import the next of :data:`LATER` (no task is being forked meanwhile: this is the
        event loop's own thread); False if it left a Python thread running, which would
        make forking unsafe."""
        import gc
        import importlib
        import threading

        name = self.later.pop(0)
        began = time.monotonic()
        failpoint("warm.later")  # a test hook: an import that takes long
        try:
            if name == "matplotlib.pyplot" and not os.environ.get("MPLBACKEND"):
                importlib.import_module("matplotlib").use("Agg")  # headless, as kubetfx's charts
            importlib.import_module(name)
            self.preloaded += 1
        except Exception as err:  # noqa: BLE001 - the task will import (and report) it
            _log(f"later import: {name}: {type(err).__name__}: {err}")
        self.env_after = dict(os.environ)
        _reset_logging()
        # Sources of the modules it loaded, as they were when loaded (see serve).
        self.sources = {**source_snapshot(), **self.sources}
        gc.collect()
        gc.freeze()
        threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        _log(f"imported {name} in {time.monotonic() - began:.1f}s while serving; RSS {_rss_mb():.0f} MB")
        if threads:
            _log(f"{name} started Python threads {threads}: serving no more tasks (fork would be unsafe)")
            return False
        return True

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
                kill(task.pid, signal.SIGKILL)
        self._drain("signal")

    def _drain(self, why: str) -> None:
        if not self.draining:
            _log(f"stopping ({why}); waiting for {len(self.tasks)} running task(s)")
        self.draining = True
        self._close_listener()

    def _accept(self) -> None:
        if self.listener is None:
            return
        conn: socket.socket | None  # None once handed to a task child
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        conn.setblocking(True)
        conn.settimeout(10)
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        client_pid, uid, _gid = struct.unpack("3i", creds)
        fds: list[int] = []
        try:
            if uid != os.getuid():
                raise ConnectionError(f"refused a connection from uid {uid}")
            request, fds = recv_request(conn)
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
            "importing": list(self.later),  # still to import while serving (LATER)
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
        name = TaskEnv.from_env(request.get("env", {})).task_name or "?"
        done_r, done_w = os.pipe2(os.O_CLOEXEC)
        try:
            pid = os.fork()
        except OSError:
            os.close(done_r)
            os.close(done_w)
            raise
        if pid == 0:  # the task's process
            code = 70
            try:
                os.close(done_r)
                code = self._child(conn, request, fds, client_pid)
            finally:
                try:
                    os.write(done_w, str(code).encode())  # the work is done: answer now
                    failpoint("warm.exit")  # a test hook: a process slow to go
                finally:
                    os._exit(code)
        os.close(done_w)
        self.served += 1
        self.last_activity = self.last_task_event = time.monotonic()
        pidfd = os.pidfd_open(pid)
        task = _Task(pid, pidfd, conn, name, done_r)
        self.tasks[pidfd] = task
        self.by_conn[conn.fileno()] = task
        self.selector.register(pidfd, selectors.EVENT_READ, "exit")
        self.selector.register(done_r, selectors.EVENT_READ, task)
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
            message, fds = recv_request(task.conn)
            for fd in fds:
                os.close(fd)
        except (OSError, ValueError):
            # The client is gone (killed, or its runner was): the task must not outlive it.
            _log(f"task {task.name}: client gone, killing process {task.pid}")
            kill(task.pid, signal.SIGKILL)
            self.selector.unregister(task.conn)
            return
        if message.get("op") == "signal":
            kill(task.pid, int(message["signal"]))

    def _on_done(self, task: _Task) -> None:
        """The child's report that its work is done: answer its client with the code it
        is exiting with, without waiting for the process to be gone (see the module
        docstring). Nothing to read: it ended before it reported; :meth:`_reap` answers."""
        if task.done_r < 0:
            return  # reaped earlier in the same round of events, and answered
        data = b""
        try:
            data = os.read(task.done_r, 16)
        except OSError:
            pass
        self._close_done(task)
        if not data.strip().isdigit():
            return
        task.reported = int(data)
        self._finish(task, {"exit": task.reported})

    def _close_done(self, task: _Task) -> None:
        if task.done_r >= 0:
            self.selector.unregister(task.done_r)
            os.close(task.done_r)
            task.done_r = -1

    def _finish(self, task: _Task, result: dict) -> None:
        """Answer the task's client with how it ended, and let it go."""
        self.by_conn.pop(task.conn.fileno(), None)
        try:
            self.selector.unregister(task.conn)
        except (KeyError, ValueError):
            pass
        self._answer(task.conn, result)
        task.conn.close()
        self.last_activity = self.last_task_event = time.monotonic()

    def _reap(self, pidfd: int) -> None:
        task = self.tasks.pop(pidfd)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        _pid, status, usage = os.wait4(task.pid, 0)
        self._close_done(task)  # a report not read yet: the real end is known now, answer that
        code = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - task.started
        cpu = usage.ru_utime + usage.ru_stime
        result = {"exit": code} if code >= 0 else {"signal": -code}
        _log(f"task {task.name}: process {task.pid} ended ({result}) after {seconds:.2f}s, cpu {cpu:.2f}s")
        if task.reported is None:
            self._finish(task, result)
        elif result != {"exit": task.reported}:
            told = f"its client was told exit {task.reported}"
            _log(f"task {task.name}: {told}, but the process ended {result}")
        self.last_activity = self.last_task_event = time.monotonic()

    # ---------------------------------------------------------------- the child

    def _child(self, conn: socket.socket, request: dict, fds: list[int], client_pid: int) -> int:
        """Become the task's process (:mod:`.child`); returns the task's exit code."""
        owned = [self.listener.fileno() if self.listener else -1, self.wake_r, self.wake_w]
        owned += [t.pidfd for t in self.tasks.values()] + [t.conn.fileno() for t in self.tasks.values()]
        owned += [t.done_r for t in self.tasks.values()]
        try:
            owned.append(self.selector.fileno())
        except (AttributeError, ValueError):
            pass
        conn.close()
        return become_task(
            request,
            fds,
            client_pid,
            worker_fds=owned,
            import_env=(self.env_before, self.env_after),
            path0=self.path0,
        )


def _is_task(argv: list[str]) -> bool:
    return tuple(argv[:2]) == TASK_COMMAND
