"""Named failpoints: a test hook, as etcd's gofail and FreeBSD's fail(9) have.

Code that a fault test must be able to stop at a precise moment calls
``failpoint("name")`` there. It does nothing (one lookup in ``os.environ``) unless
``KUBETFX_FAILPOINTS`` names the point::

    KUBETFX_FAILPOINTS=pusher.copy:pause          # one point
    KUBETFX_FAILPOINTS=example_gen.write:pause,trainer.fit:pause

``pause``, the one action: write ``<KUBETFX_FAILPOINT_DIR>/<name>.<pid>.json``
(``{"name", "pid"}``, written whole: a reader never sees half of it) to say the point is
reached and by which process, then sleep (``KUBETFX_FAILPOINT_PAUSE_SECONDS``, default
300) so the test can kill the process there; if nobody does, it carries on.

The variables are read when the point is reached, not at import, so a task forked from
the warm worker (``kubetfx.local.warm``) acts on its own environment. Not a setting:
nothing but tests sets them.

Points: ``example_gen.write`` (the first split written, the others not yet),
``trainer.fit`` (the end of every epoch of the built-in model's ``fit``),
``pusher.copy`` (after each file copied into a push's hidden staging version, before the
version is published), ``launcher.upload.TASK`` (in the local runner's object-store mode,
after each file of task ``TASK``'s outputs is uploaded, before the upload is complete),
``warm.preload`` (a warm worker that starts, before its imports), ``warm.later`` (a
warm worker serving tasks, before each import of what only later tasks use),
``warm.exit`` (a task's process forked from a warm worker, after it reported its exit
code, before it exits).
"""

from __future__ import annotations

import json
import os
import tempfile
import time

ENV = "KUBETFX_FAILPOINTS"
DIR_ENV = "KUBETFX_FAILPOINT_DIR"
PAUSE_ENV = "KUBETFX_FAILPOINT_PAUSE_SECONDS"
DEFAULT_PAUSE_SECONDS = 300.0


def failpoint(name: str) -> None:
    """Act as ``KUBETFX_FAILPOINTS`` says at the point ``name``; nothing when it is unset."""
    armed = os.environ.get(ENV)
    if armed:
        _act(name, armed)


def _act(name: str, armed: str) -> None:
    for term in armed.split(","):
        point, _, action = term.strip().partition(":")
        if point != name:
            continue
        if action != "pause":
            raise ValueError(f"{ENV}: unknown action {action!r} for {point!r}; the action is pause")
        _reached(name)
        time.sleep(float(os.environ.get(PAUSE_ENV) or DEFAULT_PAUSE_SECONDS))
        return


def _reached(name: str) -> None:
    folder = os.environ.get(DIR_ENV) or tempfile.gettempdir()
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.{os.getpid()}.json")
    with open(f"{path}.tmp", "w") as f:
        json.dump({"name": name, "pid": os.getpid()}, f)
    os.replace(f"{path}.tmp", path)
