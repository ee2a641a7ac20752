"""Process helpers for the local runner and the task wrapper.

A task must not outlive a killed runner: it would keep writing while the rerun starts.
Two mechanisms, neither of which runs Python between ``fork`` and ``exec`` (the runner
has gRPC and thread-pool threads, and Python code in a forked child of a threaded
process can deadlock or abort; ``subprocess``'s ``preexec_fn`` is documented unsafe):

* the runner starts each task command through util-linux's ``setpriv --pdeathsig KILL``
  where it exists, so the ``sh`` that KFP's command starts dies with the runner;
* ``kubetfx.task`` (the Python process under that ``sh``) asks for a parent-death signal
  for itself and also watches the runner's pid through a pidfd, so it goes down even
  where ``setpriv`` is missing and ``sh`` survives.
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import threading
from collections.abc import Sequence

_PR_SET_PDEATHSIG = 1
ENV_RUNNER_PID = "KUBETFX_RUNNER_PID"


def with_parent_death_signal(argv: Sequence[str]) -> list[str]:
    """``argv`` prefixed so that the started process is SIGKILLed when its parent dies."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return list(argv)
    return [setpriv, "--pdeathsig", "KILL", "--", *argv]


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (called in-process)."""
    parent = os.getppid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: nothing to ask
        return
    if os.getppid() != parent:  # the parent died before we asked
        os.kill(os.getpid(), signal.SIGKILL)


def die_with(pid: int) -> None:
    """SIGKILL this process when process ``pid`` (not necessarily the parent) ends."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:  # already gone
        os.kill(os.getpid(), signal.SIGKILL)
    except (AttributeError, OSError):  # no pidfd on this system: nothing to watch with
        return

    def watch() -> None:
        select.select([fd], [], [])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="kubetfx-die-with-runner", daemon=True).start()
