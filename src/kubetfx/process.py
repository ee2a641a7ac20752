"""Processes: dying with the parent, a fork pool that survives failed and hung children,
and how many CPUs this process may use.

**Parent death.** A task must not outlive a killed runner: it would keep writing while the rerun starts.
Two mechanisms, neither of which runs Python between ``fork`` and ``exec`` (the runner
has gRPC and thread-pool threads, and Python code in a forked child of a threaded
process can deadlock or abort; ``subprocess``'s ``preexec_fn`` is documented unsafe):

* the runner starts each task command through util-linux's ``setpriv --pdeathsig KILL``
  where it exists, so the ``sh`` that KFP's command starts dies with the runner;
* ``kubetfx.task`` (the Python process under that ``sh``) asks for a parent-death signal
  for itself and also watches the runner's pid through a pidfd, so it goes down even
  where ``setpriv`` is missing and ``sh`` survives.

**Fork pool** (:func:`fork_map`): work split into pieces, computed in forked children of
this process in parallel, with the first piece computed here. A child that fails, dies or
hangs changes nothing but the time: its piece is computed here. StatisticsGen uses it to
compute groups of columns in parallel.

**CPUs** (:func:`usable_cpus`): the CPUs this process may run on, capped by its cgroup's
CPU quota, which is what a pod's CPU limit sets.
"""

from __future__ import annotations

import ctypes
import gc
import math
import os
import select
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

_PR_SET_PDEATHSIG = 1
ENV_RUNNER_PID = "KUBETFX_RUNNER_PID"

# A child that has not answered this long after this process finished its own piece (and
# at least HANG_FACTOR times as long as that took) is killed and its piece computed here.
HANG_SECONDS = 60.0
HANG_FACTOR = 10.0
CPU_QUOTA_FILES = (
    ("/sys/fs/cgroup/cpu.max", None),  # cgroup v2: "<quota> <period>" or "max <period>"
    ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),  # v1
)

T = TypeVar("T")


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


# ---------------------------------------------------------------------- CPUs


def usable_cpus() -> int:
    """CPUs this process may run on, at most its cgroup's CPU quota (a pod's CPU limit)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    for quota_file, period_file in CPU_QUOTA_FILES:
        try:
            fields = Path(quota_file).read_text().split()
            quota, period = fields[0], fields[1] if period_file is None else Path(period_file).read_text()
            if quota not in ("max", "-1"):
                cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
            break
        except (OSError, ValueError, IndexError):
            continue
    return cpus


# ---------------------------------------------------------------------- fork pool


@dataclass
class _Child(Generic[T]):
    pid: int
    fd: int
    piece: T
    data: bytearray = field(default_factory=bytearray)
    forked: bool = True


def fork_map(
    work: Callable[[T], bytes],
    pieces: Sequence[T],
    *,
    what: str,
    describe: Callable[[T], str] = lambda piece: "its piece",
) -> list[bytes]:
    """``[work(p) for p in pieces]``: the first piece here, the others in forked children.

    Nothing but ``work`` runs in a child, which then leaves by ``os._exit`` (no atexit
    handlers, no flushing of buffers it inherited). A child that fails, dies or hangs
    is reaped, and its piece is computed here instead, with a line on stderr naming the
    ``what`` worker and ``describe(piece)``.
    """
    if len(pieces) == 1:
        return [work(pieces[0])]
    children: list[_Child[T]] = []
    try:
        # Objects alive now go to the collector's permanent generation first, so a child's
        # collections do not walk them (and copy every page they sit on: ~0.8 s with
        # TensorFlow loaded). Here they go back after the forks, unless some were frozen
        # already (a warm worker's task: its worker froze them for the same reason).
        frozen = gc.get_freeze_count()
        gc.freeze()
        try:
            for piece in pieces[1:]:
                try:
                    children.append(_fork(work, piece))
                except OSError as err:  # no process to be had (EAGAIN, ENOMEM): here, later
                    print(f"kubetfx: no {what} worker ({err}); computing here", file=sys.stderr)
                    children.append(_Child(0, -1, piece, forked=False))
        finally:
            if not frozen:
                gc.unfreeze()
        started = time.monotonic()
        results = [work(pieces[0])]
        own = time.monotonic() - started
        deadline = time.monotonic() + max(HANG_SECONDS, HANG_FACTOR * own)
        for child in children:
            data = _collect(child, deadline) if child.forked else None
            if data is None:
                if child.forked:
                    print(
                        f"kubetfx: {what} worker {child.pid} for {describe(child.piece)} failed; "
                        "computing them in this process",
                        file=sys.stderr,
                    )
                data = work(child.piece)
            results.append(data)
        return results
    finally:
        for child in children:
            _reap(child)


def _fork(work: Callable[[T], bytes], piece: T) -> _Child[T]:
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        raise
    if pid == 0:  # the child: compute, write, leave
        status = 1
        try:
            os.close(read_fd)
            die_with_parent()
            view = memoryview(work(piece))
            while view:
                view = view[os.write(write_fd, view) :]
            status = 0
        except BaseException:  # noqa: BLE001 - reported here; the parent computes the piece again
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(status)
    os.close(write_fd)
    return _Child(pid, read_fd, piece)


def _collect(child: _Child[T], deadline: float) -> bytes | None:
    """The child's bytes, or None if it failed or is still running at ``deadline``."""
    poll = select.poll()
    poll.register(child.fd, select.POLLIN)
    while child.fd >= 0:
        if not poll.poll(max(0.0, deadline - time.monotonic()) * 1000):
            return None
        chunk = os.read(child.fd, 1 << 20)
        if not chunk:
            os.close(child.fd)
            child.fd = -1
        child.data += chunk
    _, status = os.waitpid(child.pid, 0)
    child.pid = 0
    return bytes(child.data) if status == 0 else None


def _reap(child: _Child[T]) -> None:
    if child.fd >= 0:
        os.close(child.fd)
        child.fd = -1
    if child.pid:
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(child.pid, 0)
        child.pid = 0
