"""What a warm worker's forked child does to become the task's process.

It leaves the worker (signal handling, the worker's file descriptors), takes over the
client's stdin, stdout and stderr, working folder, umask, environment and ``sys.path[0]``,
dies with the worker and with the client, reseeds numpy, and runs ``python3 -m
kubetfx.task ARGS`` in place (:func:`run_module`), as a fresh interpreter would.
"""

from __future__ import annotations

import os
import signal
import sys


def become_task(
    request: dict,
    fds: list[int],
    client_pid: int,
    *,
    worker_fds: list[int],
    import_env: tuple[dict[str, str], dict[str, str]],
    path0: str,
) -> int:
    """Turn this forked process into the task's and run it; returns its exit code.

    ``worker_fds``: the worker's descriptors to close; ``import_env``: the worker's
    environment before and after its imports; ``path0``: the worker's ``sys.path[0]``.
    """
    # Leave the worker: its sockets, pipes and signal handling are not the task's.
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    for fd in worker_fds:
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass
    from kubetfx.process import die_with, die_with_parent

    die_with_parent()  # never outlive the worker: nobody would report how the task ended
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.umask(int(request.get("umask", 0o022)))
    env = dict(request["env"])
    env_before, env_after = import_env
    for key in set(env_before) | set(env_after):
        # What the preloaded modules did to os.environ when imported, a fresh process
        # does when it imports them: do it here where the environment agrees.
        before, after = env_before.get(key), env_after.get(key)
        if before != after and env.get(key) == before:
            if key in env_after:
                env[key] = env_after[key]
            else:
                env.pop(key, None)
    os.environ.clear()
    os.environ.update(env)
    if sys.path and sys.path[0] == path0:
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
    return run_module(request["argv"])


def run_module(argv: list[str]) -> int:
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
