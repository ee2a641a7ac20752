"""The warm worker: a daemon that keeps TensorFlow, TFDV, TFMA and Beam imported for tasks.

Every kubetfx task still runs the container's command (``sh -ec '... python3 -m
kubetfx.task "$@"' ...``). When the warm worker is on, the local runner puts a small
``python3`` shim first on the task's ``PATH`` (:mod:`.manage`). For ``python3 -m
kubetfx.task ...`` the shim runs the client (:mod:`.client`, imported with ``-I -S``: no
site-packages, so it starts in milliseconds), which hands the task to the worker;
anything else goes straight to the real interpreter.

The worker (:mod:`.worker`, ``python -m kubetfx.local.warm serve``) imports the heavy libraries once,
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

Start: the runner starts the worker when a run begins (:func:`.manage.start_early`),
without waiting for it; the tasks that need no heavy library (:data:`kubetfx.local.launch.LIGHT_FUNCTIONS`:
fingerprinting and reading and splitting the data) run in plain processes while it
imports, and the first task that needs it waits for it. A cold run's imports thus
overlap with the runner's own start and with those tasks.

Fallback: if no worker can be reached or started, or the request fails before the task
started, the client runs the task in a plain process (``exec`` of the real
interpreter), as without the worker. Correctness never depends on the worker.

The parts: :mod:`.protocol` (names, socket naming and wire format, shared by all),
:mod:`.client`, :mod:`.worker` (the daemon) and :mod:`.child` (its forked task
process), and :mod:`.manage` (whether to use a worker, the shim, status and stop).
Each imports only the standard library at module level: the client runs without
site-packages.
"""

# The names below are imported when first used (PEP 562): the client, started for every
# task, imports kubetfx.local.warm.protocol, and with it this package; importing the
# manager and the worker here cost it more than all of its own imports (about 15 ms of
# every task's start).
_WHERE = {
    **dict.fromkeys(
        (
            "current_code_key",
            "enabled",
            "list_workers",
            "main",
            "runtime_dir",
            "same_environment",
            "serving",
            "shim_dir",
            "start_early",
            "status",
            "stop",
        ),
        "manage",
    ),
    **dict.fromkeys(
        (
            "DEFAULT_IDLE_SECONDS",
            "DEFAULT_START_SECONDS",
            "DIR_ENV",
            "ENABLE_ENV",
            "IDLE_ENV",
            "START_ENV",
            "VOLATILE_ENV",
            "code_key",
            "env_digest",
            "socket_path",
        ),
        "protocol",
    ),
    **dict.fromkeys(("PRELOAD", "Worker", "changed_sources", "source_snapshot"), "worker"),
}

TYPE_CHECKING = False  # not typing's: importing typing would cost the client more
if TYPE_CHECKING:
    from kubetfx.local.warm.manage import (
        current_code_key,
        enabled,
        list_workers,
        main,
        runtime_dir,
        same_environment,
        serving,
        shim_dir,
        start_early,
        status,
        stop,
    )
    from kubetfx.local.warm.protocol import (
        DEFAULT_IDLE_SECONDS,
        DEFAULT_START_SECONDS,
        DIR_ENV,
        ENABLE_ENV,
        IDLE_ENV,
        START_ENV,
        VOLATILE_ENV,
        code_key,
        env_digest,
        socket_path,
    )
    from kubetfx.local.warm.worker import PRELOAD, Worker, changed_sources, source_snapshot


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # once: later reads find it without this function
    return value


__all__ = [
    "DEFAULT_IDLE_SECONDS",
    "DEFAULT_START_SECONDS",
    "DIR_ENV",
    "ENABLE_ENV",
    "IDLE_ENV",
    "PRELOAD",
    "START_ENV",
    "VOLATILE_ENV",
    "Worker",
    "changed_sources",
    "code_key",
    "current_code_key",
    "enabled",
    "env_digest",
    "list_workers",
    "main",
    "runtime_dir",
    "same_environment",
    "serving",
    "shim_dir",
    "socket_path",
    "source_snapshot",
    "start_early",
    "status",
    "stop",
]
