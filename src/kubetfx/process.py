"""Process helpers for the local runner and the task wrapper."""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies.

    A task must not outlive a killed runner: it would keep writing while the rerun
    starts. The runner sets this for the ``sh`` it starts, and ``kubetfx.task`` sets
    it again for the Python process ``sh`` starts, so the whole chain goes down.
    """
    parent = os.getppid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: nothing to ask
        return
    if os.getppid() != parent:  # the parent died before we asked
        os.kill(os.getpid(), signal.SIGKILL)
