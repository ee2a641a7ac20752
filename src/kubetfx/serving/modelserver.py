"""Start KServe's Python model server on one SavedModel version, on loopback, and stop it.

The server (:mod:`kubetfx.serving.kserve_server`) runs in the serving environment
(``.venv-serving``, ``make serving-env``), a Python of its own: kserve's pins cannot share
kubetfx's lock. :func:`serving_python` finds that interpreter; :func:`running_server` starts
the server as a child process, waits until the model answers as ready, and always stops it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kubetfx.errors import KubetfxError

SERVING_PYTHON_ENV = "KUBETFX_SERVING_PYTHON"
SERVING_VENV = ".venv-serving"
SERVER_SCRIPT = Path(__file__).with_name("kserve_server.py")
LOOPBACK = "127.0.0.1"


class ServingServerError(KubetfxError):
    """The model server could not be started, or did not become ready in time."""


def serving_python() -> str | None:
    """The serving environment's Python, or None when there is none.

    ``KUBETFX_SERVING_PYTHON`` when set (it must exist: a wrong setting is an error, not a
    silent fallback); else ``.venv-serving/bin/python`` next to the running virtual
    environment (``sys.prefix``) or next to the source checkout this module is in.
    """
    configured = os.environ.get(SERVING_PYTHON_ENV, "").strip()
    if configured:
        if not os.access(configured, os.X_OK):
            raise ServingServerError(f"{SERVING_PYTHON_ENV}={configured}: no such executable")
        return configured
    candidates = [Path(sys.prefix).parent / SERVING_VENV]
    checkout = Path(__file__).resolve().parents[3]  # src/kubetfx/serving/ -> the checkout
    if (checkout / "pyproject.toml").is_file():
        candidates.append(checkout / SERVING_VENV)
    for venv in candidates:
        python = venv / "bin" / "python"
        if os.access(python, os.X_OK):
            return str(python)
    return None


@dataclass
class RunningServer:
    """A model server started by :func:`running_server`."""

    url: str  # http://127.0.0.1:PORT
    port: int
    model_name: str
    pid: int
    log_file: str
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def predict_url(self) -> str:
        """The V1 (TF Serving style) predict endpoint."""
        return f"{self.url}/v1/models/{self.model_name}:predict"

    @property
    def infer_url(self) -> str:
        """The V2 (open inference protocol) infer endpoint."""
        return f"{self.url}/v2/models/{self.model_name}/infer"

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's log (its stdout and stderr)."""
        try:
            return Path(self.log_file).read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def alive(self) -> bool:
        """Whether the server process still runs."""
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; idempotent."""
        proc = self._process
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        self._process = None


@contextmanager
def running_server(
    model_dir: str,
    model_name: str,
    *,
    port: int = 0,
    timeout: float = 180.0,
    signature: str = "serving_default",
    python: str | None = None,
    threads: int = 4,
) -> Iterator[RunningServer]:
    """KServe's model server on ``model_dir`` (one SavedModel version folder), ready.

    Args:
        model_dir: The SavedModel folder.
        model_name: The name in the URLs (``/v1/models/NAME:predict``).
        port: Loopback port; 0 lets the server bind a free one (it reports which).
        timeout: Seconds to wait for the model to load and the server to answer ready.
        signature: The signature requests are answered with.
        python: The serving environment's Python (default: :func:`serving_python`).
        threads: Threads the server runs the model on.

    Raises:
        ServingServerError: No serving environment, or the server exited or was not ready
            within ``timeout`` (its log's end is in the message).
    """
    import httpx

    python = python or serving_python()
    if not python:
        raise ServingServerError(
            f"no serving environment: set {SERVING_PYTHON_ENV} or build {SERVING_VENV} (make serving-env)"
        )
    workdir = tempfile.mkdtemp(prefix="kubetfx-serving-")
    port_file = os.path.join(workdir, "port")
    log_path = os.path.join(workdir, "server.log")
    command = [
        python,
        str(SERVER_SCRIPT),
        "--model-dir",
        model_dir,
        "--name",
        model_name,
        "--port",
        str(port),
        "--host",
        LOOPBACK,
        "--port-file",
        port_file,
        "--signature",
        signature,
        "--workers-threads",
        str(threads),
        "--parent-pid",
        str(os.getpid()),
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    server = RunningServer(
        url="", port=0, model_name=model_name, pid=proc.pid, log_file=log_path, _process=proc
    )
    try:
        deadline = time.monotonic() + timeout
        while not os.path.exists(port_file):
            _check_waiting(server, proc, deadline, timeout, "bind its port")
            time.sleep(0.1)
        server.port = int(Path(port_file).read_text().strip())
        server.url = f"http://{LOOPBACK}:{server.port}"
        with httpx.Client(timeout=5.0) as client:
            while True:
                try:
                    answer = client.get(f"{server.url}/v1/models/{model_name}")
                    if answer.status_code == 200 and answer.json().get("ready"):
                        break
                except httpx.HTTPError:
                    pass
                _check_waiting(server, proc, deadline, timeout, "answer ready")
                time.sleep(0.1)
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _check_waiting(
    server: RunningServer, proc: subprocess.Popen[bytes], deadline: float, timeout: float, what: str
) -> None:
    if proc.poll() is not None:
        raise ServingServerError(
            f"the model server exited ({proc.returncode}) before it could {what}; its log ends:\n"
            f"{server.log_tail()}"
        )
    if time.monotonic() > deadline:
        raise ServingServerError(
            f"the model server did not {what} within {timeout:.0f} s; its log ends:\n{server.log_tail()}"
        )
